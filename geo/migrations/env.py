"""Alembic environment: online migrations against the URL given by `geo.migrate`."""

from __future__ import annotations

from alembic import context
from geoalchemy2 import alembic_helpers
from sqlalchemy import create_engine, pool

from geo.models import Base

config = context.config
target_metadata = Base.metadata

# Tables that belong to extensions or to procrastinate, not to our models.
_FOREIGN_PREFIXES = ("procrastinate_", "spatial_ref_sys", "layer", "topology")


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    if type_ == "table" and name and name.startswith(_FOREIGN_PREFIXES):
        return False
    table = getattr(obj, "table", None) if type_ in {"index", "column"} else None
    if table is not None and table.name.startswith(_FOREIGN_PREFIXES):
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def run_migrations_online() -> None:
    connectable = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=include_object,
            process_revision_directives=alembic_helpers.writer,
            render_item=alembic_helpers.render_item,
            compare_type=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("tagsim runs migrations online only: `tagsim db migrate`")
run_migrations_online()
