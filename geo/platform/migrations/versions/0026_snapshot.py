"""Dated snapshots: immutable files of a dataset at one point of the change feed.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshot",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column(
            "taken_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("position", sa.Text(), nullable=False),
        sa.Column("features", sa.BigInteger(), nullable=False),
        sa.Column("files", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("taken_by", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "dataset IN ('parcels', 'guide_plans', 'plates', 'divisions')",
            name=op.f("ck_snapshot_dataset"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_snapshot")),
        sa.UniqueConstraint("dataset", "label", name="uq_snapshot_dataset_label"),
    )


def downgrade() -> None:
    op.drop_table("snapshot")
