"""Write an upload's prepared features with COPY, batch by batch, while checking them.

Two targets take the same prepared batches: ``parcel_stage`` (:class:`StageRows`, scratch
rows a dry run keeps until it is published) and a publish's loading table
(:class:`ParcelRows`, rows shaped as ``parcel``'s, drawing their version ids). Each batch's
COPY rows are joined column by column in Arrow (:mod:`geo.geodata.parcels.copy_format`: text for
the stage, binary for parcels): no Python work per feature. Two batches are prepared at
once on worker threads and written in file order while PostgreSQL parses the one before,
so the file is never whole in memory. While writing, each village's lon/lat box is
gathered (the villages' locations are checked from it) and the batches go through the
:class:`~geo.geodata.parcels.checks.Checker`.
"""

from __future__ import annotations

import itertools
import struct
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from psycopg.copy import QueuedLibpqWriter

from geo.geodata.parcels.checks import feature_findings
from geo.geodata.parcels.copy_format import (
    BINARY_HEADER,
    NULL,
    binary_field,
    binary_rows,
    escaped,
    float8_field,
    hex_wkb,
    int8_field,
    numbers_text,
    text_rows,
    wkb,
)
from geo.geodata.parcels.prepare import Codes, Prepared, Villages, prepare

__all__ = ["ParcelRows", "StageRows", "StageStats", "Target", "prepared_batches", "write_batches"]

Box = list[float]  # minx, miny, maxx, maxy (lon/lat)
# Features prepared as one task: a read batch is cut in slices so that three in flight
# (their geometries, transformed copies and COPY rows) stay small — 50,000 at a time took
# ~1 GB on a million-parcel tiling, 10,000 ~0.5 GB, at the same speed.
PREPARE_ROWS = 10_000
COPY_QUEUE = 64  # buffers of COPY data waiting for PostgreSQL (~8 MB)


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


def _codes(codes: Codes, values: dict[str, str] | None = None) -> list[str]:
    """The distinct codes of a batch, or ``values`` of them ('' for none)."""
    return list(codes.names) if values is None else [values.get(c, "") for c in codes.names]


def _escaped_codes(codes: Codes, values: dict[str, str] | None = None) -> pa.Array:
    """Each feature's code (or ``values`` of it) escaped for COPY text: the distinct ones
    escaped once."""
    return escaped(_codes(codes, values)).take(pa.array(codes.index))


def _code_field(codes: Codes, values: dict[str, str] | None = None) -> list[pa.Array]:
    """Each feature's code (or ``values`` of it) as a binary COPY field."""
    return binary_field(pa.array(_codes(codes, values), pa.string()).take(pa.array(codes.index)))


class Target(Protocol):
    """Where prepared batches go: a COPY statement, the bytes its data starts with, and
    each batch's rows for it (with the ids :meth:`draw` gave them, if any);
    ``takes_errors``: whether features with errors may go there."""

    @property
    def copy_sql(self) -> str: ...

    @property
    def header(self) -> bytes: ...

    @property
    def takes_errors(self) -> bool: ...

    def draw(self, n: int) -> np.ndarray | None: ...

    def rows(self, p: Prepared, ids: np.ndarray | None) -> pa.Buffer: ...


@dataclass(frozen=True)
class StageRows:
    """Rows of ``parcel_stage`` for one layer of one upload (COPY text)."""

    upload_id: int
    layer: str
    takes_errors: bool = True
    header: bytes = b""
    copy_sql: str = (
        "COPY parcel_stage (upload_id, layer, village, feature, parcel_no, land_use,"
        " area_declared, attrs, area_m2, geom, valid) FROM STDIN"
    )

    def draw(self, n: int) -> None:
        return None

    def rows(self, p: Prepared, ids: np.ndarray | None) -> pa.Buffer:
        present = pa.array(p.present)
        valid = pc.if_else(present, pa.array(np.where(p.valid, "t", "f")), NULL)
        return text_rows(
            [
                pa.array([f"{self.upload_id}\t{self.layer}"] * p.count, type=pa.string()),
                _escaped_codes(p.codes),
                pc.cast(pa.array(p.numbers), pa.string()),
                escaped(p.parcel_no_text),
                escaped(p.land_uses),
                numbers_text(p.declared),
                escaped(p.attrs),
                numbers_text(p.areas),
                hex_wkb(p.geoms, own=p.wkb),
                valid,
            ]
        )


