"""Version ids for parcel rows, drawn from ``parcel_id_seq`` before the rows are written.

A publish that streams its rows with COPY writes each row's id in the COPY text, so it
knows every inserted version (the change sets name them) without reading the rows back.
The ids come in blocks on a connection of their own, in autocommit: a sequence is not
transactional, so ids drawn for a publish that rolls back are only a gap, as ids drawn by
``nextval`` in that transaction would be.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import text

from geo.platform.database import Database

__all__ = ["IdBlocks"]


class IdBlocks:
    """Ids of ``parcel_id_seq``, handed out in file order from blocks drawn ahead."""

    def __init__(self, db: Database, block: int = 1 << 16) -> None:
        self._conn = db.autocommit()
        self._block = block
        self._left = np.empty(0, dtype=np.int64)

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` ids (increasing)."""
        while len(self._left) < n:
            wanted = max(self._block, n - len(self._left))
            drawn = self._conn.execute(
                text(
                    "SELECT string_agg(nextval('parcel_id_seq')::text, ' ')"
                    " FROM generate_series(1, :n)"
                ),
                {"n": wanted},
            ).scalar_one()
            block = np.sort(np.array(drawn.split(), dtype=np.int64))
            self._left = np.concatenate([self._left, block])
        out, self._left = self._left[:n], self._left[n:]
        return out

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> IdBlocks:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
