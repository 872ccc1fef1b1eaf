"""One party's fault stays its own (issue 22, findings 1, 2, 3 and 5): a bad subscription, a
slow receiver, an internal URL, a revoked key. Real receivers on 127.0.0.1, real PostGIS."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from geo.access.control import create_key, revoke_key, set_policy
from geo.changes import outbound, webhooks
from geo.changes.feed import read_changes
from geo.platform import sealing
from geo.platform.database import Database
from tests.helpers import client_for
from tests.test_webhooks import SECRET, Receiver, _notice, _subscribe, receiving


@contextmanager
def trickling(byte_every_s: float) -> Iterator[tuple[str, list[float]]]:
    """A receiver that reads the request, then answers one byte every ``byte_every_s``
    seconds (the attack of the review: a delivery held open for 90 s). Yields its URL and
    the times it saw a connection close."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    closed: list[float] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            try:
                for byte in b"HTTP/1.1 204 No Content\r\n\r\n":
                    time.sleep(byte_every_s)
                    conn.sendall(bytes([byte]))
            except OSError:
                closed.append(time.monotonic())
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook", closed
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def _state(url: str, subscription_id: int) -> dict[str, Any]:
    with Database(url).connect() as c:
        row = c.execute(
            text("SELECT status, parked_reason, failures, secret FROM subscription WHERE id = :i"),
            {"i": subscription_id},
        ).mappings()
        return dict(row.one())


# -- finding 1: a bad subscription stops nobody ------------------------------------------------
def test_a_subscription_is_validated_whole_when_made(fresh_url: str) -> None:
    sci = client_for(fresh_url, "reader", "sci")
    hook = "http://127.0.0.1:9/hook"
    for bad, field, status in (
        ({"since": "'"}, "since", 400),  # not written as a cursor
        ({"since": "bm90IGEgY3Vyc29y"}, "since", 422),  # written as one, but not ours
        ({"batch_size": "many"}, "batch_size", 400),
        ({"batch_size": 0}, "batch_size", 400),
        ({"bbox": [1, 2, 3]}, "bbox", 400),
    ):
        answer = sci.post("/subscriptions", json={"url": hook, **bad})
        assert answer.status_code == status, (bad, answer.get_json())
        assert answer.get_json()["field"] == field, (bad, answer.get_json())


def test_a_subscription_that_cannot_be_read_delays_no_other(fresh_url: str) -> None:
    good, bad_receiver = Receiver(), Receiver()
    with receiving(good) as hook, receiving(bad_receiver) as bad_hook:
        bad = _subscribe(fresh_url, bad_hook)
        with Database(fresh_url).begin() as c:  # as stored before subscriptions were checked
            c.execute(text("UPDATE subscription SET cursor = '''' WHERE id = :i"), {"i": bad["id"]})
        _subscribe(fresh_url, hook)
        _notice(fresh_url, "31", 2)
        started = time.monotonic()
        assert webhooks.deliver_due(Database(fresh_url)) == 1
        took = time.monotonic() - started
    assert len(good.accepted) == 1 and bad_receiver.received == []
    state = _state(fresh_url, bad["id"])
    assert state["failures"] == 1 and state["status"] == "active"  # backs off, parks later
    assert took < 5


