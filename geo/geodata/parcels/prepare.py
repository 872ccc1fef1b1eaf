"""A batch of an upload's features made ready for the checks and for COPY, vectorised.

Each Arrow batch becomes a :class:`Prepared`: the mapped fields as columns, the geometry
in lon/lat and 2D (repaired when asked), and per feature its ellipsoidal area and its
validity as GEOS (PostGIS's ``ST_IsValid``) sees it. shapely, pyproj and Arrow do the work
over whole arrays and let go of the GIL, so two batches can be prepared at once.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from geo.geodata.areas import ellipsoidal_area
from geo.geodata.crs import WGS84, transformer

__all__ = ["POLYGONAL", "Codes", "Prepared", "point_text", "prepare"]

POLYGONAL = (3, 6)  # shapely's type ids of Polygon and MultiPolygon


@dataclass(frozen=True)
class Codes:
    """Each feature's village code in a batch, as an index into the batch's distinct
    codes: per-village work goes by integers, not by a string per feature."""

    index: np.ndarray  # intp, one per feature
    names: np.ndarray  # object: the distinct codes

    @classmethod
    def of(cls, codes: Sequence[str]) -> Codes:
        names, index = np.unique(np.asarray(codes, dtype=object), return_inverse=True)
        return cls(index.astype(np.intp), names)

    @classmethod
    def single(cls, code: str, n: int) -> Codes:
        return cls(np.zeros(n, dtype=np.intp), np.array([code], dtype=object))

    def __len__(self) -> int:
        return len(self.index)

    @cached_property
    def each(self) -> list[str]:
        """The code of every feature."""
        return list(self.names[self.index])

    def runs(self) -> Iterator[tuple[str, int, int]]:
        """(code, start, end) of each run of features with the same code, in order."""
        n = len(self.index)
        if not n:
            return
        starts = np.flatnonzero(np.r_[True, self.index[1:] != self.index[:-1]])
        for start, end in zip(starts, [*starts[1:], n], strict=True):
            yield self.names[self.index[start]], int(start), int(end)

    def rows_of(self, code: str) -> np.ndarray:
        """The features with ``code``."""
        return np.flatnonzero(self.names[self.index] == code)

    def among(self, codes: set[str]) -> np.ndarray:
        """Whether each feature's code is one of ``codes``."""
        return np.isin(self.names, list(codes))[self.index]


Villages = Callable[[pa.RecordBatch], Codes]


@dataclass
class Prepared:
    """A batch's features: columns in file order, numbered from 1 over the whole file."""

    numbers: np.ndarray  # int64
    codes: Codes  # village codes
    parcel_no_text: pa.Array  # parcel numbers, null where none
    land_uses: pa.Array  # text, null where none
    declared: np.ndarray  # float, NaN where none
    attrs: pa.Array  # other attributes, JSON text
    geoms: np.ndarray  # lon/lat, 2D; None where the feature has no geometry
    valid: np.ndarray  # bool; False where no geometry
    areas: np.ndarray  # m², NaN where no geometry
    z: int  # features that had Z or M
    wkb: pa.Array | None = None  # the file's WKB, while the geometries are the file's
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.numbers)

    @cached_property
    def parcel_nos(self) -> list[str | None]:
        """The parcel numbers as Python text (for the checks and their findings)."""
        return self.parcel_no_text.to_pylist()

    # Asked by the checks and the COPY texts alike, once the geometries are final (after
    # repair): computed once per batch.

    @cached_property
    def present(self) -> np.ndarray:
        return ~shapely.is_missing(self.geoms)

    @cached_property
    def types(self) -> np.ndarray:
        return shapely.get_type_id(self.geoms)

    @cached_property
    def polygonal(self) -> np.ndarray:
        return np.isin(self.types, POLYGONAL)


def point_text(geom: Any) -> str | None:
    """A point on ``geom``'s surface as WKT (as ``ST_AsText(ST_PointOnSurface(..))``)."""
    if geom is None or shapely.is_empty(geom):
        return None
    try:
        p = shapely.point_on_surface(geom)
    except shapely.errors.GEOSException:  # an invalid geometry GEOS cannot walk
        p = shapely.centroid(geom)
    return f"POINT({shapely.get_x(p):.15g} {shapely.get_y(p):.15g})"


def _reproject(geoms: np.ndarray, epsg: int) -> np.ndarray:
    if epsg == WGS84:
        return geoms
    t = transformer(epsg, WGS84)
    return shapely.transform(geoms, lambda x, y: t.transform(x, y), interleaved=False)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value).strip()
    return out or None


def _text_array(column: pa.Array | None, n: int) -> pa.Array:
    """The column's values as trimmed text, null where empty."""
    if column is None:
        return pa.nulls(n, pa.string())
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        trimmed = pc.utf8_trim_whitespace(column).cast(pa.string())
        return pc.if_else(pc.equal(trimmed, ""), None, trimmed)
    return pa.array([_text(v) for v in column.to_pylist()], type=pa.string())


