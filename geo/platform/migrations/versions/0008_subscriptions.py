"""Push subscriptions to the change feed and their delivery log.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscription",
        sa.Column("id", sa.BigInteger(), primary_key=True),
        sa.Column(
            "principal_id",
            sa.Integer(),
            sa.ForeignKey("principal.id", name="fk_subscription_principal_id_principal"),
        ),
        sa.Column("agency", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("kinds", postgresql.ARRAY(sa.Text())),
        sa.Column("bbox", postgresql.ARRAY(sa.Float())),
        sa.Column("within", sa.Text()),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default="active"),
        sa.Column("cursor", sa.Text(), nullable=False, server_default=""),
        sa.Column("batch_size", sa.Integer(), nullable=False, server_default="500"),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("last_delivery_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "status IN ('active', 'parked', 'deleted')", name="ck_subscription_status"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_subscription"),
    )
    op.create_index("ix_subscription_due", "subscription", ["status", "next_attempt_at"])
    op.create_table(
        "delivery",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column(
            "subscription_id",
            sa.BigInteger(),
            sa.ForeignKey(
                "subscription.id",
                ondelete="CASCADE",
                name="fk_delivery_subscription_id_subscription",
            ),
            nullable=False,
        ),
        sa.Column(
            "attempted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("cursor_from", sa.Text(), nullable=False),
        sa.Column("cursor_to", sa.Text(), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Float()),
        sa.Column(
            "detail", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.PrimaryKeyConstraint("id", name="pk_delivery"),
    )
    op.create_index("ix_delivery_subscription_id", "delivery", ["subscription_id", "id"])


def downgrade() -> None:
    op.drop_table("delivery")
    op.drop_table("subscription")
