"""Division loose keys to be folded again with the loose key's new rules.

The loose key learnt: ء dropped anywhere (ضیاءآباد/ضیاآباد), the Persian letters an Arabic
keyboard lacks written as their Arabic look-alikes (چ→ج, پ→ب, ژ→ز besides گ→ک), «الله» as
«اله», a leading «شهر جدید» dropped. A migration does not import the code that folds
names (it would run today's rules under yesterday's schema): it empties the stored keys,
and ``tagsim db migrate`` then refolds every empty key with the current rules
(``geo.geodata.registry.store.refold_loose_keys``). Downgrade keeps the keys as they are:
they are only ever compared with keys made by the same code, and 0011's code refolds the
names it imports.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().execute(sa.text("UPDATE division SET name_loose = '' WHERE name_loose <> ''"))


def downgrade() -> None:
    """Nothing to undo: the keys stay folded (see the module's docstring)."""