def _numbers(column: pa.Array | None, n: int) -> np.ndarray:
    if column is None:
        return np.full(n, np.nan)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        return column.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False)
    out = np.full(n, np.nan)
    for i, v in enumerate(column.to_pylist()):
        try:
            out[i] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def _column(batch: pa.RecordBatch, fields: dict[str, str | None], role: str) -> pa.Array | None:
    name = fields.get(role)
    return batch.column(name) if name and name in batch.schema.names else None


def _attrs(batch: pa.RecordBatch, others: list[str]) -> pa.Array:
    """Each feature's other attributes as JSON text (only the non-empty ones), built
    column by column: each distinct value is written once (values repeat: a village's
    name)."""
    n = batch.num_rows
    pieces = []
    for name in others:
        encoded = pc.dictionary_encode(_text_array(batch.column(name), n))
        key = json.dumps(name, ensure_ascii=False)
        written = [
            f", {key}: {json.dumps(v, ensure_ascii=False)}" for v in encoded.dictionary.to_pylist()
        ]
        pieces.append(pa.array(written, pa.string()).take(encoded.indices).fill_null(""))
    if not pieces:
        return pa.array(["{}"] * n, pa.string())
    items = pc.utf8_slice_codeunits(pc.binary_join_element_wise(*pieces, ""), 2)  # ", " off
    return pc.binary_join_element_wise("{", items, "}", "")


def _polygons_of(geom: Any) -> Any:
    """``ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3))``: the polygons of the
    repaired geometry, as one MultiPolygon (empty when none is left)."""
    fixed = shapely.make_valid(geom)
    parts = [p for p in shapely.get_parts(fixed) if shapely.get_type_id(p) in POLYGONAL]
    polygons = [q for p in parts for q in shapely.get_parts(p)]
    return shapely.multipolygons(polygons) if polygons else shapely.from_wkt("MULTIPOLYGON EMPTY")


def _repair(p: Prepared) -> None:
    """Invalid geometries made valid (``repaired_geometry`` warnings, the area changed)."""
    for i in np.flatnonzero(p.present & ~p.valid):
        p.wkb = None
        before = p.geoms[i]
        after = _polygons_of(before)
        was, now = ellipsoidal_area([before, after])
        p.geoms[i], p.areas[i], p.valid[i] = after, now, bool(shapely.is_valid(after))
        p.findings.append(
            {
                "feature": int(p.numbers[i]),
                "parcel_no": p.parcel_nos[i],
                "message": f"repaired: area {was:.1f} → {now:.1f} m²",
                "location": point_text(after),
                "code": "repaired_geometry",
                "level": "warning",
            }
        )


def prepare(
    batch: pa.RecordBatch,
    numbers: np.ndarray,
    epsg: int,
    fields: dict[str, str | None],
    villages: Villages,
    repair: bool = False,
) -> Prepared:
    """The batch's features (numbered ``numbers``) ready to check and to write."""
    roles = {v for v in fields.values() if v}
    n = batch.num_rows
    wkb = batch.column("geometry")
    geoms, unclosed = _decoded(wkb.to_numpy(zero_copy_only=False))
    z = int(np.count_nonzero(shapely.has_z(geoms)))
    lonlat = _reproject(shapely.force_2d(geoms) if z else geoms, epsg)
    others = [c for c in batch.schema.names if c != "geometry" and c not in roles]
    out = Prepared(
        numbers=numbers,
        codes=villages(batch),
        parcel_no_text=_text_array(_column(batch, fields, "parcel_no"), n),
        land_uses=_text_array(_column(batch, fields, "land_use"), n),
        declared=_numbers(_column(batch, fields, "area"), n),
        attrs=_attrs(batch, others),
        geoms=lonlat,
        valid=shapely.is_valid(lonlat),
        areas=ellipsoidal_area(lonlat),
        z=z,
        wkb=wkb if epsg == WGS84 and not z and not len(unclosed) else None,
    )
    for i in unclosed:  # (read with the ring closed, to say where)
        out.findings.append(
            {
                "feature": int(numbers[i]),
                "parcel_no": out.parcel_nos[i],
                "message": "a ring is not closed: its last point is not its first",
                "location": point_text(out.geoms[i]),
                "code": "unclosed_ring",
                "level": "error",
            }
        )
    if repair:
        _repair(out)
    return out


def _decoded(wkb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The geometries of ``wkb``, and which of them had a ring left open (GEOS refuses
    those: they are read closed and reported as ``unclosed_ring``)."""
    try:
        return shapely.from_wkb(wkb), np.array([], dtype=int)
    except shapely.errors.GEOSException:
        strict = shapely.from_wkb(wkb, on_invalid="ignore")
        given = np.array([w is not None for w in wkb], dtype=bool)
        broken = np.flatnonzero(given & shapely.is_missing(strict))
        strict[broken] = shapely.from_wkb(wkb[broken], on_invalid="fix")
        return strict, broken
