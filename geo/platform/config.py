"""Settings from the environment, with the embedded defaults of a local checkout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from geo.errors import ConfigError

__all__ = ["Settings", "project_root", "settings"]

DEFAULT_PG_PORT = 54329
AUDIT_FLUSH_S = 0.25  # how often an audit journal is moved into the table, by default


def project_root() -> Path:
    """The checkout this package runs from, or the working directory when installed."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").exists() else Path.cwd()


# The terms /downloads states for every file (an agency's copy is for its own work):
# aggregated data is confidential (e-Government Interoperability WG, 35th session).
DOWNLOADS_LICENSE = (
    "Restricted: for the agencies the dataset's access policy admits, for their own work;"
    " passing it on needs the owner agency's consent. محرمانه: فقط برای دستگاه‌های مجاز."
)


@dataclass(frozen=True)
class Settings:
    """What the service and the command line need to know.

    Attributes:
        home: the project's state folder (local cluster, generated sample data).
        database_url: an external PostGIS; ``None`` means the local cluster.
        pg_port: loopback port of the local cluster.
        replica_urls: read replicas (``TAGSIM_REPLICA_URLS``, comma separated): read-only
            endpoints are served from them, writes from the primary (``database_url``).
        audit_dir: the audit journals' folder (``TAGSIM_AUDIT_DIR``); ``None``: ``<home>/audit``
            (see ``audit_folder``): rows on their way into the audit table
            (`geo.access.journal`).
        audit_flush_s: how often a journal is moved into the table (``TAGSIM_AUDIT_FLUSH_S``,
            default 0.25 s; 0 moves each row at once, in its request).
    """

    home: Path
    database_url: str | None
    pg_port: int
    replica_urls: tuple[str, ...] = ()
    audit_dir: Path | None = None
    audit_flush_s: float = AUDIT_FLUSH_S
    behind_front: bool = False  # TAGSIM_BEHIND_FRONT=1: served behind api.front's nginx
    downloads_dir: Path | None = None  # TAGSIM_DOWNLOADS_DIR: snapshots' files
    downloads_license: str = DOWNLOADS_LICENSE  # TAGSIM_DOWNLOADS_LICENSE: what /downloads says

    @property
    def cluster_dir(self) -> Path:
        return self.home / "pg"

    @property
    def sample_dir(self) -> Path:
        return self.home / "sample"

    @property
    def audit_folder(self) -> Path:
        return self.audit_dir or self.home / "audit"

    @property
    def downloads_folder(self) -> Path:
        """Where snapshots' files live (`geo.changes.snapshots`): ``<home>/downloads``."""
        return self.downloads_dir or self.home / "downloads"


BEHIND_FRONT_ENV = "TAGSIM_BEHIND_FRONT"


def settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("TAGSIM_HOME") or project_root() / ".tagsim").resolve()
    port_text = env.get("TAGSIM_PG_PORT", str(DEFAULT_PG_PORT))
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"TAGSIM_PG_PORT must be a port number, not {port_text!r}") from None
    if not 1024 <= port <= 65535:
        raise ConfigError(f"TAGSIM_PG_PORT must be between 1024 and 65535, not {port}")
    replicas = tuple(
        u.strip() for u in env.get("TAGSIM_REPLICA_URLS", "").replace(" ", ",").split(",") if u
    )
    return Settings(
        home=home,
        database_url=env.get("TAGSIM_DATABASE_URL") or None,
        pg_port=port,
        replica_urls=replicas,
        audit_dir=Path(env["TAGSIM_AUDIT_DIR"]).resolve() if env.get("TAGSIM_AUDIT_DIR") else None,
        audit_flush_s=_seconds(env, "TAGSIM_AUDIT_FLUSH_S", AUDIT_FLUSH_S),
        behind_front=env.get(BEHIND_FRONT_ENV) == "1",
        downloads_dir=(
            Path(env["TAGSIM_DOWNLOADS_DIR"]).resolve() if env.get("TAGSIM_DOWNLOADS_DIR") else None
        ),
        downloads_license=env.get("TAGSIM_DOWNLOADS_LICENSE") or DOWNLOADS_LICENSE,
    )


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative")
    return value
