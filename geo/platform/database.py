"""The one owner of database connections and transactions (Datasette's ``Database``).

:class:`Database` is made once by the app factory, the command line and the worker, and
passed down: domain functions take it (or a connection it opened), never a URL. It is the
only place that makes SQLAlchemy engines: one pool per URL and flavour per process, shared
by every ``Database`` of that URL. Configuration by environment: ``TAGSIM_DATABASE_URL``
names an external PostGIS; without it the project's own local cluster is used (and started
when asked).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import Connection, Engine, TextClause, create_engine, event, text
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    DisconnectionError,
    NoResultFound,
    OperationalError,
)
from sqlalchemy.pool import NullPool

from geo.errors import ConfigError, DatabaseUnreachable, PostGISMissing
from geo.platform.cluster import LocalCluster
from geo.platform.config import Settings, settings

__all__ = [
    "Database",
    "check_database",
    "copy_lines",
    "copy_text",
    "create_database",
    "database_url",
    "dispose",
    "drop_database",
    "local_cluster",
    "normalize_url",
    "read_mapping",
    "read_row",
    "read_rows",
    "safe_url",
    "statement",
]


def normalize_url(url: str) -> str:
    """Make any PostgreSQL URL use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


def local_cluster(cfg: Settings | None = None) -> LocalCluster:
    """The project's own cluster as configured (not started)."""
    cfg = cfg or settings()
    return LocalCluster(cfg.cluster_dir, cfg.pg_port)


def database_url(cfg: Settings | None = None, *, start: bool = False) -> str:
    """The URL to use: the external one, or the local cluster's (started if ``start``)."""
    cfg = cfg or settings()
    if cfg.database_url:
        return normalize_url(cfg.database_url)
    cluster = local_cluster(cfg)
    return cluster.up() if start else cluster.url()


_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


# Requests are many small queries on 2 cores: a parallel plan (Gather; the planner picks
# one for an Append over many partitions) or JIT costs more than it saves there.
SERVING_OPTIONS = "-c max_parallel_workers_per_gather=0 -c jit=off"
_FLAVOURS = ("", "#autocommit", "#serving", "#serving#autocommit")


def _engine(url: str, *, autocommit: bool = False, serving: bool = False) -> Engine:
    """A pooled engine for ``url``, created once per process and URL (see :func:`dispose`).

    ``autocommit``: a separate pool whose connections never open a transaction — for
    requests that only read (and append one audit row): no BEGIN/COMMIT round trips.
    ``serving``: the pool of HTTP requests (no parallel workers, no JIT)."""
    key = url + ("#serving" if serving else "") + ("#autocommit" if autocommit else "")
    with _ENGINES_LOCK:
        found = _ENGINES.get(key)
        if found is None:
            connect_args: dict[str, Any] = {"connect_timeout": 10, "application_name": "tagsim"}
            if serving:
                connect_args["options"] = SERVING_OPTIONS
            found = _ENGINES[key] = create_engine(
                normalize_url(url),
                pool_pre_ping=not serving,  # request pools: see _ping_when_idle
                pool_size=5,
                max_overflow=10,
                connect_args=connect_args,
                **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
            )
            if serving:
                _ping_when_idle(found)
        return found


IDLE_PING_SECONDS = 1.0


