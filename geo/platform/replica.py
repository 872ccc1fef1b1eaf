"""A streaming read replica of the project's cluster: ``pg_basebackup`` and a second
server on another loopback port, in hot standby (reads only).

It is the same kind of folder as the primary's (`LocalCluster`), made by copying the
primary instead of by initdb: ``pg_basebackup -R -X stream`` writes ``standby.signal`` and
the primary's connection into ``postgresql.auto.conf``, so the replica follows the primary
from the moment it starts. Same users and password as the primary.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from geo.errors import ClusterError
from geo.platform.cluster import DATABASE, SUPERUSER, LocalCluster
from geo.platform.install import ensure_postgis_installed

__all__ = ["LocalReplica", "wait_for_replay"]


class LocalReplica(LocalCluster):
    """A hot standby of ``primary`` under ``root``, serving 127.0.0.1:``port``."""

    def __init__(self, root: Path, port: int, primary: LocalCluster) -> None:
        super().__init__(root, port)
        self.primary = primary

    def up(self) -> str:
        """Copy the primary (first time) and start following it; return the URL."""
        self._bindir = ensure_postgis_installed()
        if self.primary.status().port is None:
            raise ClusterError("the primary is not running: start it first (tagsim db up)")
        if not (self.data_dir / "PG_VERSION").exists():
            self._basebackup()
        if self._running_port() is None:
            self._start()
        self._wait_ready()
        return self.url()

    def _basebackup(self) -> None:
        self._make_home()
        password = self.primary.password_file.read_text().strip()
        done = self._run(
            [
                str(self._bindir / "pg_basebackup"),  # type: ignore[operator]
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.status().port),
                "-U",
                SUPERUSER,
                "-D",
                str(self.data_dir),
                "-R",  # standby.signal + primary_conninfo
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            env={**os.environ, "PGPASSWORD": password},
        )
        if done.returncode != 0:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise ClusterError(f"pg_basebackup failed: {done.stderr.strip()}")
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)

    def _wait_ready(self) -> None:
        import time

        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    self.url(DATABASE).replace("+psycopg", ""), connect_timeout=3
                ) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise ClusterError(f"the replica does not accept connections: {exc}") from exc
                time.sleep(0.3)


def wait_for_replay(primary_url: str, replica_url: str, timeout: float = 60) -> None:
    """Wait until the replica has replayed everything the primary had written when called
    (``replica_url`` names the same database on the replica; it may not exist there yet)."""
    import time

    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from geo.platform.database import Database

    with Database(primary_url).connect() as conn:
        lsn = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with Database(replica_url).connect() as conn:
                if not conn.execute(
                    text("SELECT pg_wal_lsn_diff(:l, pg_last_wal_replay_lsn()) > 0"), {"l": lsn}
                ).scalar_one():
                    return
        except OperationalError:  # the database is not replayed yet
            pass
        time.sleep(0.1)
    raise ClusterError(f"the replica did not catch up within {timeout:.0f} s")
