"""Push subscriptions to the change feed, and the log of every delivery attempt."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from geo.models.base import Base, now_column, sql_in

SUBSCRIPTION_STATUSES = ("active", "parked", "deleted")


class Subscription(Base):
    """An agency's webhook: where to POST which changes, signed with its secret.

    ``cursor`` is the feed position of the last change the receiver acknowledged; it only
    moves on a 2xx answer, so delivery is at least once and in feed order.
    """

    __tablename__ = "subscription"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_in(SUBSCRIPTION_STATUSES)})", name="status"),
        Index("ix_subscription_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    principal_id: Mapped[int | None] = mapped_column(ForeignKey("principal.id"))
    agency: Mapped[str] = mapped_column(Text, nullable=False)
    url: Mapped[str] = mapped_column(Text, nullable=False)
    kinds: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    bbox: Mapped[list[float] | None] = mapped_column(ARRAY(Float))
    within: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="active")
    cursor: Mapped[str] = mapped_column(Text, nullable=False, server_default="")
    batch_size: Mapped[int] = mapped_column(Integer, nullable=False, server_default="500")
    failures: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # why it was parked: failures, key_revoked, agency_excluded, unreadable
    parked_reason: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime] = now_column()
    last_delivery_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = now_column()


class Delivery(Base):
    """One attempt to POST a batch of changes to a subscription's URL."""

    __tablename__ = "delivery"
    __table_args__ = (Index("ix_delivery_subscription_id", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscription.id", ondelete="CASCADE"), nullable=False
    )
    attempted_at: Mapped[datetime] = now_column()
    cursor_from: Mapped[str] = mapped_column(Text, nullable=False)
    cursor_to: Mapped[str] = mapped_column(Text, nullable=False)
    changes: Mapped[int] = mapped_column(Integer, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    detail: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
