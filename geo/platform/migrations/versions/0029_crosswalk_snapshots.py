"""Snapshots of crosswalk releases: the mapping table as CSV and XLSX, one per release.

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE snapshot DROP CONSTRAINT ck_snapshot_dataset")
    op.execute(
        "ALTER TABLE snapshot ADD CONSTRAINT ck_snapshot_dataset CHECK"
        " (dataset IN ('parcels', 'guide_plans', 'plates', 'divisions', 'crosswalk'))"
    )


def downgrade() -> None:
    op.execute("DELETE FROM snapshot WHERE dataset = 'crosswalk'")
    op.execute("ALTER TABLE snapshot DROP CONSTRAINT ck_snapshot_dataset")
    op.execute(
        "ALTER TABLE snapshot ADD CONSTRAINT ck_snapshot_dataset CHECK"
        " (dataset IN ('parcels', 'guide_plans', 'plates', 'divisions'))"
    )
