"""Put an upload's features into ``parcel_stage``, batch by batch: mapped fields, 2D,
lon/lat, each feature's ellipsoidal area and validity, via COPY.

Geometry work is vectorised per Arrow batch (shapely and pyproj over arrays), and each
batch is sent while PostgreSQL parses the previous one, so the file is never whole in
memory. While staging, each village's lon/lat box is gathered: the ingest checks the
villages' locations from it without reading the features again.
"""

from __future__ import annotations

import binascii
import itertools
import json
import math
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
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


def _hex_ewkb(geoms: np.ndarray) -> pa.Array:
    """Hex EWKB (SRID 4326) of each geometry (``\\N`` for none), what COPY text takes for
    a geometry column: shapely writes the WKB, the batch is turned to hex at once."""
    wkbs = pa.array(
        shapely.to_wkb(shapely.set_srid(geoms, WGS84), include_srid=True), type=pa.binary()
    )
    offsets = np.frombuffer(wkbs.buffers()[1], dtype=np.int32)[: len(wkbs) + 1]
    data = wkbs.buffers()[2]
    hexed = binascii.hexlify(data[int(offsets[0]) : int(offsets[-1])] if data else b"")
    hex_offsets = ((offsets - offsets[0]) * 2).astype(np.int64)
    out = pa.LargeStringArray.from_buffers(
        len(wkbs), pa.py_buffer(hex_offsets), pa.py_buffer(hexed)
    ).cast(pa.string())
    return pc.if_else(wkbs.is_valid(), out, _NULL)


def _escaped(values: list[str | None]) -> pa.Array:
    """Texts escaped for COPY (as :func:`geo.db.copy_text`), ``\\N`` for none."""
    out = pa.array(values, type=pa.string())
    for raw, escape in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
        out = pc.replace_substring(out, raw, escape)
    return out.fill_null(_NULL)


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


def _numbers_text(values: list[float | None] | np.ndarray) -> pa.Array:
    """COPY text of numbers: shortest round-trip digits, ``\\N`` for a missing one."""
    array = np.asarray(values, dtype=float)
    return pc.cast(pa.array(array, mask=np.isnan(array)), pa.string()).fill_null(_NULL)


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
    head = f"{upload_id}\t{layer}\t"
    with (
        cursor.copy(_COPY, writer=QueuedLibpqWriter(cursor)) as copy,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        # Two batches in the making at once (shapely, numpy and Arrow let go of the GIL),
        # written in file order.
        pending: deque[Future[_Batch]] = deque()
        start = 1
        for batch in itertools.chain(batches, [None]):
            if batch is not None:
                pending.append(pool.submit(_batch_text, batch, head, start, epsg, fields, villages))
                start += batch.num_rows
            while pending and (batch is None or len(pending) > 2):
                done = pending.popleft().result()
                copy.write(done.payload)
                stats.features += done.count
                stats.z_dropped += done.z
                stats.grow(done.codes, done.bounds)
                if progress is not None:
                    progress(stats.features)
    return stats


@dataclass(frozen=True)
class _Batch:
    """A batch made ready: its COPY text and what staging counts of it."""

    payload: pa.Buffer
    count: int
    z: int
    codes: list[str]
    bounds: np.ndarray


def _batch_text(
    batch: pa.RecordBatch,
    head: str,
    start: int,
    epsg: int,
    fields: dict[str, str | None],
    villages: Callable[[pa.RecordBatch], list[str]],
) -> _Batch:
    """One batch as COPY text lines (each starting with ``head``, features numbered from
    ``start``). The lines are joined column by column in Arrow: no Python work per
    feature."""
    roles = {v for v in fields.values() if v}
    n = batch.num_rows
    geoms = shapely.from_wkb(batch.column("geometry").to_numpy(zero_copy_only=False))
    z = int(np.count_nonzero(shapely.has_z(geoms)))
    lonlat = _reproject(shapely.force_2d(geoms) if z else geoms, epsg)
    present = ~shapely.is_missing(lonlat)
    valid = pc.if_else(
        pa.array(present), pa.array(np.where(shapely.is_valid(lonlat), "t", "f")), _NULL
    )  # GEOS: PostGIS's ST_IsValid
    codes = villages(batch)
    others = [c for c in batch.schema.names if c != "geometry" and c not in roles]
    columns = [
        _escaped(codes),  # type: ignore[arg-type]
        pc.cast(pa.array(np.arange(start, start + n)), pa.string()),
        _escaped(_texts(_column(batch, fields, "parcel_no"), n)),
        _escaped(_texts(_column(batch, fields, "land_use"), n)),
        _numbers_text(_numbers(_column(batch, fields, "area"), n)),  # type: ignore[arg-type]
        pa.array(_attrs(batch, others), type=pa.string()),
        _numbers_text(ellipsoidal_area(lonlat)),
        _hex_ewkb(lonlat),
        pc.binary_join_element_wise(valid, pa.scalar("\n"), ""),  # the line's end
    ]
    lines = pc.binary_join_element_wise(pa.scalar(head[:-1]), *columns, "\t")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset :][: n + 1]
    payload = lines.buffers()[2][int(offsets[0]) : int(offsets[-1])]
    return _Batch(payload, n, z, codes, shapely.bounds(lonlat))