def _ping_when_idle(pooled: Engine) -> None:
    """Ping a pooled connection at checkout only when it sat idle for a while.

    Under load a request pool hands the same connections round within milliseconds: a ping
    each time is a round trip per request for nothing (a PostgreSQL wake-up and a thread
    switch on busy cores). A connection idle for over ``IDLE_PING_SECONDS`` — long enough
    for its server to have restarted or gone — is pinged, and replaced if dead (the pool
    retries with a fresh connection). A server that dies while its connections are busy is
    found by the failing statement: SQLAlchemy then invalidates the whole pool.
    """

    @event.listens_for(pooled, "checkin")
    def _idle_from(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(pooled, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_SECONDS:
            return  # just made, or just used
        try:
            alive = pooled.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("the pooled connection is gone") from exc
        if not alive:
            raise DisconnectionError("the pooled connection is gone")


class Database:
    """One PostgreSQL database: its URL and the connections and transactions made on it.

    ``connect()`` and ``begin()`` behave as SQLAlchemy's (``begin`` commits on success and
    rolls back on error); ``autocommit()`` opens a connection that never holds a
    transaction, for reads and single statements; ``serving()`` is the pool of HTTP
    requests (no parallel workers, no JIT, pinged only when idle).

    Example:
        >>> db = Database("postgresql://tagsim@127.0.0.1:54329/tagsim")
        >>> with db.begin() as conn:  # doctest: +SKIP
        ...     conn.execute(text("SELECT 1"))
    """

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)

    def __repr__(self) -> str:
        return f"Database({safe_url(self.url)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Database) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def connect(self) -> Connection:
        """A pooled connection; its transaction begins on first use (commit it yourself)."""
        return _engine(self.url).connect()

    def begin(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed when the block ends without error."""
        return _engine(self.url).begin()

    def autocommit(self) -> Connection:
        """A pooled connection that never opens a transaction (each statement commits)."""
        return _engine(self.url, autocommit=True).connect()

    def serving(self, *, autocommit: bool = False) -> Connection:
        """A connection of the HTTP requests' pool."""
        return _engine(self.url, autocommit=autocommit, serving=True).connect()

    def dispose(self) -> None:
        """Close this database's pooled connections (in this process)."""
        dispose(self.url)


def dispose(url: str) -> None:
    """Close the pooled connections of ``url`` and forget its engines."""
    with _ENGINES_LOCK:
        found = [_ENGINES.pop(url + flavour, None) for flavour in _FLAVOURS]
    for one in found:
        if one is not None:
            one.dispose()


def check_database(url: str, *, create_postgis: bool = True) -> dict[str, Any]:
    """Connect to ``url`` and make sure PostGIS is there; return server facts.

    Raises:
        DatabaseUnreachable: no answer, wrong credentials, no such database.
        PostGISMissing: the server answers but has no PostGIS and it cannot be created.
    """
    try:
        probe = create_engine(
            normalize_url(url), connect_args={"connect_timeout": 5}, poolclass=NullPool
        )
    except ArgumentError:
        raise ConfigError(f"not a database URL: {url!r}") from None
    try:
        with probe.connect() as conn:
            server = conn.execute(text("SHOW server_version")).scalar_one()
            has_postgis = conn.execute(
                text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
            ).scalar_one_or_none()
            if has_postgis is None:
                available = conn.execute(
                    text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")
                ).scalar_one_or_none()
                if available is None or not create_postgis:
                    raise PostGISMissing(
                        f"the database at {safe_url(url)} has no PostGIS"
                        + ("" if available is None else " extension (CREATE EXTENSION postgis)")
                        + "; install PostGIS 3 on that server or unset TAGSIM_DATABASE_URL to"
                        " use the project's own cluster"
                    )
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
                conn.commit()
            postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "no answer"
        raise DatabaseUnreachable(
            f"cannot reach the database at {safe_url(url)}: {reason}"
        ) from None
    finally:
        probe.dispose()
    return {"server_version": server, "postgis_version": postgis}


# PostgreSQL's COPY text format: what each special character is written as. The one
# statement of the rule; `copy_text` (one value) and `geo.geodata.parcels.copy_format.
# escaped` (an Arrow column) both apply it.
COPY_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))
COPY_SPECIAL = "[\\\\\t\n\r]"  # a regular expression matching any of them


def copy_text(value: str) -> str:
    """A value escaped for PostgreSQL's COPY text format (used by the bulk loaders)."""
    if any(raw in value for raw, _ in COPY_ESCAPES):
        for raw, escape in COPY_ESCAPES:
            value = value.replace(raw, escape)
    return value


def copy_lines(conn: Any, statement: str, lines: list[str], chunk: int = 5000) -> None:
    """Send prepared COPY text lines through the connection's driver, in chunks."""
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy(statement) as copy:
        for start in range(0, len(lines), chunk):
            copy.write("\n".join(lines[start : start + chunk]) + "\n")


