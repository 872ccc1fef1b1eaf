"""Registry search: loose keys, ancestor codes, trigram and fuzzy-match extensions.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
    op.add_column("division", sa.Column("name_loose", sa.Text(), server_default="", nullable=False))
    op.add_column(
        "division",
        sa.Column("ancestors", postgresql.ARRAY(sa.Text()), server_default="{}", nullable=False),
    )
    op.add_column(
        "edition",
        sa.Column(
            "report", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
    )
    op.create_index("ix_division_edition_id_name_loose", "division", ["edition_id", "name_loose"])
    op.create_index("ix_division_edition_id_level", "division", ["edition_id", "level"])
    op.create_index(
        "ix_division_name_key_trgm",
        "division",
        ["name_key"],
        postgresql_using="gin",
        postgresql_ops={"name_key": "gin_trgm_ops"},
    )
    op.create_index("ix_division_ancestors", "division", ["ancestors"], postgresql_using="gin")


def downgrade() -> None:
    op.drop_index("ix_division_ancestors", table_name="division")
    op.drop_index("ix_division_name_key_trgm", table_name="division")
    op.drop_index("ix_division_edition_id_level", table_name="division")
    op.drop_index("ix_division_edition_id_name_loose", table_name="division")
    op.drop_column("edition", "report")
    op.drop_column("division", "ancestors")
    op.drop_column("division", "name_loose")
    # pg_trgm and fuzzystrmatch stay: other databases objects may use them.
