"""A change's before and after states are stored as ``json``, not ``jsonb``.

The feed is an append-only log written once and sent as JSON text many times: nothing
queries inside the states but the geometry (``->``, which ``json`` has too). ``json`` keeps
the text as written, so a publish does not convert each parcel's GeoJSON into ``jsonb``'s
binary form (a national publish wrote 1.2 million: 40 s of its 85) and the feed does not
convert it back to text on every read. Tables shrink by a fifth.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE change ALTER COLUMN before TYPE json, ALTER COLUMN after TYPE json")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE change ALTER COLUMN before TYPE jsonb USING before::jsonb,"
        " ALTER COLUMN after TYPE jsonb USING after::jsonb"
    )
