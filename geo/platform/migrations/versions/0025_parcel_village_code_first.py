"""The village indexes lead with the village code: a CQL2 filter names ``village_code``
alone (the agency is one value for most maps), and a btree whose first column is not in
the condition is read whole — 1.2 M entries per request on the national map. Codes of
different agencies seldom collide, so (code, agency) serves the ``village=AGENCY:CODE``
parameter as well as before. The villages' extents (``parcel_extent``, which name the
provinces a query reaches) get the same order.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def _indexes(columns: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_parcel_village_current")
    op.execute(
        f"CREATE INDEX ix_parcel_village_current ON parcel ({columns}) WHERE valid_to IS NULL"
    )
    op.execute("DROP INDEX IF EXISTS ix_parcel_extent_village")
    op.execute(f"CREATE INDEX ix_parcel_extent_village ON parcel_extent ({columns})")


def upgrade() -> None:
    _indexes("village_code, village_agency")


def downgrade() -> None:
    _indexes("village_agency, village_code")
