"""Uploads stream: the file is kept in chunks, staged features carry their area.

``upload_file`` holds an upload in numbered chunks (``seq``), stored uncompressed (the
files are zips and GeoPackages: compressing them again only costs time), so a large file
is written and read back a chunk at a time and never whole in memory. ``parcel_stage``
gets the ellipsoidal area of each feature, computed once while staging (checks and
publish reuse it), and loses its GiST index: the geometric checks run per village in the
ingest process, and maintaining the index row by row made staging slower than the rest
(its four-column key index becomes ``(upload_id, layer)``, all the checks filter by).
``parcel_extent_grow`` takes each village's box with ``ST_Extent`` (one pass over the
cached boxes) instead of four coordinate functions per parcel: same boxes, a quarter of the
time of a national publish's trigger (the downgrade keeps this version: it is equivalent).

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


EXTENT_TRIGGER = """
CREATE OR REPLACE FUNCTION parcel_extent_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO parcel_extent AS e (province, village_agency, village_code, extent)
  SELECT province, village_agency, village_code,
         ST_MakeEnvelope(ST_XMin(box), ST_YMin(box), ST_XMax(box), ST_YMax(box), 4326)
  FROM (SELECT province, village_agency, village_code, ST_Extent(geom) AS box
        FROM new_parcels GROUP BY 1, 2, 3) b
  ON CONFLICT (province, village_agency, village_code) DO UPDATE
    SET extent = ST_MakeEnvelope(
      least(ST_XMin(e.extent), ST_XMin(EXCLUDED.extent)),
      least(ST_YMin(e.extent), ST_YMin(EXCLUDED.extent)),
      greatest(ST_XMax(e.extent), ST_XMax(EXCLUDED.extent)),
      greatest(ST_YMax(e.extent), ST_YMax(EXCLUDED.extent)), 4326);
  RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.add_column("upload_file", sa.Column("seq", sa.Integer(), server_default="0", nullable=False))
    op.drop_constraint("pk_upload_file", "upload_file", type_="primary")
    op.create_primary_key("pk_upload_file", "upload_file", ["upload_id", "seq"])
    op.execute("ALTER TABLE upload_file ALTER COLUMN content SET STORAGE EXTERNAL")
    op.add_column("parcel_stage", sa.Column("area_m2", sa.Float(), nullable=True))
    op.drop_index("ix_parcel_stage_geom", table_name="parcel_stage", postgresql_using="gist")
    op.drop_index("ix_parcel_stage_upload_id", table_name="parcel_stage")
    op.create_index("ix_parcel_stage_upload_id", "parcel_stage", ["upload_id", "layer"])
    op.execute(EXTENT_TRIGGER)


def downgrade() -> None:
    op.drop_index("ix_parcel_stage_upload_id", table_name="parcel_stage")
    op.create_index(
        "ix_parcel_stage_upload_id", "parcel_stage", ["upload_id", "layer", "village", "parcel_no"]
    )
    op.create_index("ix_parcel_stage_geom", "parcel_stage", ["geom"], postgresql_using="gist")
    op.drop_column("parcel_stage", "area_m2")
    op.execute("""
        CREATE TEMP TABLE whole_files AS
        SELECT upload_id, string_agg(content, ''::bytea ORDER BY seq) AS content
        FROM upload_file GROUP BY upload_id""")
    op.execute("DELETE FROM upload_file")
    op.drop_constraint("pk_upload_file", "upload_file", type_="primary")
    op.drop_column("upload_file", "seq")
    op.create_primary_key("pk_upload_file", "upload_file", ["upload_id"])
    op.execute("ALTER TABLE upload_file ALTER COLUMN content SET STORAGE EXTENDED")
    op.execute("INSERT INTO upload_file SELECT upload_id, content FROM whole_files")
    op.execute("DROP TABLE whole_files")
