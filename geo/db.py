"""The database: which URL, a cached engine per URL, and the check that it is PostGIS.

Configuration by environment: ``TAGSIM_DATABASE_URL`` names an external PostGIS;
without it the project's own local cluster is used (and started when asked).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.pool import NullPool

from geo.config import Settings, settings
from geo.errors import ConfigError, DatabaseUnreachable, PostGISMissing
from geo.pg.cluster import LocalCluster

__all__ = ["check_database", "database_url", "engine", "local_cluster", "normalize_url", "safe_url"]


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


@lru_cache(maxsize=16)
def engine(url: str) -> Engine:
    """A pooled engine for ``url``, created once per process and URL."""
    return create_engine(
        normalize_url(url),
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=10,
        connect_args={"connect_timeout": 10, "application_name": "tagsim"},
    )


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
