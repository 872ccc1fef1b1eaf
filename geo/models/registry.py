"""Agencies, their list editions, the divisions in each edition and the events between."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base, now_column, sql_in

# The levels of a division list, in the order lists and exports show them.
LEVELS = ("province", "county", "district", "rural", "city", "village")
# Depth in the tree (province 0): a city hangs under a district, as a rural district does.
LEVEL_DEPTH = {"province": 0, "county": 1, "district": 2, "rural": 3, "city": 3, "village": 4}
EVENT_KINDS = ("create", "abolish", "rename", "recode", "move", "split", "merge")


class Agency(Base):
    """An agency that codes divisions: moi, sci, hf, and others an admin adds."""

    __tablename__ = "agency"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    name_fa: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = now_column()


class Edition(Base):
    """One published version of an agency's list (ویرایش), e.g. MOI 1401-08-25."""

    __tablename__ = "edition"
    __table_args__ = (UniqueConstraint("agency", "label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency: Mapped[str] = mapped_column(ForeignKey("agency.code"), nullable=False)
    label: Mapped[str] = mapped_column(Text, nullable=False)
    published_on: Mapped[date | None] = mapped_column(Date)
    published_jalali: Mapped[str | None] = mapped_column(Text)
    source_name: Mapped[str | None] = mapped_column(Text)
    source_checksum: Mapped[str | None] = mapped_column(Text)
    row_count: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    imported_at: Mapped[datetime] = now_column()
    imported_by: Mapped[str | None] = mapped_column(Text)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")


class Division(Base):
    """A unit of one edition: province … village, keyed by (edition, code)."""

    __tablename__ = "division"
    __table_args__ = (
        UniqueConstraint("edition_id", "code"),
        CheckConstraint(f"level IN ({sql_in(LEVELS)})", name="level"),
        Index("ix_division_edition_id_name_key", "edition_id", "name_key"),
        Index("ix_division_edition_id_name_loose", "edition_id", "name_loose"),
        Index("ix_division_edition_id_level", "edition_id", "level"),
        Index(
            "ix_division_name_key_trgm",
            "name_key",
            postgresql_using="gin",
            postgresql_ops={"name_key": "gin_trgm_ops"},
        ),
        Index("ix_division_ancestors", "ancestors", postgresql_using="gin"),
        Index("ix_division_edition_id_parent_code", "edition_id", "parent_code"),
        Index("ix_division_national_id", "national_id"),
        Index("ix_division_point", "point", postgresql_using="gist"),
        Index("ix_division_polygon", "polygon", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    edition_id: Mapped[int] = mapped_column(
        ForeignKey("edition.id", ondelete="CASCADE"), nullable=False
    )
    code: Mapped[str] = mapped_column(Text, nullable=False)
    level: Mapped[str] = mapped_column(Text, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    name_key: Mapped[str] = mapped_column(Text, nullable=False)
    name_loose: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    ancestors: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    parent_code: Mapped[str | None] = mapped_column(Text)
    national_id: Mapped[str | None] = mapped_column(Text)
    point: Mapped[Any] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False), nullable=True
    )
    polygon: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True
    )
    population: Mapped[int | None] = mapped_column(Integer)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")


class DivisionEvent(Base):
    """A difference between two editions of one agency: create, rename, split, …"""

    __tablename__ = "division_event"
    __table_args__ = (CheckConstraint(f"kind IN ({sql_in(EVENT_KINDS)})", name="kind"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    agency: Mapped[str] = mapped_column(ForeignKey("agency.code"), nullable=False)
    from_edition_id: Mapped[int | None] = mapped_column(
        ForeignKey("edition.id", ondelete="CASCADE")
    )
    to_edition_id: Mapped[int] = mapped_column(
        ForeignKey("edition.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    codes_before: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, server_default="{}"
    )
    codes_after: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
