"""The front: Debian's nginx before gunicorn, so that slow clients cost nothing.

gunicorn's threads each wait for their client: eight connections that send their headers
one byte at a time (slowloris) held every thread of ``tagsim serve`` and ``/healthz`` timed
out for everyone. nginx reads every request whole — headers within
``client_header_timeout``, bodies buffered to disk — on one event loop with thousands of
connections, and only then hands it to gunicorn over a Unix socket; answers go back the same
way. ``tagsim serve`` (and ``make run``) start both when nginx is installed
(``scripts/bootstrap.sh`` installs it with apt), else gunicorn alone, saying so.

gunicorn then sees nginx as its only client: the client's address comes from
``X-Forwarded-For``, which nginx sets and the app trusts only behind the front
(``TAGSIM_BEHIND_FRONT=1``, set here; :func:`api.app.create_app` applies ``ProxyFix``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from geo.platform.config import BEHIND_FRONT_ENV

__all__ = ["NGINX", "front_config", "nginx_binary", "running_front"]

NGINX = ("nginx", "/usr/sbin/nginx")


def nginx_binary() -> str | None:
    """nginx's program, if installed."""
    for candidate in NGINX:
        found = shutil.which(candidate) or (candidate if Path(candidate).exists() else None)
        if found:
            return found
    return None


def front_config(folder: Path, host: str, port: int, socket: Path, max_body_mb: int) -> str:
    """nginx's configuration: listen on ``host:port``, pass whole requests to ``socket``."""
    temp = folder / "temp"
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    # Started by root (a container, CI), nginx's workers would become "nobody", who cannot
    # reach the socket and buffers under the project's folder: they stay the starting user,
    # as gunicorn's do.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    return f"""# made by tagsim serve (api/front.py); do not edit: it is written at each start
{user}daemon off;
master_process on;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    # slow clients wait here, never in the application's threads
    client_header_timeout 10s;
    client_body_timeout 30s;
    send_timeout 60s;
    keepalive_timeout 30s;
    client_max_body_size {max_body_mb}m;
    client_body_buffer_size 1m;
    upstream tagsim {{
        server unix:{socket};
        keepalive 16;
    }}
    server {{
        listen {listen} backlog=4096;
        location / {{
            proxy_pass http://tagsim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_request_buffering on;
            proxy_buffering off;  # streamed downloads and tiles go out as they are made
            proxy_read_timeout 300s;
        }}
    }}
}}
"""


@contextmanager
def running_front(
    folder: Path, host: str, port: int, socket: Path, max_body_mb: int = 512
) -> Iterator[subprocess.Popen[bytes]]:
    """nginx in front of ``socket`` while the block runs (``folder``: its config, pid,
    log and buffers). ``RuntimeError`` when its configuration is refused or it exits."""
    binary = nginx_binary()
    if binary is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
    for part in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / "temp" / part).mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    config.write_text(front_config(folder, host, port, socket, max_body_mb), encoding="utf-8")
    check = subprocess.run(
        [binary, "-t", "-q", "-p", str(folder), "-c", str(config)],
        capture_output=True,
        text=True,
    )
    if check.returncode != 0:
        raise RuntimeError(f"nginx refused its configuration: {check.stderr.strip()}")
    process = subprocess.Popen(
        [binary, "-p", str(folder), "-c", str(config)], preexec_fn=_die_with_parent
    )
    try:
        time.sleep(0.2)
        if process.poll() is not None:
            log = (folder / "error.log").read_text(errors="replace")[-500:]
            raise RuntimeError(f"nginx stopped at start: {log}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGQUIT)  # graceful: finish the requests under way
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _die_with_parent() -> None:
    """In a child, before it runs: the kernel sends it SIGTERM when its parent dies, so a
    ``tagsim serve`` killed outright leaves no nginx or gunicorn behind (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _stop_on_sigterm() -> None:
    """SIGTERM (a service manager, ``kill``) ends ``tagsim serve`` like Ctrl-C: the
    ``finally`` blocks stop nginx and gunicorn."""

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def serve_behind_front(host: str, port: int, workers: int, folder: Path, threads: int = 4) -> None:
    """gunicorn on a Unix socket in ``folder``, nginx on ``host:port`` before it; until
    stopped. Without nginx: gunicorn alone on ``host:port``, with a warning."""
    from api.serve import serve

    if nginx_binary() is None:
        print(
            "tagsim: nginx is not installed: serving without a front (slow clients can hold"
            " the workers); apt-get install nginx-light",
            file=sys.stderr,
        )
        serve(host, port, workers, threads)
        return
    _stop_on_sigterm()
    folder.mkdir(parents=True, exist_ok=True)
    socket = folder / "gunicorn.sock"
    socket.unlink(missing_ok=True)
    env = {**os.environ, BEHIND_FRONT_ENV: "1"}
    app = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from api.serve import serve_unix; import sys;"
            " serve_unix(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))",
            str(socket),
            str(workers),
            str(threads),
        ],
        env=env,
        preexec_fn=_die_with_parent,
    )
    try:
        deadline = time.monotonic() + 60
        while not socket.exists():
            if app.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.1)
        with running_front(folder, host, port, socket) as nginx:
            print(f"tagsim: nginx on http://{host}:{port} before gunicorn", file=sys.stderr)
            while app.poll() is None and nginx.poll() is None:
                time.sleep(0.5)
    finally:
        if app.poll() is None:
            app.send_signal(signal.SIGTERM)
            app.wait(timeout=30)
