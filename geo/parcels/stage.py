"""Write an upload's prepared features with COPY, batch by batch, while checking them.

Two targets take the same prepared batches: ``parcel_stage`` (:class:`StageRows`, scratch
rows a dry run keeps until it is published) and a publish's loading table
(:class:`ParcelRows`, rows shaped as ``parcel``'s). Each batch's COPY text is joined column
by column in Arrow (hex WKB of the whole batch at once, numbers cast by Arrow): no Python
work per feature. Two batches are prepared at once on worker threads and written in file
order while PostgreSQL parses the one before, so the file is never whole in memory. While
writing, each village's lon/lat box is gathered (the villages' locations are checked from
it) and the batches go through the :class:`~geo.parcels.checks.Checker`.
"""

from __future__ import annotations

import binascii
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from psycopg.copy import QueuedLibpqWriter

from geo.parcels.checks import feature_findings
from geo.parcels.prepare import Codes, Prepared, Villages, prepare

__all__ = ["ParcelRows", "StageRows", "StageStats", "Target", "prepared_batches", "write_batches"]

_NULL = "\\N"
Box = list[float]  # minx, miny, maxx, maxy (lon/lat)
# A one-part multipolygon's header (little-endian, type 6, one part): followed by the
# polygon's plain WKB, it is the polygon as a multipolygon.
_MULTI_HEAD = pa.scalar(b"\x01\x06\x00\x00\x00\x01\x00\x00\x00", pa.binary())


@dataclass
class StageStats:
    """What writing saw: feature counts, each village's lon/lat box and, when the target
    drew version ids, each village's ids in file order."""

    features: int = 0
    z_dropped: int = 0
    boxes: dict[str, Box] = field(default_factory=dict)
    ids: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def note_ids(self, villages: Codes, ids: np.ndarray) -> None:
        for village, start, end in villages.runs():
            self.ids.setdefault(village, []).append(ids[start:end])

    def grow(self, villages: Codes, bounds: np.ndarray) -> None:
        placed = ~np.isnan(bounds).any(axis=1)
        if not placed.any():
            return
        which, bounds = villages.index[placed], bounds[placed]
        low = np.full((len(villages.names), 2), np.inf)
        high = np.full((len(villages.names), 2), -np.inf)
        np.minimum.at(low, which, bounds[:, :2])
        np.maximum.at(high, which, bounds[:, 2:])
        for i in np.unique(which):
            village, (x0, y0), (x1, y1) = villages.names[i], low[i], high[i]
            box = self.boxes.get(village)
            if box is None:
                self.boxes[village] = [float(x0), float(y0), float(x1), float(y1)]
            else:
                box[0], box[1] = min(box[0], x0), min(box[1], y0)
                box[2], box[3] = max(box[2], x1), max(box[3], y1)

    def center(self, village: str) -> tuple[float, float] | None:
        box = self.boxes.get(village)
        return None if box is None else ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _hex(wkbs: pa.Array) -> pa.Array:
    """Each binary value as hex text (null stays null), the whole array at once."""
    if wkbs.offset:
        wkbs = pa.concat_arrays([wkbs])  # (a slice: its own buffers, from 0)
    offsets = np.frombuffer(wkbs.buffers()[1], dtype=np.int32)[: len(wkbs) + 1]
    data = wkbs.buffers()[2]
    hexed = binascii.hexlify(data[int(offsets[0]) : int(offsets[-1])] if data else b"")
    return pa.StringArray.from_buffers(
        len(wkbs),
        pa.py_buffer((offsets - offsets[0]) * 2),
        pa.py_buffer(hexed),
        wkbs.buffers()[0],
    )


def _plain_2d(wkb: pa.Array) -> bool:
    """Whether every WKB is little-endian with a plain 2D type (no Z, M or SRID flags)."""
    plain = pc.and_(
        pc.equal(pc.binary_slice(wkb, 0, 1), pa.scalar(b"\x01", pa.binary())),
        pc.equal(pc.binary_slice(wkb, 2, 5), pa.scalar(b"\x00\x00\x00", pa.binary())),
    )
    return bool(pc.all(plain.fill_null(True)).as_py())


