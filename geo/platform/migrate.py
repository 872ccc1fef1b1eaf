"""Schema migrations (Alembic), run from code so the CLI and the tests share them."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from geoalchemy2 import alembic_helpers

from geo.models import Base
from geo.platform.database import Database, normalize_url

__all__ = [
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "include_object",
    "schema_drift",
    "upgrade",
]

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Tables that belong to extensions or to procrastinate, not to our models.
_PARTITION = re.compile(r"parcel_(p[0-9a-z]+|default)")
_FOREIGN_PREFIXES = ("procrastinate_", "spatial_ref_sys", "layer", "topology", "alembic_version")


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Autogenerate's filter: our tables only, geometry columns as GeoAlchemy2 sees them."""
    if type_ == "table" and name and name.startswith(_FOREIGN_PREFIXES):
        return False
    if type_ == "table" and name and _PARTITION.fullmatch(name):
        return False  # partitions of parcel, made on demand (migration 0009)
    table = getattr(obj, "table", None) if type_ in {"index", "column"} else None
    if table is not None and table.name.startswith(_FOREIGN_PREFIXES):
        return False
    return bool(alembic_helpers.include_object(obj, name, type_, reflected, compare_to))


def schema_drift(url: str) -> list[Any]:
    """Differences between the models and the database at ``url`` (empty: in step)."""
    with Database(url).connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        return list(compare_metadata(ctx, Base.metadata))


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


@functools.cache
def head_revision() -> str:
    """The newest migration shipped with the code (read once per process: the scripts do
    not change under a running process, and reading them took 11 ms a `/version`)."""
    head = ScriptDirectory.from_config(alembic_config("postgresql://x/y")).get_current_head()
    assert head is not None
    return head


def current_revision(url: str) -> str | None:
    """The migration the database at ``url`` is at (``None``: never migrated)."""
    with Database(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
