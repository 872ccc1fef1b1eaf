"""Tables of the crosswalk: runs, the links they find, and people's decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base, now_column, sql_in
from geo.models.registry import LEVELS

RELATIONS = ("same", "split", "merge", "partial")
METHODS = ("code", "name", "fuzzy", "spatial", "manual")
LINK_STATUSES = ("auto", "needs_review", "confirmed", "rejected")
# The agencies a link names, one column each (crosswalk_link.moi_code, .sci_code, .hf_code):
# MOI (the reference list) and each agency mapped to it.
LINK_AGENCIES = ("moi", "sci", "hf")

DECISIONS = ("confirm", "reject", "link")


class CrosswalkRun(Base):
    """One build of the crosswalk from three editions."""

    __tablename__ = "crosswalk_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    moi_edition_id: Mapped[int | None] = mapped_column(ForeignKey("edition.id"))
    sci_edition_id: Mapped[int | None] = mapped_column(ForeignKey("edition.id"))
    hf_edition_id: Mapped[int | None] = mapped_column(ForeignKey("edition.id"))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="queued")
    started_at: Mapped[datetime] = now_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    released: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default="false")
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CrosswalkLink(Base):
    """A link between units of the agencies at one level, with its evidence."""

    __tablename__ = "crosswalk_link"
    __table_args__ = (
        CheckConstraint(f"level IN ({sql_in(LEVELS)})", name="level"),
        CheckConstraint(f"relation IN ({sql_in(RELATIONS)})", name="relation"),
        CheckConstraint(f"method IN ({sql_in(METHODS)})", name="method"),
        CheckConstraint(f"status IN ({sql_in(LINK_STATUSES)})", name="status"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        Index("ix_crosswalk_link_run_id_moi_code", "run_id", "moi_code"),
        Index("ix_crosswalk_link_run_id_sci_code", "run_id", "sci_code"),
        Index("ix_crosswalk_link_run_id_hf_code", "run_id", "hf_code"),
        Index("ix_crosswalk_link_run_id_status", "run_id", "status"),
        Index("ix_crosswalk_link_run_id_level_confidence", "run_id", "level", "confidence"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("crosswalk_run.id", ondelete="CASCADE"), nullable=False
    )
    level: Mapped[str] = mapped_column(Text, nullable=False)
    moi_code: Mapped[str | None] = mapped_column(Text)
    sci_code: Mapped[str | None] = mapped_column(Text)
    hf_code: Mapped[str | None] = mapped_column(Text)
    relation: Mapped[str] = mapped_column(Text, nullable=False, server_default="same")
    confidence: Mapped[float] = mapped_column(Float, nullable=False)
    method: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="auto")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")


class CrosswalkDecision(Base):
    """A person's confirm / reject / manual link; survives every rebuild."""

    __tablename__ = "crosswalk_decision"
    __table_args__ = (
        CheckConstraint(f"level IN ({sql_in(LEVELS)})", name="level"),
        CheckConstraint(f"decision IN ({sql_in(DECISIONS)})", name="decision"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[str] = mapped_column(Text, nullable=False)
    moi_code: Mapped[str | None] = mapped_column(Text)
    sci_code: Mapped[str | None] = mapped_column(Text)
    hf_code: Mapped[str | None] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(Text, nullable=False)
    note: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = now_column()


class CrosswalkRelease(Base):
    """A run frozen and announced to the agencies: release N, with its dates."""

    __tablename__ = "crosswalk_release"

    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("crosswalk_run.id"), nullable=False)
    published_at: Mapped[datetime] = now_column()
    published_jalali: Mapped[str] = mapped_column(Text, nullable=False)
    published_by: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
