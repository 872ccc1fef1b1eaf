"""Staging writes only what the checks need: no foreign key, and each feature's validity.

``parcel_stage`` is scratch space written by COPY a million rows at a time. Its foreign
key to ``upload`` ran a lookup per staged row (an insert trigger); the rows are removed by
the ingest itself (on failure and after publish) and uploads are never deleted, so the key
goes. ``valid`` is each geometry's validity, computed by the ingest process while staging
(GEOS, as PostGIS's ``ST_IsValid``): the checks, the zone coverage and the publish no
longer ask PostgreSQL for it again and again.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("fk_parcel_stage_upload_id_upload", "parcel_stage", type_="foreignkey")
    op.add_column("parcel_stage", sa.Column("valid", sa.Boolean()))
    op.execute("UPDATE parcel_stage SET valid = ST_IsValid(geom)")  # dry runs awaiting publish


def downgrade() -> None:
    op.drop_column("parcel_stage", "valid")
    op.execute("DELETE FROM parcel_stage WHERE upload_id NOT IN (SELECT id FROM upload)")
    op.create_foreign_key(
        "fk_parcel_stage_upload_id_upload",
        "parcel_stage",
        "upload",
        ["upload_id"],
        ["id"],
        ondelete="CASCADE",
    )
