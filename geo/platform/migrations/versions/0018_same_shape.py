"""``same_shape(a, b)``: whether two geometries are the same map drawing.

The same bytes, or the same number of vertices each within 1e-9 degrees (~0.1 mm): a map
exported through another CRS and back differs from itself in the last bits of its
coordinates. Publishing compares each parcel and zone with its stored version this way
(``geo/geodata/parcels/publish.sql``); the rule was a Python string spliced into three
statements before. An SQL function of one expression, immutable: PostgreSQL inlines it into
the statements that call it, so it costs nothing over the spliced text.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION same_shape(a geometry, b geometry) RETURNS boolean
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
          SELECT ST_AsEWKB(a) = ST_AsEWKB(b)
                 OR (ST_NPoints(a) = ST_NPoints(b) AND ST_HausdorffDistance(a, b) <= 1e-9)
        $$"""
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION same_shape(geometry, geometry)")
