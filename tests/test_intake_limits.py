"""Intake limits on the bytes actually read, and the 500s of the attack review (issue 22,
findings 6, 11 and 16): chunked bodies held to the endpoint's limit, no body read before
the key is checked, JSON depth, malformed values answered 400/404."""

from __future__ import annotations

import io
import json
import socket
import time
from typing import Any

import pytest
from flask.testing import FlaskClient

from geo.access.control import create_key
from geo.platform.database import Database
from tests.helpers import client_for
from tests.live import live_server


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def _chunked_post(base: str, path: str, key: str, total_mb: int) -> tuple[int, float]:
    """POST ``total_mb`` MB as Transfer-Encoding: chunked; the status and seconds taken."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    started = time.monotonic()
    sock.sendall(
        (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode()
    )
    chunk = b"x" * (1024 * 1024)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    try:
        sock.sendall(b'9\r\n{"pad": "\r\n')  # (a chunk of its own)
        for _ in range(total_mb):
            sock.sendall(frame)
        sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server stopped reading at its limit and closed: what we want
    answer = b""
    try:
        while b"\r\n" not in answer:
            part = sock.recv(4096)
            if not part:
                break
            answer += part
    except OSError:
        pass
    sock.close()
    status = int(answer.split()[1]) if answer.startswith(b"HTTP/1.") else 0
    return status, time.monotonic() - started


def test_a_chunked_body_is_held_to_the_endpoint_limit(db_url: str) -> None:
    with Database(db_url).begin() as c:
        key = create_key(c, "sci", "reader", "chunked")["key"]
    with live_server(db_url, RATE_LIMIT="100000 per minute") as base:
        before = _rss_mb()
        status, took = _chunked_post(base, "/coverage", key, total_mb=200)
        grown = _rss_mb() - before
    assert status in (413, 0), status  # 413, or the connection closed at the limit
    assert grown < 40, f"the server grew {grown:.0f} MB on a 200 MB chunked body"
    assert took < 20


def test_no_body_is_read_before_the_key_is_checked(db_url: str) -> None:
    client = client_for(db_url, "reader", "sci")
    client.environ_base.pop("HTTP_AUTHORIZATION")
    nul = client.post(
        "/plates/notices",
        data={"name": "a\x00b", "file": (io.BytesIO(b"x"), "n.csv")},
        content_type="multipart/form-data",
    )
    assert nul.status_code == 401  # not 400 for the NUL: the form was never parsed


DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    "path",
    ["/resolve", "/coverage", "/subscriptions", "/crosswalk/decisions", "/admin/keys"],
)
def test_json_nested_too_deep_is_a_400(db_url: str, path: str) -> None:
    client = client_for(db_url)
    for body in (DEEP, json.dumps({"a": json.loads("[" * 40 + "]" * 40)})):
        answer = client.post(path, data=body, content_type="application/json")
        assert answer.status_code == 400, (path, answer.get_data(as_text=True)[:200])
        assert answer.get_json()["code"] == "too_deep", (path, answer.get_json())


@pytest.mark.parametrize(
    "body",
    [
        {"type": [], "coordinates": []},
        {"type": {}, "coordinates": []},
        {
            "type": "Polygon",
            "coordinates": [[[51, 35], [51.1, 35], [51, 35.1], [51, 35]]],
            "crs": {"type": "name", "properties": ["EPSG:4326"]},
        },
    ],
)
def test_malformed_plots_are_400s(db_url: str, body: dict[str, Any]) -> None:
    answer = client_for(db_url).post("/coverage", json=body)
    assert answer.status_code == 400, answer.get_data(as_text=True)[:300]


def test_unknown_agency_in_plan_coverage_is_a_404(db_url: str) -> None:
    client: FlaskClient = client_for(db_url)
    for agency in ("nobody", "sci_code"):  # well-formed, unknown: it reached SQL before
        answer = client.get(f"/villages/{agency}/123/plan-coverage")
        assert answer.status_code == 404, (agency, answer.get_data(as_text=True)[:200])
        assert answer.get_json()["code"] == "unknown_agency"
    assert client.get("/villages/x;DROP/123/plan-coverage").status_code == 400


def test_resolve_takes_the_readme_s_hundred_thousand_codes_and_no_more(db_url: str) -> None:
    client = client_for(db_url)
    answer = client.post("/resolve", json={"agency": "sci", "codes": ["1"] * 100_001})
    assert answer.status_code == 400 and answer.get_json()["code"] == "too_many_items"
