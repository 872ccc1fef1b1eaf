"""Schema migrations (Alembic), run from code so the CLI and the tests share them."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from geo.db import engine, normalize_url

__all__ = ["alembic_config", "current_revision", "downgrade", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at ``url`` and the migrations shipped in `geo`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the schema at ``url`` down to ``revision`` (``base``: nothing of ours left)."""
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest migration shipped with the code."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://x/y")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The migration the database at ``url`` is at (``None``: never migrated)."""
    with engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
