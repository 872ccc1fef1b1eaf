"""Division loose keys folded again with the current rules of ``geo.persian.loose_key``.

The loose key learnt: ء dropped anywhere (ضیاءآباد/ضیاآباد), the Persian letters an Arabic
keyboard lacks written as their Arabic look-alikes (چ→ج, پ→ب, ژ→ز besides گ→ک), «الله» as
«اله», a leading «شهر جدید» dropped. Stored keys are recomputed from the names, one
statement per 10,000 distinct names. Downgrade keeps the new keys (the old rules are gone
from the code; the keys are only ever compared with keys made by the same code).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from geo.persian import loose_key

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BATCH = 10_000


def upgrade() -> None:
    conn = op.get_bind()
    names = [r[0] for r in conn.execute(sa.text("SELECT DISTINCT name FROM division"))]
    for i in range(0, len(names), BATCH):
        chunk = names[i : i + BATCH]
        conn.execute(
            sa.text(
                "UPDATE division d SET name_loose = m.loose"
                " FROM unnest(CAST(:n AS text[]), CAST(:l AS text[])) AS m(name, loose)"
                " WHERE d.name = m.name AND d.name_loose IS DISTINCT FROM m.loose"
            ),
            {"n": chunk, "l": [loose_key(n) for n in chunk]},
        )


def downgrade() -> None:
    pass