def _hex_wkb(
    geoms: np.ndarray,
    multi: bool = False,
    wkb: pa.Array | None = None,
    types: np.ndarray | None = None,
) -> pa.Array:
    """Hex WKB of each geometry (``\\N`` for none), what COPY text takes for a geometry
    column: the columns written name SRID 4326 in their type, and PostGIS gives a geometry
    without an SRID its column's. The WKB is ``wkb`` when given (the file's own, for
    geometries unchanged) or shapely's. ``multi``: polygons written as one-part
    multipolygons (``ST_Multi``; ``types``: the geometries' type ids, when known)."""
    raw = None if wkb is None else wkb.cast(pa.binary())
    if raw is None or not _plain_2d(raw):  # big-endian, or flags: let shapely write it
        raw = pa.array(shapely.to_wkb(geoms, byte_order=1), type=pa.binary())
    if multi:
        types = shapely.get_type_id(geoms) if types is None else types
        as_multi = pc.binary_join_element_wise(_MULTI_HEAD, raw, pa.scalar(b"", pa.binary()))
        raw = pc.if_else(pa.array(types == 3), as_multi, raw)
    return _hex(raw).fill_null(_NULL)


def _escaped(values: Sequence[str | None] | pa.Array) -> pa.Array:
    """Texts escaped for COPY (as :func:`geo.db.copy_text`), ``\\N`` for none."""
    out = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
    if pc.any(pc.match_substring_regex(out, r"[\\\t\n\r]")).as_py():
        for raw, escape in (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r")):
            out = pc.replace_substring(out, raw, escape)
    return out.fill_null(_NULL)


def _escaped_codes(codes: Codes, values: dict[str, str] | None = None) -> pa.Array:
    """Each feature's code (or ``values`` of it, '' for none) escaped for COPY: the
    distinct ones escaped once."""
    names = list(codes.names) if values is None else [values.get(c, "") for c in codes.names]
    return _escaped(names).take(pa.array(codes.index))


def _numbers_text(values: np.ndarray) -> pa.Array:
    """COPY text of numbers: shortest round-trip digits, ``\\N`` for a missing one."""
    array = np.asarray(values, dtype=float)
    return pc.cast(pa.array(array, mask=np.isnan(array)), pa.string()).fill_null(_NULL)


def _lines(columns: list[pa.Array], n: int) -> pa.Buffer:
    """The COPY text of ``n`` rows from their columns' texts."""
    columns = [*columns[:-1], pc.binary_join_element_wise(columns[-1], pa.scalar("\n"), "")]
    lines = pc.binary_join_element_wise(*columns, "\t")
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset :][: n + 1]
    return lines.buffers()[2][int(offsets[0]) : int(offsets[-1])]


class Target(Protocol):
    """Where prepared batches go: a COPY statement and each batch's text for it (with
    the ids :meth:`draw` gave its rows, if any); ``takes_errors``: whether features with
    errors may go there."""

    copy_sql: str
    takes_errors: bool

    def draw(self, n: int) -> np.ndarray | None: ...

    def text(self, p: Prepared, ids: np.ndarray | None) -> pa.Buffer: ...


@dataclass(frozen=True)
class StageRows:
    """Rows of ``parcel_stage`` for one layer of one upload."""

    upload_id: int
    layer: str
    takes_errors: bool = True
    copy_sql: str = (
        "COPY parcel_stage (upload_id, layer, village, feature, parcel_no, land_use,"
        " area_declared, attrs, area_m2, geom, valid) FROM STDIN"
    )

    def draw(self, n: int) -> None:
        return None

    def text(self, p: Prepared, ids: np.ndarray | None) -> pa.Buffer:
        present = pa.array(p.present)
        valid = pc.if_else(present, pa.array(np.where(p.valid, "t", "f")), _NULL)
        columns = [
            pa.array([f"{self.upload_id}\t{self.layer}"] * p.count, type=pa.string()),
            _escaped_codes(p.codes),
            pc.cast(pa.array(p.numbers), pa.string()),
            _escaped(p.parcel_nos),
            _escaped(p.land_uses),
            _numbers_text(p.declared),
            p.attrs,
            _numbers_text(p.areas),
            _hex_wkb(p.geoms, wkb=p.wkb),
            valid,
        ]
        return _lines(columns, p.count)


