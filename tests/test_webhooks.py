"""Push subscriptions against a real receiving HTTP server on 127.0.0.1: signatures, order,
at-least-once with retries and backoff, parking, the delivery log, filters."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from shapely.geometry import box
from sqlalchemy import text

from geo.changes import webhooks
from geo.changes.feed import read_changes
from geo.changes.plate_notices import apply_notice
from geo.platform.database import Database
from tests.helpers import client_for

SECRET = "a-shared-secret-of-the-sci"


class Receiver:
    """Records every POST; answers ``fail_first`` times with 500, then 204."""

    def __init__(self, fail_first: int = 0, always_fail: bool = False) -> None:
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.received: list[dict[str, Any]] = []
        self.accepted: list[dict[str, Any]] = []
        self.lock = threading.Lock()


@contextmanager
def receiving(receiver: Receiver) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            entry = {"headers": dict(self.headers), "body": body}
            with receiver.lock:
                receiver.received.append(entry)
                fail = receiver.always_fail or len(receiver.received) <= receiver.fail_first
                if not fail:
                    receiver.accepted.append(entry)
            self.send_response(500 if fail else 204)
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


def _notice(url: str, unit: str, n: int, lon: float = 51.4) -> None:
    lines = ["unit,main,sub,wkt"] + [
        f'{unit},{i},0,"{box(lon + i * 0.001, 35.7, lon + i * 0.001 + 0.0005, 35.7005).wkt}"'
        for i in range(1, n + 1)
    ]
    apply_notice(Database(url), ("\n".join(lines) + "\n").encode(), f"notice-{unit}")


def _verified(entry: dict[str, Any]) -> dict[str, Any]:
    stamp = entry["headers"]["X-Tagsim-Timestamp"]
    expected = (
        "sha256="
        + hmac.new(
            SECRET.encode(), f"{stamp}.".encode() + entry["body"], hashlib.sha256
        ).hexdigest()
    )
    assert hmac.compare_digest(entry["headers"]["X-Tagsim-Signature"], expected)
    assert abs(int(stamp) - time.time()) < 120
    return json.loads(entry["body"])


def _subscribe(url: str, hook: str, **extra: Any) -> dict[str, Any]:
    client = client_for(url, "reader", "sci")
    answer = client.post(
        "/subscriptions", json={"url": hook, "secret": SECRET, "kinds": ["plate"], **extra}
    )
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_batches_arrive_signed_in_feed_order_exactly_once(fresh_url: str) -> None:
    receiver = Receiver()
    with receiving(receiver) as hook:
        _notice(fresh_url, "1", 2)  # before the subscription: not sent
        sub = _subscribe(fresh_url, hook, batch_size=3)
        for unit in ("2", "3", "4"):
            _notice(fresh_url, unit, 4)
        assert webhooks.deliver_due(Database(fresh_url)) == 4  # 12 changes in batches of 3
    bodies = [_verified(e) for e in receiver.accepted]
    got = [c["entity_id"] for b in bodies for c in b["changes"]]
    with Database(fresh_url).connect() as c:
        feed = read_changes(c, None, kinds=["plate"], limit=1000)["changes"]
    assert got == [c["entity_id"] for c in feed if not c["entity_id"].startswith("1/")]
    assert {b["subscription"] for b in bodies} == {sub["id"]}
    log = client_for(fresh_url, "reader", "sci").get(f"/subscriptions/{sub['id']}/deliveries")
    assert [d["ok"] for d in log.get_json()["deliveries"]] == [True] * 4


def test_failures_retry_with_backoff_then_deliver_in_order(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "BACKOFF_BASE", 0.05)
    receiver = Receiver(fail_first=2)
    with receiving(receiver) as hook:
        sub = _subscribe(fresh_url, hook, batch_size=2)
        _notice(fresh_url, "5", 4)
        deadline = time.monotonic() + 30
        while len(receiver.accepted) < 2 and time.monotonic() < deadline:
            webhooks.deliver_due(Database(fresh_url))
            time.sleep(0.1)
    assert len(receiver.received) == 4  # two refused, then both batches
    first_tries = [_verified(e)["delivery"] for e in receiver.received]
    assert len(set(first_tries)) == 4
    sent = [c["entity_id"] for e in receiver.accepted for c in _verified(e)["changes"]]
    assert sent == ["5/1/0", "5/2/0", "5/3/0", "5/4/0"]
    retried = [json.loads(e["body"])["changes"] for e in receiver.received[:3]]
    assert retried[0] == retried[1] == retried[2]  # the same batch until it is accepted
    reader = client_for(fresh_url, "reader", "sci")
    log = reader.get(f"/subscriptions/{sub['id']}/deliveries").get_json()["deliveries"]
    assert [(d["ok"], d["status_code"]) for d in reversed(log)] == [
        (False, 500),
        (False, 500),
        (True, 204),
        (True, 204),
    ]
    state = reader.get(f"/subscriptions/{sub['id']}").get_json()
    assert state["failures"] == 0 and state["status"] == "active"


def test_a_failing_receiver_is_parked_and_can_be_resumed(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(webhooks, "BACKOFF_BASE", 0.01)
    monkeypatch.setattr(webhooks, "MAX_FAILURES", 3)
    receiver = Receiver(always_fail=True)
    reader = client_for(fresh_url, "reader", "sci")
    with receiving(receiver) as hook:
        sub = _subscribe(fresh_url, hook)
        _notice(fresh_url, "6", 1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            webhooks.deliver_due(Database(fresh_url))
            if reader.get(f"/subscriptions/{sub['id']}").get_json()["status"] == "parked":
                break
            time.sleep(0.05)
        assert reader.get(f"/subscriptions/{sub['id']}").get_json()["status"] == "parked"
        attempts = len(receiver.received)
        webhooks.deliver_due(Database(fresh_url))
        assert len(receiver.received) == attempts == 3  # parked: no more tries
        receiver.always_fail = False
        assert reader.post(f"/subscriptions/{sub['id']}/resume").get_json()["status"] == "active"
        webhooks.deliver_due(Database(fresh_url))
    assert [c["entity_id"] for c in _verified(receiver.accepted[0])["changes"]] == ["6/1/0"]


def test_filters_agency_scope_and_bad_subscriptions(fresh_url: str) -> None:
    receiver = Receiver()
    with receiving(receiver) as hook:
        _subscribe(fresh_url, hook, bbox=[51.45, 35.6, 51.6, 35.8])
        _notice(fresh_url, "7", 2, lon=51.40)  # outside the bbox
        _notice(fresh_url, "8", 2, lon=51.50)  # inside
        webhooks.deliver_due(Database(fresh_url))
    got = [c["entity_id"] for e in receiver.accepted for c in _verified(e)["changes"]]
    assert got == ["8/1/0", "8/2/0"]
    sci, hf = client_for(fresh_url, "reader", "sci"), client_for(fresh_url, "reader", "hf")
    assert len(sci.get("/subscriptions").get_json()["subscriptions"]) == 1
    assert hf.get("/subscriptions").get_json()["subscriptions"] == []
    mine = sci.get("/subscriptions").get_json()["subscriptions"][0]["id"]
    assert hf.get(f"/subscriptions/{mine}").status_code == 404
    assert "secret" not in sci.get(f"/subscriptions/{mine}").get_json()
    for bad, field in (
        ({"url": "ftp://x"}, "url"),
        ({"url": "http://127.0.0.1:1/x", "kinds": ["weather"]}, "kinds"),
        ({"url": "http://127.0.0.1:1/x", "secret": "short"}, "secret"),
        ({"url": "http://127.0.0.1:1/x", "within": "nowhere"}, "within"),
    ):
        answer = sci.post("/subscriptions", json=bad)
        assert answer.status_code == 400 and answer.get_json()["field"] == field, answer.get_json()
    assert sci.delete(f"/subscriptions/{mine}").status_code == 200
    assert sci.get("/subscriptions").get_json()["subscriptions"] == []


def test_no_transaction_is_open_while_a_receiver_answers(fresh_url: str) -> None:
    """While the receiver holds the POST, the worker has no transaction open, and a change
    committed meanwhile is in the feed at once (the delivery holds no snapshot)."""
    seen: dict[str, Any] = {}

    receiver = Receiver()
    with receiving(receiver) as hook:
        _subscribe(fresh_url, hook)
        _notice(fresh_url, "7", 1)
        original = webhooks._post

        def post_and_look(url: str, body: bytes, headers: dict[str, str]) -> Any:
            with Database(fresh_url).connect() as c:
                seen["open"] = c.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                    )
                ).scalar_one()
                seen["locks"] = c.execute(
                    text(
                        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                        " WHERE a.datname = current_database() AND l.pid <> pg_backend_pid()"
                        " AND l.locktype IN ('tuple', 'transactionid')"
                    )
                ).scalar_one()
            _notice(fresh_url, "8", 1)  # committed while the receiver has not answered
            with Database(fresh_url).connect() as c:
                units = {ch["entity_id"].split("/")[0] for ch in read_changes(c, None)["changes"]}
            seen["visible"] = "8" in units
            return original(url, body, headers)

        webhooks._post = post_and_look  # type: ignore[assignment]
        try:
            assert webhooks.deliver_due(Database(fresh_url)) >= 1
        finally:
            webhooks._post = original  # type: ignore[assignment]
    assert seen == {"open": 0, "locks": 0, "visible": True}
