"""The change feed reads in (txid, id) order.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_change_txid_id", "change", ["txid", "id"])


def downgrade() -> None:
    op.drop_index("ix_change_txid_id", table_name="change")