# -- finding 2: a slow receiver holds nothing of anyone's ----------------------------------------
def test_a_trickling_receiver_is_cut_at_the_deadline_and_the_feed_goes_on(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(outbound, "DEADLINE_S", 1.5)
    seen: dict[str, float] = {}
    with trickling(0.5) as (hook, _closed):  # 27 bytes at 2 a second: 13 s if let run
        _subscribe(fresh_url, hook)
        _notice(fresh_url, "41", 1)

        def commit_and_read() -> None:
            time.sleep(0.5)  # the delivery is under way, its receiver trickling
            _notice(fresh_url, "42", 1)
            committed = time.monotonic()
            while time.monotonic() - committed < 5:
                with Database(fresh_url).connect() as c:
                    units = {ch["entity_id"].split("/")[0] for ch in read_changes(c)["changes"]}
                if "42" in units:
                    seen["feed_delay_s"] = time.monotonic() - committed
                    return
                time.sleep(0.01)

        reader = threading.Thread(target=commit_and_read)
        reader.start()
        started = time.monotonic()
        webhooks.deliver_due(Database(fresh_url))
        seen["delivery_s"] = time.monotonic() - started
        reader.join()
    with Database(fresh_url).connect() as c:
        error = c.execute(text("SELECT error FROM delivery ORDER BY id DESC LIMIT 1")).scalar()
    assert error == "timeout"
    assert seen["delivery_s"] < 1.5 + 1.0  # the deadline, not the receiver's pace
    assert seen["feed_delay_s"] < 1.0  # the change is in the feed at once, for everyone


# -- finding 3: outbound safety -----------------------------------------------------------------
INTERNAL = [
    "http://127.0.0.1/hook",
    "http://localhost:5432/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.7/",
    "http://192.168.1.1/",
    "http://172.16.0.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
]


@pytest.mark.parametrize("url", INTERNAL)
def test_every_internal_address_form_is_refused(
    fresh_url: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(outbound.ALLOW_ENV, "")
    answer = client_for(fresh_url, "reader", "sci").post("/subscriptions", json={"url": url})
    assert answer.status_code == 422 and answer.get_json()["code"] == "unsafe_url", url
    assert answer.get_json()["field"] == "url"


def test_credentials_in_urls_are_refused_and_public_hosts_accepted(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(outbound.ALLOW_ENV, "")
    sci = client_for(fresh_url, "reader", "sci")
    creds = sci.post("/subscriptions", json={"url": "http://user:pw@93.184.215.14/hook"})
    assert creds.status_code == 422 and creds.get_json()["code"] == "unsafe_url"
    public = sci.post("/subscriptions", json={"url": "https://93.184.215.14/hook"})
    assert public.status_code == 201, public.get_json()


def test_redirects_are_not_followed_and_the_log_says_no_errno(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = Receiver()
    with receiving(target) as inside, _redirecting_to(inside) as hook:
        sub = _subscribe(fresh_url, hook)
        _notice(fresh_url, "51", 1)
        webhooks.deliver_due(Database(fresh_url))
    assert target.received == []  # the 302 was not followed
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()  # nothing listens there now
    closed_port = _subscribe(fresh_url, f"http://127.0.0.1:{port}/hook")
    _notice(fresh_url, "52", 1)
    monkeypatch.setattr(webhooks, "BACKOFF_BASE", 0.0)
    webhooks.deliver_due(Database(fresh_url))
    with Database(fresh_url).connect() as c:
        errors = dict(
            c.execute(
                text(
                    "SELECT DISTINCT ON (subscription_id) subscription_id, error FROM delivery"
                    " ORDER BY subscription_id, id DESC"
                )
            ).all()
        )
    assert errors[sub["id"]] == "HTTP 302"
    assert errors[closed_port["id"]] == "refused"


@contextmanager
def _redirecting_to(url: str) -> Iterator[str]:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(302)
            self.send_header("Location", url)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hook"
    finally:
        server.shutdown()
        server.server_close()


def test_a_host_no_longer_allowed_is_not_connected_to(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check runs again at each delivery, on the address then connected to."""
    receiver = Receiver()
    with receiving(receiver) as hook:
        _subscribe(fresh_url, hook)
        _notice(fresh_url, "53", 1)
        monkeypatch.setenv(outbound.ALLOW_ENV, "")
        webhooks.deliver_due(Database(fresh_url))
    assert receiver.received == []
    with Database(fresh_url).connect() as c:
        assert c.execute(text("SELECT error FROM delivery")).scalar() == "unsafe address"


def test_secrets_are_sealed_at_rest_and_rotate(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(sealing.KEY_ENV, raising=False)
    monkeypatch.setenv("TAGSIM_HOME", str(tmp_path))
    receiver = Receiver()
    with receiving(receiver) as hook:
        sub = _subscribe(fresh_url, hook)
        stored = _state(fresh_url, sub["id"])["secret"]
        assert stored.startswith(sealing.PREFIX) and SECRET not in stored
        key_file = tmp_path / "secret.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        old_key = key_file.read_bytes()
        assert webhooks.reseal_secrets(Database(fresh_url)) == 1
        assert key_file.read_bytes() != old_key
        assert not (tmp_path / "secret.key.new").exists()
        resealed = _state(fresh_url, sub["id"])["secret"]
        assert resealed != stored and sealing.unseal(resealed) == SECRET
        _notice(fresh_url, "54", 1)
        webhooks.deliver_due(Database(fresh_url))
    from tests.test_webhooks import _verified

    assert [c["entity_id"] for c in _verified(receiver.accepted[0])["changes"]] == ["54/1/0"]


# -- finding 5: a subscription belongs to its key and agency --------------------------------------
def test_revoked_keys_and_excluded_agencies_stop_receiving(fresh_url: str) -> None:
    receiver = Receiver()
    with receiving(receiver) as hook:
        with Database(fresh_url).begin() as c:
            made = create_key(c, "sci", "reader", "a receiver")
        sci = client_for(fresh_url, "reader", "sci")
        sci.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {made['key']}"
        revoked = sci.post("/subscriptions", json={"url": hook, "secret": SECRET}).get_json()
        hf = client_for(fresh_url, "reader", "hf")
        excluded = hf.post("/subscriptions", json={"url": hook, "secret": SECRET}).get_json()
        kept = _subscribe(fresh_url, hook)
        with Database(fresh_url).begin() as c:
            revoke_key(c, made["key_id"])
            set_policy(c, "changes", "all_except", ["hf"], public=False)
        _notice(fresh_url, "61", 1)
        deadline = time.monotonic() + 15  # (the change is in the feed once older work ends)
        while not receiver.accepted and time.monotonic() < deadline:
            webhooks.deliver_due(Database(fresh_url))
            time.sleep(0.1)
    assert {_state(fresh_url, s["id"])["parked_reason"] for s in (revoked, excluded)} == {
        "key_revoked",
        "agency_excluded",
    }
    assert _state(fresh_url, kept["id"])["status"] == "active"
    assert len(receiver.accepted) == 1  # only the subscription still entitled
    shown = client_for(fresh_url, "admin", "moi").get(f"/subscriptions/{excluded['id']}")
    assert shown.get_json()["parked_reason"] == "agency_excluded"
