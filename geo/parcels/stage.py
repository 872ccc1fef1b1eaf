"""Put an upload's features into ``parcel_stage``, batch by batch: mapped fields, 2D,
lon/lat, each feature's ellipsoidal area and validity, via COPY.

Geometry work is vectorised per Arrow batch (shapely and pyproj over arrays), and each
batch is sent while PostgreSQL parses the previous one, so the file is never whole in
memory. While staging, each village's lon/lat box is gathered: the ingest checks the
villages' locations from it without reading the features again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import shapely
from psycopg.copy import QueuedLibpqWriter

from geo.areas import ellipsoidal_area
from geo.crs import WGS84, transformer
from geo.db import copy_text

__all__ = ["StageStats", "stage_batches"]

_NULL = "\\N"
_COPY = (
    "COPY parcel_stage (upload_id, layer, village, feature, parcel_no, land_use,"
    " area_declared, attrs, area_m2, geom, valid) FROM STDIN"
)
Box = list[float]  # minx, miny, maxx, maxy (lon/lat)


@dataclass
class StageStats:
    """What staging saw: feature counts and each village's lon/lat box."""

    features: int = 0
    z_dropped: int = 0
    boxes: dict[str, Box] = field(default_factory=dict)

    def grow(self, villages: list[str], bounds: np.ndarray) -> None:
        frame = pd.DataFrame(bounds, columns=["x0", "y0", "x1", "y1"])
        frame["village"] = villages
        boxes = (
            frame.dropna()
            .groupby("village")
            .agg({"x0": "min", "y0": "min", "x1": "max", "y1": "max"})
        )
        for village, (x0, y0, x1, y1) in zip(boxes.index, boxes.to_numpy(), strict=True):
            box = self.boxes.get(village)
            if box is None:
                self.boxes[village] = [x0, y0, x1, y1]
            else:
                box[0], box[1] = min(box[0], x0), min(box[1], y0)
                box[2], box[3] = max(box[2], x1), max(box[3], y1)

    def center(self, village: str) -> tuple[float, float] | None:
        box = self.boxes.get(village)
        return None if box is None else ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _reproject(geoms: np.ndarray, epsg: int) -> np.ndarray:
    if epsg == WGS84:
        return geoms
    t = transformer(epsg, WGS84)
    return shapely.transform(geoms, lambda x, y: t.transform(x, y), interleaved=False)


def _hex_ewkb(geoms: np.ndarray) -> list[str | None]:
    """Hex EWKB (SRID 4326) of each geometry, what COPY text takes for a geometry column
    (binary WKB turned to hex by Python is ~3x faster than shapely's hex output)."""
    out = shapely.to_wkb(shapely.set_srid(geoms, WGS84), include_srid=True)
    return [None if w is None else w.hex() for w in out]


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value).strip()
    return out or None


def _texts(column: pa.Array | None, n: int) -> list[str | None]:
    if column is None:
        return [None] * n
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return [(s.strip() or None) if s is not None else None for s in column.to_pylist()]
    return [_text(v) for v in column.to_pylist()]


def _numbers(column: pa.Array | None, n: int) -> list[float | None]:
    if column is None:
        return [None] * n
    out: list[float | None] = []
    for v in column.to_pylist():
        try:
            f = float(v)
        except (TypeError, ValueError):
            out.append(None)
            continue
        out.append(None if math.isnan(f) else f)
    return out


def _column(batch: pa.RecordBatch, fields: dict[str, str | None], role: str) -> pa.Array | None:
    name = fields.get(role)
    return batch.column(name) if name and name in batch.schema.names else None


def _attrs(batch: pa.RecordBatch, others: list[str]) -> list[str]:
    """Each feature's other attributes as COPY-escaped JSON (only the non-empty ones)."""
    if not others:
        return ["{}"] * batch.num_rows
    columns = [_texts(batch.column(name), batch.num_rows) for name in others]
    written: dict[tuple[str | None, ...], str] = {}  # such values repeat (a village's name)
    out = []
    for values in zip(*columns, strict=True):
        text = written.get(values)
        if text is None:
            attrs = {n: v for n, v in zip(others, values, strict=True) if v is not None}
            text = written[values] = copy_text(json.dumps(attrs, ensure_ascii=False))
        out.append(text)
    return out


def _numbers_text(values: list[float | None] | np.ndarray) -> list[str]:
    """COPY text of numbers: shortest round-trip digits, ``\\N`` for a missing one."""
    array = np.asarray(values, dtype=float)
    return np.where(np.isnan(array), _NULL, array.astype(str)).tolist()


def stage_batches(
    conn: Any,
    upload_id: int,
    layer: str,
    batches: Iterable[pa.RecordBatch],
    epsg: int,
    fields: dict[str, str | None],
    villages: Callable[[pa.RecordBatch], list[str]],
    progress: Callable[[int], None] | None = None,
) -> StageStats:
    """Stage one layer's batches; ``villages`` gives each feature's village code of a batch.

    ``conn`` is a SQLAlchemy connection in a transaction; ``progress`` hears the running
    count of features after each batch.
    """
    stats = StageStats()
    cursor = conn.connection.dbapi_connection.cursor()
    # One COPY for the layer, fed by a writer thread: PostgreSQL parses a batch while
    # this process prepares the next one (two cores busy instead of one at a time).
    with cursor.copy(_COPY, writer=QueuedLibpqWriter(cursor)) as copy:
        for batch in batches:
            copy.write(_batch_text(batch, f"{upload_id}\t{layer}\t", epsg, fields, villages, stats))
            if progress is not None:
                progress(stats.features)
    return stats


def _batch_text(
    batch: pa.RecordBatch,
    head: str,
    epsg: int,
    fields: dict[str, str | None],
    villages: Callable[[pa.RecordBatch], list[str]],
    stats: StageStats,
) -> str:
    """One batch as COPY text lines (each starting with ``head``); counts it in ``stats``."""
    roles = {v for v in fields.values() if v}
    n = batch.num_rows
    geoms = shapely.from_wkb(batch.column("geometry").to_numpy(zero_copy_only=False))
    z = int(np.count_nonzero(shapely.has_z(geoms)))
    stats.z_dropped += z
    lonlat = _reproject(shapely.force_2d(geoms) if z else geoms, epsg)
    wkb = _hex_ewkb(lonlat)
    valid = np.where(shapely.is_valid(lonlat), "t", "f")  # GEOS: PostGIS's ST_IsValid
    areas = _numbers_text(ellipsoidal_area(lonlat))
    codes = villages(batch)
    stats.grow(codes, shapely.bounds(lonlat))

    parcel_no = _texts(_column(batch, fields, "parcel_no"), n)
    land_use = _texts(_column(batch, fields, "land_use"), n)
    declared = _numbers_text(_numbers(_column(batch, fields, "area"), n))
    others = [c for c in batch.schema.names if c != "geometry" and c not in roles]
    attrs = _attrs(batch, others)
    start = stats.features + 1
    lines = [
        head
        + "\t".join(
            (
                copy_text(codes[i]),
                str(start + i),
                copy_text(parcel_no[i]) if parcel_no[i] else _NULL,
                copy_text(land_use[i]) if land_use[i] else _NULL,
                declared[i],
                attrs[i],
                areas[i],
                wkb[i] if wkb[i] is not None else _NULL,
                valid[i] if wkb[i] is not None else _NULL,
            )
        )
        for i in range(n)
    ]
    stats.features += n
    return "\n".join(lines) + "\n"
