"""``data_version.since``: when the dataset's first version was published.

The parcels collection's temporal extent starts at the first publish. It was
``min(valid_from)`` over every parcel version — a scan of the whole table on each
``GET /collections/parcels`` (193 ms at 1.2 M parcels: the validity index is a BRIN, which
cannot answer a min). The first publish stamps it once (the min over its own rows, the only
ones then); existing data is stamped from the table now, once.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE data_version ADD COLUMN since timestamptz")
    op.execute(
        "UPDATE data_version SET since = (SELECT min(valid_from) FROM parcel)"
        " WHERE dataset = 'parcels'"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE data_version DROP COLUMN since")