def _libpq(url: str) -> str:
    return normalize_url(url).replace("postgresql+psycopg://", "postgresql://")


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` with PostGIS on ``server_url``'s server; return its URL."""

    admin = make_url(normalize_url(server_url)).set(database="postgres")
    with psycopg.connect(
        _libpq(admin.render_as_string(hide_password=False)), autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = (
        make_url(normalize_url(server_url)).set(database=name).render_as_string(hide_password=False)
    )
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return url


def drop_database(url: str) -> None:
    """Drop the database of ``url`` (its connections are ended first)."""

    dispose(url)
    parsed = make_url(normalize_url(url))
    admin = parsed.set(database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(_libpq(admin), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


@lru_cache(maxsize=1024)
def statement(sql: str) -> TextClause:
    """``text(sql)`` made once per distinct SQL text. A request's statements are few and
    fixed (their values are bound, not written in): parsing the bind names again and
    recomputing SQLAlchemy's cache key on every request cost a fifth of a coverage
    request's Python time."""
    return text(sql)


_PSYCOPG = PGDialect_psycopg()


@lru_cache(maxsize=1024)
def _driver_sql(sql: str) -> str:
    """``sql`` with its ``:name`` binds written as psycopg's ``%(name)s`` (``%`` doubled),
    as SQLAlchemy would send it."""
    return str(statement(sql).compile(dialect=_PSYCOPG))


def read_row(conn: Connection, sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """The first row of a read-only statement, or None.

    On a connection in autocommit (a GET request's) the statement goes straight to the
    driver: SQLAlchemy's work per statement (its execution context, result and events)
    cost 0.12 ms of CPU — as much as PostgreSQL's own work for one feature by id. Errors
    come out as SQLAlchemy's, as they would from ``conn.execute``. Anywhere else (a
    transaction, another driver) it is ``conn.execute``."""
    return _read(conn, sql, params, mapping=False)  # type: ignore[return-value]


def read_mapping(conn: Connection, sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The one row of a read-only statement as a dict of its columns (see :func:`read_row`)."""
    row = _read(conn, sql, params, mapping=True)
    if row is None:
        raise NoResultFound("no row was found when one was required")
    return row  # type: ignore[return-value]


def _on_driver(
    conn: Connection, driver: psycopg.Connection, sql: str, params: Mapping[str, Any]
) -> psycopg.Cursor[Any]:
    """``sql`` run on the driver's connection; errors as SQLAlchemy's."""
    try:
        return driver.execute(_driver_sql(sql), params)
    except psycopg.Error as exc:
        if driver.closed:  # the server went away: the pool must not hand it out again
            conn.invalidate(exc)
        raise DBAPIError.instance(
            sql, dict(params), exc, psycopg.Error, connection_invalidated=driver.closed
        ) from exc


def read_rows(conn: Connection, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """Every row of a read-only statement as tuples, fetched at once (see :func:`read_row`):
    a bulk lookup of 100,000 codes spent 0.9 s of 4.6 in SQLAlchemy's row by row fetching."""
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection) or not driver.autocommit:
        return [tuple(r) for r in conn.execute(statement(sql), dict(params)).all()]
    return _on_driver(conn, driver, sql, params).fetchall()


def _read(
    conn: Connection, sql: str, params: Mapping[str, Any], *, mapping: bool
) -> tuple[Any, ...] | dict[str, Any] | None:
    driver = conn.connection.driver_connection
    if not isinstance(driver, psycopg.Connection) or not driver.autocommit:
        result = conn.execute(statement(sql), dict(params))
        if mapping:
            found = result.mappings().first()
            return dict(found) if found is not None else None
        row = result.first()
        return tuple(row) if row is not None else None
    cursor = _on_driver(conn, driver, sql, params)
    row = cursor.fetchone()
    if row is None or not mapping:
        return row
    return dict(zip([c.name for c in cursor.description or ()], row, strict=True))
