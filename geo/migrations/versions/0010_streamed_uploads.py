"""Uploads stream: the file is kept in chunks, staged features carry their area.

``upload_file`` holds an upload in numbered chunks (``seq``), stored uncompressed (the
files are zips and GeoPackages: compressing them again only costs time), so a large file
is written and read back a chunk at a time and never whole in memory. ``parcel_stage``
gets the ellipsoidal area of each feature, computed once while staging (checks and
publish reuse it), and loses its GiST index: the geometric checks run per village in the
ingest process, and maintaining the index row by row made staging slower than the rest.

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


def upgrade() -> None:
    op.add_column("upload_file", sa.Column("seq", sa.Integer(), server_default="0", nullable=False))
    op.drop_constraint("pk_upload_file", "upload_file", type_="primary")
    op.create_primary_key("pk_upload_file", "upload_file", ["upload_id", "seq"])
    op.execute("ALTER TABLE upload_file ALTER COLUMN content SET STORAGE EXTERNAL")
    op.add_column("parcel_stage", sa.Column("area_m2", sa.Float(), nullable=True))
    op.drop_index("ix_parcel_stage_geom", table_name="parcel_stage", postgresql_using="gist")


def downgrade() -> None:
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
