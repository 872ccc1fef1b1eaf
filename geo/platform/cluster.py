"""The project's own PostGIS cluster: initdb, start, stop, status, URL.

The cluster lives in a folder the project owns (``.tagsim/pg``), listens on one
loopback port only, has no Unix socket, and asks for a password that is generated
at initdb time and kept beside it (mode 0600). PostgreSQL refuses to run as root,
so when we are root the server runs as an unprivileged system user (``postgres``
when Debian's package made it, else ``tagsim``), which then owns the data folder.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from geo.errors import ClusterError, PortInUse
from geo.platform.install import ensure_postgis_installed

__all__ = ["ClusterStatus", "LocalCluster", "port_is_free"]

SUPERUSER = "tagsim"
DATABASE = "tagsim"


@dataclass(frozen=True)
class ClusterStatus:
    """What `tagsim db status` prints."""

    data_dir: Path
    initialized: bool
    running: bool
    port: int | None
    log_file: Path


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class LocalCluster:
    """A PostgreSQL + PostGIS cluster under ``root``, serving 127.0.0.1:``port``.

    Example:
        >>> cluster = LocalCluster(Path(".tagsim/pg"), 54329)   # doctest: +SKIP
        >>> url = cluster.up()                                  # doctest: +SKIP
    """

    def __init__(self, root: Path, port: int) -> None:
        self.root = Path(root).resolve()
        self.port = port
        self._bindir: Path | None = None

    # -- paths ---------------------------------------------------------------------------
    @property
    def home(self) -> Path:
        """Where the data folder actually lives (see :meth:`_server_home`)."""
        pointer = self.root / "location"
        return Path(pointer.read_text().strip()) if pointer.exists() else self.root

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_file(self) -> Path:
        return self.home / "postgres.log"

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    # -- public lifecycle ----------------------------------------------------------------
    def status(self) -> ClusterStatus:
        running_port = self._running_port()
        return ClusterStatus(
            data_dir=self.data_dir,
            initialized=(self.data_dir / "PG_VERSION").exists(),
            running=running_port is not None,
            port=running_port,
            log_file=self.log_file,
        )

    def up(self) -> str:
        """Create (first time) and start the cluster; return its database URL. Idempotent."""
        self._bindir = ensure_postgis_installed()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        if self._running_port() is None:
            self._start()
        self._ensure_database(DATABASE)
        return self.url()

    def down(self) -> bool:
        """Stop the cluster; True if it was running."""
        if self._running_port() is None:
            return False
        self._pg_ctl("stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60")
        return True

    def destroy(self) -> None:
        """Stop the cluster and delete its files (throwaway test clusters)."""
        with contextlib.suppress(ClusterError):
            self.down()
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = DATABASE) -> str:
        """The SQLAlchemy URL of ``database`` on this cluster (psycopg 3 driver)."""
        port = self._running_port() or self.port
        password = quote(self._password(), safe="")
        return f"postgresql+psycopg://{SUPERUSER}:{password}@127.0.0.1:{port}/{database}"

    # -- internals -----------------------------------------------------------------------
    def _server_user(self) -> str | None:
        """The OS user the server runs as: ``None`` means ourselves (not root)."""
        if os.geteuid() != 0:
            return None
        name = os.environ.get("TAGSIM_PG_OS_USER", "postgres")
        try:
            pwd.getpwnam(name)
        except KeyError:
            name = "tagsim"
            try:
                pwd.getpwnam(name)
            except KeyError:
                subprocess.run(
                    [
                        "useradd",
                        "--system",
                        "--no-create-home",
                        "--shell",
                        "/usr/sbin/nologin",
                        name,
                    ],
                    check=True,
                )
        return name

    def _run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        user = self._server_user()
        extra: dict[str, object] = {}
        if user:
            entry = pwd.getpwnam(user)
            extra = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        return subprocess.run(  # type: ignore[call-overload]
            args, capture_output=True, text=True, cwd="/", **extra, **kwargs
        )

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        if self._bindir is None:
            self._bindir = ensure_postgis_installed(allow_install=False)
        done = self._run([str(self._bindir / "pg_ctl"), *args])
        if done.returncode != 0 and args[0] != "status":
            tail = self._log_tail()
            raise ClusterError(
                f"pg_ctl {args[0]} failed: {done.stderr.strip() or done.stdout.strip()}"
                + (f"\nlast lines of {self.log_file}:\n{tail}" if tail else "")
            )
        return done

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _server_home(self) -> Path:
        """A folder the server user can reach: the project's, or one under /var/lib.

        When we are root and the checkout sits under a folder the server user cannot
        traverse (``/root``, pytest's 0700 temp folders), the data goes to
        ``/var/lib/tagsim/<hash of root>`` and ``root/location`` points there.
        """
        user = self._server_user()
        if user is None:
            return self.root
        probe = self._run(["test", "-x", str(self.root.parent)])
        if probe.returncode == 0:
            return self.root
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:16]
        home = Path("/var/lib/tagsim") / digest
        home.mkdir(parents=True, exist_ok=True)
        Path("/var/lib/tagsim").chmod(0o755)
        (self.root / "location").write_text(str(home) + "\n")
        return home

    def _make_home(self) -> Path:
        """The server's folder, created and owned by the server user."""
        self.root.mkdir(parents=True, exist_ok=True)
        home = self._server_home()
        home.mkdir(parents=True, exist_ok=True)
        user = self._server_user()
        if user:
            entry = pwd.getpwnam(user)
            os.chown(home, entry.pw_uid, grp.getgrgid(entry.pw_gid).gr_gid)
        return home

    def _initdb(self) -> None:
        home = self._make_home()
        user = self._server_user()
        password = secrets.token_urlsafe(24)
        pwfile = home / ".initdb-password"
        pwfile.write_text(password + "\n")
        pwfile.chmod(0o600)
        if user:
            os.chown(pwfile, pwd.getpwnam(user).pw_uid, -1)
        try:
            done = self._run(
                [
                    str(self._bindir / "initdb"),  # type: ignore[operator]
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    "--pwfile",
                    str(pwfile),
                    "--auth-local",
                    "scram-sha-256",
                    "--auth-host",
                    "scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale",
                    "C.UTF-8",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if done.returncode != 0:
            raise ClusterError(f"initdb failed: {done.stderr.strip()}")
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as out:
            out.write(
                "\n# tagsim: loopback only, no Unix socket, modest memory for a laptop\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "shared_buffers = '256MB'\n"
                "work_mem = '32MB'\n"
                "maintenance_work_mem = '256MB'\n"
                "max_connections = 200\n"
                "wal_level = 'replica'\n"
                "fsync = on\n"
            )

    def _running_port(self) -> int | None:
        pidfile = self.data_dir / "postmaster.pid"
        if not pidfile.exists():
            return None
        lines = pidfile.read_text().splitlines()
        try:
            pid, port = int(lines[0]), int(lines[3])
        except (IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return port

    def _start(self) -> None:
        if not port_is_free(self.port):
            raise PortInUse(
                f"port {self.port} on 127.0.0.1 is taken by another program; "
                "stop it or set TAGSIM_PG_PORT to a free port",
                port=self.port,
            )
        self._pg_ctl(
            "start",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port}",
        )

    def _password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            raise ClusterError(f"no cluster at {self.root}: run `tagsim db up` first") from None

    def _ensure_database(self, name: str) -> None:
        import psycopg

        admin = self.url("postgres").replace("postgresql+psycopg", "postgresql")
        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                    exists = conn.execute(
                        "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'CREATE DATABASE "{name}"')
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(f"the cluster does not accept connections: {exc}") from exc
                time.sleep(0.3)
        with psycopg.connect(self.url(name).replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
