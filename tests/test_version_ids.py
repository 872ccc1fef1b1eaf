"""Version ids drawn ahead for a streamed publish (geo.geodata.parcels.version_ids)."""

from __future__ import annotations

import numpy as np
from sqlalchemy import text

from geo.geodata.parcels.version_ids import IdBlocks
from geo.platform.database import Database


def test_ids_cross_blocks_unique_and_increasing(db_url: str) -> None:
    with IdBlocks(Database(db_url), block=3) as ids:
        drawn = [ids.take(2), ids.take(4), ids.take(0), ids.take(5)]
    every = np.concatenate(drawn)
    assert [len(d) for d in drawn] == [2, 4, 0, 5]
    assert (np.diff(every) > 0).all()
    # drawn from parcel_id_seq: a row inserted later gets a larger id
    with Database(db_url).connect() as c:
        after = c.execute(text("SELECT nextval('parcel_id_seq')")).scalar_one()
    assert after > every[-1]