@dataclass(frozen=True)
class ParcelRows:
    """Rows of ``parcel`` (as published: ids drawn by ``ids``, validity from the table's
    defaults) for villages of ``agency``, each with its province; only valid polygons may
    come. Binary COPY."""

    agency: str
    upload_id: int
    provinces: dict[str, str]
    table: str
    ids: Callable[[int], np.ndarray]
    takes_errors: bool = False
    header: bytes = BINARY_HEADER
    copy_sql: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "copy_sql",
            f"COPY {self.table} (village_agency, upload_id, id, village_code, parcel_no,"
            " land_use, area_declared, area_m2, attrs, geom, province) FROM STDIN"
            " (FORMAT binary)",
        )

    def draw(self, n: int) -> np.ndarray:
        return self.ids(n)

    def rows(self, p: Prepared, ids: np.ndarray | None) -> pa.Buffer:
        agency = self.agency.encode()
        first = struct.pack(">hi", 11, len(agency)) + agency + struct.pack(">iq", 8, self.upload_id)
        jsonb = pc.binary_join_element_wise(b"\x01", p.attrs.cast(pa.binary()), b"")
        return binary_rows(
            first,
            [
                int8_field(np.asarray(ids)),
                _code_field(p.codes),
                binary_field(p.parcel_no_text),
                binary_field(p.land_uses),
                float8_field(p.declared),
                float8_field(p.areas),
                binary_field(jsonb),
                binary_field(wkb(p.geoms, multi=True, own=p.wkb, types=p.types)),
                _code_field(p.codes, self.provinces),
            ],
        )


@dataclass(frozen=True)
class PreparedBatch:
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
) -> PreparedBatch:
    p = prepare(batch, numbers, epsg, fields, villages, repair)
    p.findings.extend(feature_findings(p))
    payload = None
    if target is not None and (
        target.takes_errors or not any(f["level"] == "error" for f in p.findings)
    ):
        payload = target.rows(p, ids)
    return PreparedBatch(p, payload, shapely.bounds(p.geoms), ids)


def _slices(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The batches cut into slices of ``PREPARE_ROWS`` (no copy)."""
    for batch in batches:
        for offset in range(0, batch.num_rows, PREPARE_ROWS):
            yield batch.slice(offset, PREPARE_ROWS)


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
) -> Iterator[PreparedBatch]:
    """The batches prepared (and their text for ``target``, unless it takes no errors and
    the batch has one) on ``pool``, ``PREPARE_ROWS`` features at a time and two slices
    ahead, yielded in file order. ``keep``: a row
    filter (from a batch and its village codes) applied before preparing; features keep
    their numbers in the file."""
    pending: deque[Future[PreparedBatch]] = deque()
    start = 1
    for batch in itertools.chain(_slices(batches), [None]):
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


class _ShortQueueWriter(QueuedLibpqWriter):
    """psycopg's queued COPY writer with a queue of ``COPY_QUEUE`` buffers (~128 kB each)
    instead of 1,024: when PostgreSQL falls behind, the stream waits for it rather than
    holding up to 128 MB of rows."""

    def __init__(self, cursor: Any) -> None:
        super().__init__(cursor)
        self._queue = type(self._queue)(maxsize=COPY_QUEUE)  # (psycopg's interruptible queue)


def write_batches(
    conn: Any,
    target: Target,
    made: Iterable[PreparedBatch],
    on_batch: Callable[[PreparedBatch], None],
) -> StageStats:
    """COPY the made batches' texts into ``target``; ``on_batch`` hears each batch (in
    file order) after it is written. ``conn``: a SQLAlchemy connection in a transaction."""
    stats = StageStats()
    cursor = conn.connection.dbapi_connection.cursor()
    # One COPY fed by a writer thread: PostgreSQL parses a batch while the next is made.
    with cursor.copy(target.copy_sql, writer=_ShortQueueWriter(cursor)) as copy:
        if target.header:
            copy.write(target.header)
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
