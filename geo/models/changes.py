"""The change log, written in the same transaction as the data it describes.

``txid`` records the writing transaction (``pg_current_xact_id()``) so that a
reader can hold back changes of transactions still in flight: sequence numbers
alone can commit out of order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSON, JSONB
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from geo.models.base import Base, now_column, sql_in

ENTITY_KINDS = ("parcel", "guide_plan", "plate", "division", "crosswalk")
OPERATIONS = ("insert", "update", "delete")


class Xid8(UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id type."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


ischema_names["xid8"] = Xid8  # so reflection (and migration checks) know the type


class Change(Base):
    """One change to one entity, in commit order by (txid visibility, id)."""

    __tablename__ = "change"
    __table_args__ = (
        CheckConstraint(f"entity_kind IN ({sql_in(ENTITY_KINDS)})", name="entity_kind"),
        CheckConstraint(f"operation IN ({sql_in(OPERATIONS)})", name="operation"),
        CheckConstraint("province IS NULL OR entity_kind = 'parcel'", name="parcel_set"),
        Index("ix_change_entity", "entity_kind", "entity_id"),
        Index("ix_change_txid_id", "txid", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    txid: Mapped[int] = mapped_column(
        Xid8(), nullable=False, server_default=text("pg_current_xact_id()")
    )
    entity_kind: Mapped[str] = mapped_column(Text, nullable=False)
    entity_id: Mapped[str] = mapped_column(Text, nullable=False)
    operation: Mapped[str] = mapped_column(Text, nullable=False)
    occurred_at: Mapped[datetime] = now_column()
    cause: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    # json, not jsonb: written once, sent as text many times (migration 0011)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A parcel change set (migration 0013): one row per village and operation, the parcel
    # versions inserted and closed; ``change_event`` reads it as one event per parcel.
    province: Mapped[str | None] = mapped_column(Text)
    after_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    before_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))


class DataVersion(Base):
    """A dataset's version: raised by each publish that changes it, at the end of its
    transaction (versions follow commit order); ``since``: its first publish."""

    __tablename__ = "data_version"

    dataset: Mapped[str] = mapped_column(Text, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default=text("0"))
    changed_at: Mapped[datetime] = now_column()
    since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class DataChangeArea(Base):
    """The lon/lat box a version of a dataset changed (none: everywhere): which kept tiles
    it makes stale (``geo.geodata.features.tile_cache``)."""

    __tablename__ = "data_change_area"

    dataset: Mapped[str] = mapped_column(Text, ForeignKey("data_version.dataset"), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    x0: Mapped[float | None] = mapped_column(Float)
    y0: Mapped[float | None] = mapped_column(Float)
    x1: Mapped[float | None] = mapped_column(Float)
    y1: Mapped[float | None] = mapped_column(Float)


SNAPSHOT_DATASETS = ("parcels", "guide_plans", "plates", "divisions", "crosswalk")


class Snapshot(Base):
    """Immutable files of a dataset as it stood at one point of the change feed
    (``position``: a feed cursor; the changes after it are the ones a copy applies)."""

    __tablename__ = "snapshot"
    __table_args__ = (
        CheckConstraint(f"dataset IN ({sql_in(SNAPSHOT_DATASETS)})", name="dataset"),
        UniqueConstraint("dataset", "label", name="uq_snapshot_dataset_label"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    dataset: Mapped[str] = mapped_column(Text, nullable=False)
    label: Mapped[str] = mapped_column(Text, nullable=False)  # its folder: Tehran date-time
    taken_at: Mapped[datetime] = now_column()
    position: Mapped[str] = mapped_column(Text, nullable=False)
    features: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # [{name, format, media_type, size, sha256}]
    files: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, nullable=False)
    taken_by: Mapped[str] = mapped_column(Text, nullable=False)


CHANGE_FILE_GRANULARITIES = ("hourly", "daily")


class ChangeFile(Base):
    """A numbered change file: exactly the feed's changes between two positions, in
    sequence with the file before it (OpenStreetMap's replication diffs)."""

    __tablename__ = "change_file"
    __table_args__ = (
        CheckConstraint(
            f"granularity IN ({sql_in(CHANGE_FILE_GRANULARITIES)})", name="granularity"
        ),
    )

    granularity: Mapped[str] = mapped_column(Text, primary_key=True)
    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    from_position: Mapped[str] = mapped_column(Text, nullable=False)
    to_position: Mapped[str] = mapped_column(Text, nullable=False)
    made_at: Mapped[datetime] = now_column()
    changes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(Text, nullable=False)
