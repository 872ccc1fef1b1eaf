"""Staged features carry their village, so one file may hold many villages' maps.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "parcel_stage", sa.Column("village", sa.Text(), server_default="", nullable=False)
    )
    op.drop_index("ix_parcel_stage_upload_id", table_name="parcel_stage")
    op.create_index(
        "ix_parcel_stage_upload_id", "parcel_stage", ["upload_id", "layer", "village", "parcel_no"]
    )


def downgrade() -> None:
    op.drop_index("ix_parcel_stage_upload_id", table_name="parcel_stage")
    op.create_index("ix_parcel_stage_upload_id", "parcel_stage", ["upload_id"])
    op.drop_column("parcel_stage", "village")
