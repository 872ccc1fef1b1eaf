"""``dataset_owner``: the agency that owns each writable dataset (DESIGN.md §11).

Parcels and guide-plan zones belong to HF, plates to the Registration Organization,
crosswalk decisions and releases to the agency that runs the service (MOI by default).
Only the owner's keys (and admins) write a dataset; an admin may hand it to another agency
(``PUT /admin/owners/{dataset}``). A seed whose agency is missing is skipped (the dataset
then has no owner but admins).

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

# (fixed here: a migration does not import live code)
_SEEDS = {"parcels": "hf", "plates": "registration", "crosswalk": "moi"}


def upgrade() -> None:
    op.create_table(
        "dataset_owner",
        sa.Column("dataset", sa.Text, nullable=False),
        sa.Column(
            "agency",
            sa.Text,
            sa.ForeignKey("agency.code", onupdate="CASCADE", name="fk_dataset_owner_agency_agency"),
            nullable=False,
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("updated_by", sa.Text),
        sa.CheckConstraint(
            "dataset IN ('parcels', 'plates', 'crosswalk')", name="ck_dataset_owner_dataset"
        ),
        sa.PrimaryKeyConstraint("dataset", name="pk_dataset_owner"),
    )
    for dataset, agency in _SEEDS.items():
        op.execute(
            sa.text(
                "INSERT INTO dataset_owner (dataset, agency) SELECT :d, code FROM agency"
                " WHERE code = :a"
            ).bindparams(d=dataset, a=agency)
        )


def downgrade() -> None:
    op.drop_table("dataset_owner")
