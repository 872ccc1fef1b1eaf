"""A parcel change carries the whole feature, exactly: what a copy needs to equal the service.

``parcel_state`` rendered the geometry with 7 decimals (about a centimetre) and left out
the village, the version id, the upload and the validity, so a copy kept from the change
feed or the change files could not equal the published rows. The state now holds every
property the ``parcels`` collection publishes, the version ``id``, and the geometry with 15
decimals: for Iran's longitudes and latitudes that is 17 significant digits, which
PostGIS writes as the shortest text that reads back to the same double (ryu), so the
coordinates round-trip bit for bit.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_STATE = """
CREATE OR REPLACE FUNCTION parcel_state(p parcel) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN p.id IS NOT NULL THEN json_build_object(
    {fields}, 'geometry', ST_AsGeoJSON(p.geom, {decimals})::json) END
$$
"""
_EXACT = (
    "'id', p.id, 'village_agency', p.village_agency, 'village_code', p.village_code,"
    " 'parcel_no', p.parcel_no, 'land_use', p.land_use, 'area_declared', p.area_declared,"
    " 'area_m2', round(p.area_m2::numeric, 2), 'upload_id', p.upload_id,"
    " 'valid_from', p.valid_from, 'valid_to', p.valid_to, 'attrs', p.attrs"
)
_BEFORE = (
    "'parcel_no', p.parcel_no, 'land_use', p.land_use, 'area_declared', p.area_declared,"
    " 'area_m2', round(p.area_m2::numeric, 2), 'attrs', p.attrs"
)


def upgrade() -> None:
    op.execute(_STATE.format(fields=_EXACT, decimals=15))


def downgrade() -> None:
    op.execute(_STATE.format(fields=_BEFORE, decimals=7))
