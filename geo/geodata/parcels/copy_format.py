"""COPY payloads built column by column in Arrow, a batch at a time: no Python work per
feature.

Two formats: text (``parcel_stage`` rows, :func:`text_rows`) and binary (``parcel`` rows,
:func:`binary_rows`: nothing to escape or to parse as digits, WKB as it is; PostgreSQL
reads it in two thirds of the time text takes). Geometries go as plain WKB: the columns
written name SRID 4326 in their type, and PostGIS gives a geometry without an SRID its
column's.
"""

from __future__ import annotations

import binascii
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo.platform.database import COPY_ESCAPES, COPY_SPECIAL

__all__ = [
    "BINARY_HEADER",
    "NULL",
    "binary_field",
    "binary_rows",
    "escaped",
    "float8_field",
    "hex_wkb",
    "int8_field",
    "numbers_text",
    "text_rows",
    "wkb",
]

NULL = "\\N"
# Binary COPY's signature, flags and header extension length (both none).
BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_EMPTY = pa.scalar(b"", pa.binary())
# A one-part multipolygon's header (little-endian, type 6, one part): followed by the
# polygon's plain WKB, it is the polygon as a multipolygon.
_MULTI_HEAD = pa.scalar(b"\x01\x06\x00\x00\x00\x01\x00\x00\x00", pa.binary())


def _plain_2d(raw: pa.Array) -> bool:
    """Whether every WKB is little-endian with a plain 2D type (no Z, M or SRID flags)."""
    plain = pc.and_(
        pc.equal(pc.binary_slice(raw, 0, 1), pa.scalar(b"\x01", pa.binary())),
        pc.equal(pc.binary_slice(raw, 2, 5), pa.scalar(b"\x00\x00\x00", pa.binary())),
    )
    return bool(pc.all(plain.fill_null(True)).as_py())


def wkb(
    geoms: np.ndarray,
    multi: bool = False,
    own: pa.Array | None = None,
    types: np.ndarray | None = None,
) -> pa.Array:
    """Plain WKB of each geometry (null for none): ``own`` when given (the file's own, for
    geometries unchanged) or shapely's. ``multi``: polygons written as one-part
    multipolygons (``ST_Multi``; ``types``: the geometries' type ids, when known)."""
    raw = None if own is None else own.cast(pa.binary())
    if raw is None or not _plain_2d(raw):  # big-endian, or flags: let shapely write it
        raw = pa.array(shapely.to_wkb(geoms, byte_order=1), type=pa.binary())
    if multi:
        types = shapely.get_type_id(geoms) if types is None else types
        as_multi = pc.binary_join_element_wise(_MULTI_HEAD, raw, _EMPTY)
        raw = pc.if_else(pa.array(types == 3), as_multi, raw)
    return raw


def _own_buffers(values: pa.Array) -> pa.Array:
    return pa.concat_arrays([values]) if values.offset else values  # (a slice: from 0)


def _hex(raw: pa.Array) -> pa.Array:
    """Each binary value as hex text (null stays null), the whole array at once."""
    raw = _own_buffers(raw)
    offsets = np.frombuffer(raw.buffers()[1], dtype=np.int32)[: len(raw) + 1]
    data = raw.buffers()[2]
    hexed = binascii.hexlify(data[int(offsets[0]) : int(offsets[-1])] if data else b"")
    return pa.StringArray.from_buffers(
        len(raw), pa.py_buffer((offsets - offsets[0]) * 2), pa.py_buffer(hexed), raw.buffers()[0]
    )


def hex_wkb(
    geoms: np.ndarray,
    multi: bool = False,
    own: pa.Array | None = None,
    types: np.ndarray | None = None,
) -> pa.Array:
    """COPY text of each geometry: its :func:`wkb` in hex (``\\N`` for none)."""
    return _hex(wkb(geoms, multi, own, types)).fill_null(NULL)


def escaped(values: Sequence[str | None] | pa.Array) -> pa.Array:
    """Texts escaped for COPY text (the rule of ``geo.platform.database.COPY_ESCAPES``),
    ``\\N`` for none."""
    out = values if isinstance(values, pa.Array) else pa.array(values, type=pa.string())
    if pc.any(pc.match_substring_regex(out, COPY_SPECIAL)).as_py():
        for raw, escape in COPY_ESCAPES:
            out = pc.replace_substring(out, raw, escape)
    return out.fill_null(NULL)


def numbers_text(values: np.ndarray) -> pa.Array:
    """COPY text of numbers: shortest round-trip digits, ``\\N`` for a missing one."""
    array = np.asarray(values, dtype=float)
    return pc.cast(pa.array(array, mask=np.isnan(array)), pa.string()).fill_null(NULL)


def _data(rows: pa.Array) -> pa.Buffer:
    """The bytes of all of ``rows``' values, one after the other."""
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset :][: len(rows) + 1]
    return rows.buffers()[2][int(offsets[0]) : int(offsets[-1])]


def text_rows(columns: list[pa.Array]) -> pa.Buffer:
    """The COPY text of rows from their columns' texts."""
    columns = [*columns[:-1], pc.binary_join_element_wise(columns[-1], pa.scalar("\n"), "")]
    return _data(pc.binary_join_element_wise(*columns, "\t"))


def _fixed(data: bytes, width: int, n: int) -> pa.Array:
    """``n`` binary values of ``width`` bytes each, from ``data``."""
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _lengths(lengths: np.ndarray) -> pa.Array:
    """Binary COPY's field lengths (-1: null), as 4 big-endian bytes each."""
    return _fixed(lengths.astype(">i4").tobytes(), 4, len(lengths))


def binary_field(values: pa.Array) -> list[pa.Array]:
    """A variable-width field (text or bytes, null where none): its lengths and values."""
    raw = _own_buffers(values.cast(pa.binary()))
    lengths = np.diff(np.frombuffer(raw.buffers()[1], dtype=np.int32)[: len(raw) + 1])
    if raw.null_count:
        lengths = np.where(raw.is_valid().to_numpy(zero_copy_only=False), lengths, -1)
    return [_lengths(lengths), raw.fill_null(_EMPTY)]


def int8_field(values: np.ndarray) -> list[pa.Array]:
    """A bigint field with a value on every row."""
    n = len(values)
    return [_lengths(np.full(n, 8)), _fixed(np.asarray(values).astype(">i8").tobytes(), 8, n)]


def float8_field(values: np.ndarray) -> list[pa.Array]:
    """A double precision field, null where NaN."""
    values = np.asarray(values, dtype=float)
    present = ~np.isnan(values)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(np.where(present, 8, 0), out=offsets[1:])
    data = pa.py_buffer(values[present].astype(">f8").tobytes())
    floats = pa.Array.from_buffers(pa.binary(), len(values), [None, pa.py_buffer(offsets), data])
    return [_lengths(np.where(present, 8, -1)), floats]


def binary_rows(first: bytes, fields: list[list[pa.Array]]) -> pa.Buffer:
    """Binary COPY rows: ``first``, the bytes every row starts with (its field count and
    any fields the same on every row), then each of ``fields`` (lengths and values)."""
    parts = [pa.scalar(first, pa.binary()), *(part for f in fields for part in f)]
    return _data(pc.binary_join_element_wise(*parts, _EMPTY))
