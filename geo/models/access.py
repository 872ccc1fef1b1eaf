"""Who may read what: principals (agencies), API keys, policies, and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base, now_column, sql_in

ROLES = ("reader", "uploader", "reviewer", "admin")
POLICY_MODES = ("all", "all_except", "allow_list")
# Datasets with one owner agency (DESIGN.md §11); a division list is owned by its own agency.
OWNED_DATASETS = {
    "parcels": "hf",  # parcel maps and guide-plan zones, from the rural guide plans
    "plates": "registration",  # registered plots and their daily notices
    "crosswalk": "moi",  # review decisions and releases: the agency that runs the service
}


class Principal(Base):
    """An agency (or a person of one) that holds keys and a role."""

    __tablename__ = "principal"
    __table_args__ = (CheckConstraint(f"role IN ({sql_in(ROLES)})", name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency: Mapped[str] = mapped_column(ForeignKey("agency.code"), nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    role: Mapped[str] = mapped_column(Text, nullable=False)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    created_at: Mapped[datetime] = now_column()


class ApiKey(Base):
    """An API key; only its hash is stored. ``prefix`` finds the row quickly."""

    __tablename__ = "api_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    principal_id: Mapped[int] = mapped_column(
        ForeignKey("principal.id", ondelete="CASCADE"), nullable=False, index=True
    )
    prefix: Mapped[str] = mapped_column(Text, nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = now_column()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Policy(Base):
    """The working group's rule for one service: all, all_except or allow_list."""

    __tablename__ = "policy"
    __table_args__ = (CheckConstraint(f"mode IN ({sql_in(POLICY_MODES)})", name="mode"),)

    service: Mapped[str] = mapped_column(Text, primary_key=True)
    mode: Mapped[str] = mapped_column(Text, nullable=False)
    agencies: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False, server_default="{}")
    public: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    updated_at: Mapped[datetime] = now_column()
    updated_by: Mapped[str | None] = mapped_column(Text)


class DatasetOwner(Base):
    """The agency that owns a dataset: only its keys (and admins) write it."""

    __tablename__ = "dataset_owner"
    __table_args__ = (
        CheckConstraint(f"dataset IN ({sql_in(tuple(OWNED_DATASETS))})", name="dataset"),
    )

    dataset: Mapped[str] = mapped_column(Text, primary_key=True)
    agency: Mapped[str] = mapped_column(
        ForeignKey("agency.code", onupdate="CASCADE"), nullable=False
    )
    updated_at: Mapped[datetime] = now_column()
    updated_by: Mapped[str | None] = mapped_column(Text)


class AuditEntry(Base):
    """One access to protected data. Append-only: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "audit"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_principal_id_at", "principal_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = now_column()
    principal_id: Mapped[int | None] = mapped_column(Integer)
    agency: Mapped[str | None] = mapped_column(Text)
    service: Mapped[str] = mapped_column(Text, nullable=False)
    endpoint: Mapped[str] = mapped_column(Text, nullable=False)
    method: Mapped[str] = mapped_column(Text, nullable=False)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    row_count: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[int] = mapped_column(Integer, nullable=False)
    duration_ms: Mapped[float | None] = mapped_column()
