"""Progress of long jobs; the queue itself is procrastinate's tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, LargeBinary, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base, now_column, sql_in


class JobProgress(Base):
    """How far a job has come: ``done`` of ``total`` steps, a message, a result."""

    __tablename__ = "job_progress"

    job_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    done: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    total: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    updated_at: Mapped[datetime] = now_column()


TABLE_JOB_KINDS = ("match", "convert")


class TableJob(Base):
    """A user's table matched or converted in the background (a big file): the file, the
    options, who sent it (the agency that alone may see it), then the answer file or the
    error. Kept ``TABLE_JOB_DAYS`` days."""

    __tablename__ = "table_job"
    __table_args__ = (CheckConstraint(f"kind IN ({sql_in(TABLE_JOB_KINDS)})", name="kind"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    principal_id: Mapped[int | None] = mapped_column(ForeignKey("principal.id"))
    agency: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text, nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    answer: Mapped[bytes | None] = mapped_column(LargeBinary)
    media_type: Mapped[str | None] = mapped_column(Text)
    file_extension: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default="{}")
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = now_column()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
