"""Numbered change files: the feed between two positions, one file per hour or day.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "change_file",
        sa.Column("granularity", sa.Text(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("from_position", sa.Text(), nullable=False),
        sa.Column("to_position", sa.Text(), nullable=False),
        sa.Column(
            "made_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("changes", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "granularity IN ('hourly', 'daily')", name=op.f("ck_change_file_granularity")
        ),
        sa.PrimaryKeyConstraint("granularity", "sequence", name=op.f("pk_change_file")),
    )


def downgrade() -> None:
    op.drop_table("change_file")