@dataclass(frozen=True)
class ParcelRows:
    """Rows of ``parcel`` (as published: ids drawn by ``ids``, validity from the table's
    defaults) for villages of ``agency``, each with its province; only valid polygons may
    come."""

    agency: str
    upload_id: int
    provinces: dict[str, str]
    table: str
    ids: Callable[[int], np.ndarray]
    takes_errors: bool = False
    copy_sql: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "copy_sql",
            f"COPY {self.table} (id, village_agency, upload_id, village_code, parcel_no,"
            " land_use, area_declared, area_m2, attrs, geom, province) FROM STDIN",
        )

    def draw(self, n: int) -> np.ndarray:
        return self.ids(n)

    def text(self, p: Prepared, ids: np.ndarray | None) -> pa.Buffer:
        columns = [
            pc.cast(pa.array(ids), pa.string()),
            pa.array([f"{self.agency}\t{self.upload_id}"] * p.count, type=pa.string()),
            _escaped_codes(p.codes),
            _escaped(p.parcel_nos),
            _escaped(p.land_uses),
            _numbers_text(p.declared),
            _numbers_text(p.areas),
            p.attrs,
            _hex_wkb(p.geoms, multi=True, wkb=p.wkb, types=p.types),
            _escaped_codes(p.codes, self.provinces),
        ]
        return _lines(columns, p.count)


@dataclass(frozen=True)
class Made:
    """A batch prepared, checked, and its COPY text (None when it is not to be written)
    with its rows' ids (when the target draws them)."""

    prepared: Prepared
    payload: pa.Buffer | None
    bounds: np.ndarray
    ids: np.ndarray | None = None


def _make(
    batch: pa.RecordBatch,
    numbers: np.ndarray,
    epsg: int,
    fields: dict[str, str | None],
    villages: Villages,
    repair: bool,
    target: Target | None,
    ids: np.ndarray | None,
) -> Made:
    p = prepare(batch, numbers, epsg, fields, villages, repair)
    p.findings.extend(feature_findings(p))
    payload = None
    if target is not None and (
        target.takes_errors or not any(f["level"] == "error" for f in p.findings)
    ):
        payload = target.text(p, ids)
    return Made(p, payload, shapely.bounds(p.geoms), ids)


def prepared_batches(
    pool: Executor,
    batches: Iterable[pa.RecordBatch],
    epsg: int,
    fields: dict[str, str | None],
    villages: Villages,
    *,
    repair: bool = False,
    target: Target | None = None,
    keep: Callable[[pa.RecordBatch, Codes], np.ndarray] | None = None,
) -> Iterator[Made]:
    """The batches prepared (and their text for ``target``, unless it takes no errors and
    the batch has one) on ``pool``, two at a time, yielded in file order. ``keep``: a row
    filter (from a batch and its village codes) applied before preparing; features keep
    their numbers in the file."""
    pending: deque[Future[Made]] = deque()
    start = 1
    for batch in itertools.chain(batches, [None]):
        if batch is not None:
            numbers = np.arange(start, start + batch.num_rows, dtype=np.int64)
            start += batch.num_rows
            if keep is not None:
                mask = keep(batch, villages(batch))
                batch, numbers = batch.filter(pa.array(mask)), numbers[mask]
            ids = target.draw(len(numbers)) if target is not None else None  # in file order
            pending.append(
                pool.submit(_make, batch, numbers, epsg, fields, villages, repair, target, ids)
            )
        while pending and (batch is None or len(pending) > 2):
            yield pending.popleft().result()


def write_batches(
    conn: Any,
    target: Target,
    made: Iterable[Made],
    on_batch: Callable[[Made], None],
) -> StageStats:
    """COPY the made batches' texts into ``target``; ``on_batch`` hears each batch (in
    file order) after it is written. ``conn``: a SQLAlchemy connection in a transaction."""
    stats = StageStats()
    cursor = conn.connection.dbapi_connection.cursor()
    # One COPY fed by a writer thread: PostgreSQL parses a batch while the next is made.
    with cursor.copy(target.copy_sql, writer=QueuedLibpqWriter(cursor)) as copy:
        for m in made:
            if m.payload is not None:
                copy.write(m.payload)
            stats.features += m.prepared.count
            stats.z_dropped += m.prepared.z
            stats.grow(m.prepared.codes, m.bounds)
            if m.payload is not None and m.ids is not None:
                stats.note_ids(m.prepared.codes, m.ids)
            on_batch(m)
    return stats
