"""Vector tiles kept in memory, keyed by the data's version: a tile is made once per change.

Each server process keeps the parcel tiles it made (least recently used dropped past
``max_bytes``). Before each tile it reads the parcels' data version (``data_version``, one
row: a primary-key lookup, no tile query); when the version moved, the areas changed since
the version the cache holds (``data_change_area``, written by each publish) drop the tiles
over them — a tile is never served from before a change that touches it, and tiles
elsewhere stay. A tile made while the version moves is not kept (it may predate the
change); when the areas needed are no longer kept, the whole cache is dropped.

Only tiles of the plain collection are kept (no filter, no date): those are what maps ask
for again and again; a filtered tile is made each time.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.exc import NoResultFound

from geo.platform.database import read_row

__all__ = ["TileCache", "tile_bounds"]

T = TypeVar("T")
Key = tuple[str, int, int, int]
Box = tuple[float, float, float, float]

_VERSION = "SELECT version FROM data_version WHERE dataset = :d"
_AREAS = text(
    "SELECT version, x0, y0, x1, y1 FROM data_change_area"
    " WHERE dataset = :d AND version > :seen AND version <= :now ORDER BY version"
)


def tile_bounds(z: int, x: int, y: int, margin: float) -> Box:
    """The lon/lat box of tile z/x/y widened by ``margin`` tiles on each side (a tile's
    features include those within its buffer)."""
    n = 1 << z

    def lon(tx: float) -> float:
        return tx / n * 360.0 - 180.0

    def lat(ty: float) -> float:
        ty = min(max(ty, 0.0), float(n))
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * ty / n))))

    return (lon(x - margin), lat(y + 1 + margin), lon(x + 1 + margin), lat(y - margin))


def _meets(area: Box) -> Callable[[Box], bool]:
    """Whether a box meets ``area``."""
    x0, y0, x1, y1 = area
    return lambda b: b[0] <= x1 and x0 <= b[2] and b[1] <= y1 and y0 <= b[3]


class TileCache:
    """One dataset's tiles (``dataset``: its row in ``data_version``) in this process."""

    def __init__(self, dataset: str, max_bytes: int, margin: float) -> None:
        self.dataset = dataset
        self.max_bytes = max_bytes
        self.margin = margin
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._tiles: OrderedDict[Key, tuple[bytes, Box, object]] = OrderedDict()
        self._bytes = 0
        self._version: int | None = None

    def get(
        self, conn: Connection, key: Key, make: Callable[[], T], size: Callable[[T], bytes]
    ) -> T:
        """The tile ``key`` (collection, z, x, y): kept, or made by ``make`` (and kept when
        the data did not change meanwhile). ``size``: the tile's bytes, for the budget."""
        if self.max_bytes <= 0:
            return make()
        found = read_row(conn, _VERSION, {"d": self.dataset})
        if found is None:
            raise NoResultFound(f"no data_version row for {self.dataset!r}")
        now = found[0]
        with self._lock:
            self._catch_up(conn, now)
            current = self._version == now
            kept = self._tiles.get(key) if current else None
            if kept is not None:
                self._tiles.move_to_end(key)
                self.hits += 1
                return kept[2]  # type: ignore[return-value]
            self.misses += 1
        made = make()
        data = size(made)
        if len(data) > self.max_bytes // 16:
            return made
        with self._lock:
            if self._version == now and key not in self._tiles:
                _, z, x, y = key
                self._tiles[key] = (data, tile_bounds(z, x, y, self.margin), made)
                self._bytes += len(data)
                while self._bytes > self.max_bytes:
                    _, (old, _box, _made) = self._tiles.popitem(last=False)
                    self._bytes -= len(old)
        return made

    def _catch_up(self, conn: Connection, now: int) -> None:
        """Drop the tiles over the areas changed between the version held and ``now``
        (under the lock; a request that read an older version than the one held changes
        nothing)."""
        seen = self._version
        if seen is None or now < seen:
            if seen is None:
                self._version = now
            return
        if now == seen:
            return
        areas = conn.execute(_AREAS, {"d": self.dataset, "seen": seen, "now": now}).all()
        if [a.version for a in areas] != list(range(seen + 1, now + 1)):
            self._drop(lambda _box: True)  # some areas are no longer kept: start afresh
        else:
            for a in areas:
                if a.x0 is None:
                    self._drop(lambda _box: True)
                    break
                self._drop(_meets((a.x0, a.y0, a.x1, a.y1)))
        self._version = now

    def _drop(self, over: Callable[[Box], bool]) -> None:
        for key in [k for k, (_, box, _m) in self._tiles.items() if over(box)]:
            data, _box, _made = self._tiles.pop(key)
            self._bytes -= len(data)
