"""Declarative base and the column types every table shares."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every tagsim table; constraint names follow :data:`NAMING`."""

    metadata = MetaData(naming_convention=NAMING)


def now_column() -> Mapped[datetime]:
    """A ``timestamptz`` column set by the database at insert."""
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def sql_in(values: tuple[str, ...]) -> str:
    """The SQL list ``'a', 'b'`` for a CHECK constraint over fixed words."""
    return ", ".join(f"'{v}'" for v in values)
