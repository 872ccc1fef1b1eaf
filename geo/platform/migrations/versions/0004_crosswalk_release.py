"""Crosswalk releases (numbered, dated), and the review queue's index.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "crosswalk_release",
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_jalali", sa.Text(), nullable=False),
        sa.Column("published_by", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column(
            "counts", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["crosswalk_run.id"], name=op.f("fk_crosswalk_release_run_id_crosswalk_run")
        ),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_crosswalk_release")),
    )
    op.create_index(
        "ix_crosswalk_link_run_id_level_confidence",
        "crosswalk_link",
        ["run_id", "level", "confidence"],
    )


def downgrade() -> None:
    op.drop_index("ix_crosswalk_link_run_id_level_confidence", table_name="crosswalk_link")
    op.drop_table("crosswalk_release")
