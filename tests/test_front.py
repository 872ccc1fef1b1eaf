"""The front (api/front.py): nginx before gunicorn, so slow clients cost the others nothing
(issue 22, finding 7: eight slowloris connections made /healthz time out)."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.front import front_config, nginx_binary

pytestmark = pytest.mark.skipif(
    nginx_binary() is None, reason="nginx missing: apt-get install nginx-light (make does it)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_configuration_is_accepted_by_nginx(tmp_path: Path) -> None:
    for part in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / "temp" / part).mkdir(parents=True)
    config = tmp_path / "nginx.conf"
    config.write_text(front_config(tmp_path, "127.0.0.1", 8999, tmp_path / "g.sock", 512))
    done = subprocess.run(
        [str(nginx_binary()), "-t", "-p", str(tmp_path), "-c", str(config)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    text = config.read_text()
    assert "client_header_timeout 10s" in text and "proxy_request_buffering on" in text


SIZE = ("--workers", "1", "--threads", "2")


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "TAGSIM_DATABASE_URL": db_url, "TAGSIM_HOME": str(tmp_path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port), *SIZE],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "no server"
                time.sleep(0.2)
        # gunicorn behind the front got the workers and threads asked for
        assert any(line.endswith("gunicorn.sock 1 2") for line in _left_of(tmp_path))
        yield base
    finally:
        server.terminate()  # SIGTERM, as a service manager stops it
        server.wait(timeout=30)
    # nothing of it is left running: no nginx, no gunicorn (they leaked before)
    deadline = time.monotonic() + 10
    while _left_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _left_of(tmp_path) == [], _left_of(tmp_path)


def _left_of(folder: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", str(folder)], capture_output=True, text=True).stdout
    return [line for line in found.splitlines() if "pgrep" not in line]


def test_healthz_answers_at_once_while_200_slow_clients_trickle(served: str) -> None:
    port = int(served.rsplit(":", 1)[1])
    slow = []
    for _ in range(200):  # each sends a request line and then a header now and then
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        slow.append(s)
    try:
        took = []
        for i in range(20):
            for s in slow[i * 10 : i * 10 + 10]:
                s.sendall(b"X-Slow: 1\r\n")  # still not done
            started = time.monotonic()
            answer = urllib.request.urlopen(served + "/healthz", timeout=5)
            assert answer.status == 200
            took.append(time.monotonic() - started)
    finally:
        for s in slow:
            s.close()
    assert statistics.median(took) < 0.1, took
    assert max(took) < 1.0, took
