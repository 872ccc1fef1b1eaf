"""``data_version`` and ``data_change_area``: which tiles a publish changed.

``data_version`` holds one counter per dataset (``parcels``), raised by each publish that
changed something, at the end of its transaction (the row lock is held only until its
commit, so versions follow commit order). ``data_change_area`` keeps, per version, the box
of what changed (the publish's villages' boxes, which hold every version of their parcels).
A server's tile cache reads the counter per tile and drops the tiles of the areas changed
since the version it holds (``geo.geodata.features.tile_cache``).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE data_version (
            dataset text PRIMARY KEY,
            version bigint NOT NULL DEFAULT 0,
            changed_at timestamptz NOT NULL DEFAULT now()
        )""")
    op.execute("INSERT INTO data_version (dataset) VALUES ('parcels')")
    op.execute("""
        CREATE TABLE data_change_area (
            dataset text NOT NULL REFERENCES data_version (dataset),
            version bigint NOT NULL,
            x0 float8, y0 float8, x1 float8, y1 float8,  -- lon/lat box (none: everywhere)
            PRIMARY KEY (dataset, version)
        )""")


def downgrade() -> None:
    op.execute("DROP TABLE data_change_area")
    op.execute("DROP TABLE data_version")
