"""``subscription.parked_reason``: why a subscription stopped receiving.

``failures`` (its receiver failed ``MAX_FAILURES`` times in a row), ``key_revoked`` (no valid
key of its principal is left), ``agency_excluded`` (the ``changes`` policy now shuts its
agency out) or ``unreadable`` (its stored filters could not be read). Shown by
``GET /subscriptions``; cleared when it is resumed.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscription", sa.Column("parked_reason", sa.Text()))
    op.execute("UPDATE subscription SET parked_reason = 'failures' WHERE status = 'parked'")


def downgrade() -> None:
    op.drop_column("subscription", "parked_reason")
