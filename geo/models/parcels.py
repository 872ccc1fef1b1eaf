"""Guide plans (طرح هادی), their parcels (قطعه), registered plots (پلاک ثبتی), uploads.

Versioned rows carry ``valid_from`` / ``valid_to``: a new upload closes the old rows
instead of deleting them, so the layer can be asked for as it was on any date.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    Sequence,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base, now_column, sql_in

UPLOAD_STATUSES = (
    "received",
    "validating",
    "validated",
    "invalid",
    "publishing",
    "published",
    "failed",
)
_CURRENT = text("valid_to IS NULL")


def _valid_from() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=text("now()"), nullable=False)


def _valid_to() -> Mapped[datetime | None]:
    return mapped_column(DateTime(timezone=True))


class Upload(Base):
    """A file sent by GIS staff: its checksum, CRS, state, progress and report."""

    __tablename__ = "upload"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(UPLOAD_STATUSES)})", name="status"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    principal_id: Mapped[int | None] = mapped_column(ForeignKey("principal.id"))
    file_name: Mapped[str] = mapped_column(Text, nullable=False)
    file_size: Mapped[int | None] = mapped_column(BigInteger)
    checksum: Mapped[str | None] = mapped_column(Text, index=True)
    village_agency: Mapped[str | None] = mapped_column(Text)
    village_code: Mapped[str | None] = mapped_column(Text)
    detected_crs: Mapped[str | None] = mapped_column(Text)
    crs_source: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="received")
    progress: Mapped[float] = mapped_column(Float, nullable=False, server_default="0")
    report: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    created_at: Mapped[datetime] = now_column()
    updated_at: Mapped[datetime] = now_column()


class UploadFile(Base):
    """The uploaded bytes, kept in PostgreSQL so any web or worker process can read them;
    in numbered chunks (``seq``), so no process holds a whole large file in memory."""

    __tablename__ = "upload_file"
    __table_args__ = (PrimaryKeyConstraint("upload_id", "seq", name="pk_upload_file"),)

    upload_id: Mapped[int] = mapped_column(ForeignKey("upload.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class ParcelStage(Base):
    """Features of an upload after reading and reprojection, before validation and publish."""

    __tablename__ = "parcel_stage"
    __table_args__ = (
        Index("ix_parcel_stage_upload_id", "upload_id", "layer"),
        {"prefixes": ["UNLOGGED"]},
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    upload_id: Mapped[int] = mapped_column(BigInteger, nullable=False)  # no key: 0014
    layer: Mapped[str] = mapped_column(Text, nullable=False)  # parcels | zone
    feature: Mapped[int] = mapped_column(Integer, nullable=False)
    village: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    parcel_no: Mapped[str | None] = mapped_column(Text)
    land_use: Mapped[str | None] = mapped_column(Text)
    area_declared: Mapped[float | None] = mapped_column(Float)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    area_m2: Mapped[float | None] = mapped_column(Float)  # ellipsoidal, geo.geodata.areas
    geom: Mapped[Any] = mapped_column(
        Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=True
    )
    valid: Mapped[bool | None] = mapped_column(Boolean)  # GEOS validity, while staging


class GuidePlan(Base):
    """A village's guide-plan zone (عرصه طرح هادی), versioned."""

    __tablename__ = "guide_plan"
    __table_args__ = (
        Index("ix_guide_plan_zone", "zone", postgresql_using="gist"),
        Index(
            "ix_guide_plan_village_current",
            "village_agency",
            "village_code",
            postgresql_where=_CURRENT,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    village_agency: Mapped[str] = mapped_column(Text, nullable=False)
    village_code: Mapped[str] = mapped_column(Text, nullable=False)
    plan_year: Mapped[int | None] = mapped_column(Integer)
    plan_version: Mapped[str | None] = mapped_column(Text)
    zone: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False
    )
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("upload.id"))
    valid_from: Mapped[datetime] = _valid_from()
    valid_to: Mapped[datetime | None] = _valid_to()


class Parcel(Base):
    """One polygon of a guide plan's parcel map, versioned by valid_from / valid_to."""

    __tablename__ = "parcel"
    __table_args__ = (
        PrimaryKeyConstraint("id", "province", name="pk_parcel"),
        Index("ix_parcel_geom", "geom", postgresql_using="gist"),
        Index(
            "ix_parcel_village_current",
            "village_code",  # first: a filter may name the code alone (migration 0025)
            "village_agency",
            postgresql_where=_CURRENT,
        ),
        # in write order: block-range indexes (migration 0017)
        Index("ix_parcel_valid", "valid_from", "valid_to", postgresql_using="brin"),
        Index("ix_parcel_upload_id", "upload_id", postgresql_using="brin"),
        {"postgresql_partition_by": "LIST (province)"},
    )

    id: Mapped[int] = mapped_column(BigInteger, Sequence("parcel_id_seq"))
    village_agency: Mapped[str] = mapped_column(Text, nullable=False)
    village_code: Mapped[str] = mapped_column(Text, nullable=False)
    parcel_no: Mapped[str] = mapped_column(Text, nullable=False)
    land_use: Mapped[str | None] = mapped_column(Text)
    area_declared: Mapped[float | None] = mapped_column(Float)
    area_m2: Mapped[float] = mapped_column(Float, nullable=False)
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False
    )
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("upload.id"))
    valid_from: Mapped[datetime] = _valid_from()
    valid_to: Mapped[datetime | None] = _valid_to()
    # The partition key: the MOI province code of the village (see migration 0009).
    province: Mapped[str] = mapped_column(Text, nullable=False, server_default="")


class ParcelExtent(Base):
    """Per province and village, the box of every parcel ever stored: bbox → partitions."""

    __tablename__ = "parcel_extent"
    __table_args__ = (
        Index("ix_parcel_extent_extent", "extent", postgresql_using="gist"),
        Index("ix_parcel_extent_village", "village_code", "village_agency"),  # (0025)
    )

    province: Mapped[str] = mapped_column(Text, primary_key=True)
    village_agency: Mapped[str] = mapped_column(Text, primary_key=True)
    village_code: Mapped[str] = mapped_column(Text, primary_key=True)
    extent: Mapped[Any] = mapped_column(
        Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False
    )


class Plate(Base):
    """A registered plot (پلاک ثبتی): registration unit, main plate, sub plate."""

    __tablename__ = "plate"
    __table_args__ = (
        Index("ix_plate_geom", "geom", postgresql_using="gist"),
        Index(
            "ix_plate_number_current",
            "registration_unit",
            "main_plate",
            "sub_plate",
            postgresql_where=_CURRENT,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    registration_unit: Mapped[str] = mapped_column(Text, nullable=False)
    main_plate: Mapped[str] = mapped_column(Text, nullable=False)
    sub_plate: Mapped[str] = mapped_column(Text, nullable=False)
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False
    )
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    source_notice: Mapped[str | None] = mapped_column(Text)
    valid_from: Mapped[datetime] = _valid_from()
    valid_to: Mapped[datetime | None] = _valid_to()
