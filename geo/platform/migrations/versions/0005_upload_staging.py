"""Uploads keep their bytes and options; features are staged before validation.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "upload",
        sa.Column(
            "options", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
    )
    op.create_table(
        "upload_file",
        sa.Column("upload_id", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["upload.id"],
            ondelete="CASCADE",
            name=op.f("fk_upload_file_upload_id_upload"),
        ),
        sa.PrimaryKeyConstraint("upload_id", name=op.f("pk_upload_file")),
    )
    op.create_table(
        "parcel_stage",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("upload_id", sa.BigInteger(), nullable=False),
        sa.Column("layer", sa.Text(), nullable=False),
        sa.Column("feature", sa.Integer(), nullable=False),
        sa.Column("parcel_no", sa.Text(), nullable=True),
        sa.Column("land_use", sa.Text(), nullable=True),
        sa.Column("area_declared", sa.Float(), nullable=True),
        sa.Column(
            "attrs", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="GEOMETRY",
                srid=4326,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["upload.id"],
            ondelete="CASCADE",
            name=op.f("fk_parcel_stage_upload_id_upload"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parcel_stage")),
        prefixes=["UNLOGGED"],
    )
    op.create_index("ix_parcel_stage_upload_id", "parcel_stage", ["upload_id"])
    op.create_index("ix_parcel_stage_geom", "parcel_stage", ["geom"], postgresql_using="gist")


def downgrade() -> None:
    op.drop_index("ix_parcel_stage_geom", table_name="parcel_stage")
    op.drop_index("ix_parcel_stage_upload_id", table_name="parcel_stage")
    op.drop_table("parcel_stage")
    op.drop_table("upload_file")
    op.drop_column("upload", "options")
