"""Which server answers: the primary for writes, read replicas for reads.

``TAGSIM_DATABASE_URL`` (or the local cluster) is the primary; ``TAGSIM_REPLICA_URLS``
lists streaming replicas. A read takes the replicas in turn; one that fails to connect is
left out for a few seconds and the next is tried, the primary last. A server that failed
is remembered per process (``mark_down``), so a stopped primary costs one refused
connection per few seconds, not one per request.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from geo.errors import DatabaseUnreachable, PrimaryUnavailable
from geo.platform.database import Database

__all__ = ["Route", "Router"]

DOWN_FOR_S = 3.0


@dataclass(frozen=True)
class Route:
    """An open connection and where it goes."""

    conn: Connection
    url: str
    role: str  # primary | replica


@dataclass
class Router:
    primary: str
    replicas: tuple[str, ...] = ()
    clock: Callable[[], float] = time.monotonic  # (tests move it instead of sleeping)
    _down: dict[str, float] = field(default_factory=dict)
    _turn: itertools.count = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def is_down(self, url: str) -> bool:
        with self._lock:
            return self._down.get(url, 0.0) > self.clock()

    def mark_down(self, url: str) -> None:
        with self._lock:
            self._down[url] = self.clock() + DOWN_FOR_S

    def write(self, *, autocommit: bool = False) -> Route:
        """A connection to the primary, or ``PrimaryUnavailable`` (503)."""
        if self.replicas and self.is_down(self.primary):
            raise self.primary_down()
        try:
            conn = Database(self.primary).serving(autocommit=autocommit)
        except OperationalError:
            if not self.replicas:
                raise  # the only server: the caller's "database unreachable" applies
            self.mark_down(self.primary)
            raise self.primary_down() from None
        return Route(conn, self.primary, "primary")

    def read(self) -> Route:
        """A connection for reading only: a replica in turn, else the primary."""
        if not self.replicas:
            return self.write(autocommit=True)
        start = next(self._turn)
        order = [self.replicas[(start + i) % len(self.replicas)] for i in range(len(self.replicas))]
        for url in [*order, self.primary]:
            if self.is_down(url):
                continue
            try:
                conn = Database(url).serving(autocommit=True)
            except OperationalError:
                self.mark_down(url)
                continue
            return Route(conn, url, "primary" if url == self.primary else "replica")
        raise DatabaseUnreachable("no database server answers (primary and replicas)")

    def primary_down(self) -> PrimaryUnavailable:
        return PrimaryUnavailable(
            "the primary database does not answer: writes are refused until it is back;"
            " reads are served by the replicas"
        )
