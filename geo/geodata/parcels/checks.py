"""Validate an upload while it streams: every finding has a stable code and a location.

Errors (block publish): ``empty_geometry``, ``wrong_geometry_type``, ``invalid_geometry``
(with GEOS's reason and location, what ``ST_IsValidDetail`` gives; repaired with consent,
then a warning ``repaired_geometry`` with the area changed), ``missing_parcel_no``,
``duplicate_parcel_no``, ``overlap`` (above ``OVERLAP_M2``), ``outside_zone`` (above
``OUTSIDE_M2``), ``too_many_vertices`` (above ``MAX_VERTICES``: no parcel is drawn so).
Warnings: ``z_dropped``, ``area_mismatch`` (declared area more than ``AREA_TOLERANCE`` off),
``zone_gaps`` (share of the zone no parcel covers), ``no_zone``.

Per-feature checks run on each prepared batch (:func:`feature_findings`). Duplicates,
overlaps and parcels outside the zone are questions about one village's features: a
:class:`Checker` gathers each village's features while its run in the file lasts and
checks the village on a worker thread once the run ends (shapely STRtree, prepared zone,
vectorised). A village whose features come back later in the file is checked again whole
from a second read of those villages (:meth:`Checker.regather`).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely

from geo.geodata.areas import ellipsoidal_area
from geo.geodata.parcels.prepare import POLYGONAL, Prepared, point_text
from geo.geodata.parcels.shared_edges import match_edges, outline

__all__ = [
    "AREA_TOLERANCE",
    "ERRORS",
    "MAX_VERTICES",
    "OUTSIDE_M2",
    "OVERLAP_M2",
    "Checker",
    "feature_findings",
]

AREA_TOLERANCE = 0.10
OUTLINE_FLAGGED = 0.5  # share of parcels with loose edges up to which an outline is tried
INTERIORS_MEET = "T********"  # DE-9IM: the interiors intersect (an overlap, not a touch)
OVERLAP_M2 = 1.0
OUTSIDE_M2 = 1.0
MAX_VERTICES = 20_000  # a cadastral parcel has tens of vertices, a densified one hundreds
LIMIT = 5000  # findings kept in a report (the counts are all)
REGATHER = 250_000  # features held at once when villages are read again
ERRORS = {
    "empty_geometry",
    "wrong_geometry_type",
    "invalid_geometry",
    "missing_parcel_no",
    "duplicate_parcel_no",
    "overlap",
    "outside_zone",
    "too_many_vertices",
    "unclosed_ring",
    "unknown_village",  # (a village's finding, made by placement.check_locations)
}
_TYPE_NAMES = {  # as PostGIS's GeometryType names them
    0: "POINT",
    1: "LINESTRING",
    2: "LINESTRING",
    3: "POLYGON",
    4: "MULTIPOINT",
    5: "MULTILINESTRING",
    6: "MULTIPOLYGON",
    7: "GEOMETRYCOLLECTION",
}
_REASON = re.compile(r"^(.*)\[(\S+) (\S+)\]$")


def _finding(
    code: str, feature: int | None, parcel_no: str | None, message: str, location: str | None
) -> dict[str, Any]:
    return {
        "feature": feature,
        "parcel_no": parcel_no,
        "message": message,
        "location": location,
        "code": code,
        "level": "error" if code in ERRORS else "warning",
    }


def _pg_number(value: float) -> str:
    """A float as PostgreSQL prints a double precision (``250``, not ``250.0``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _invalid(geom: Any) -> tuple[str, str | None]:
    """GEOS's reason an invalid geometry is invalid, and where."""
    reason = shapely.is_valid_reason(geom) or "invalid"
    m = _REASON.match(reason)
    if m is None:
        return reason, None
    return m.group(1), f"POINT({float(m.group(2)):.15g} {float(m.group(3)):.15g})"


def feature_findings(p: Prepared) -> list[dict[str, Any]]:
    """The findings about single features of a batch (its repairs are already in
    ``p.findings``)."""
    out: list[dict[str, Any]] = []
    present = p.present
    empty = ~present | shapely.is_empty(p.geoms)
    types, polygonal = p.types, p.polygonal
    nos = p.parcel_nos
    for i in np.flatnonzero(empty):
        out.append(_finding("empty_geometry", int(p.numbers[i]), nos[i], "no geometry", None))
    for i in np.flatnonzero(~empty & ~polygonal):
        message = f"a {_TYPE_NAMES.get(int(types[i]), 'GEOMETRY')}, not a polygon"
        out.append(
            _finding(
                "wrong_geometry_type", int(p.numbers[i]), nos[i], message, point_text(p.geoms[i])
            )
        )
    vertices = shapely.get_num_coordinates(p.geoms)
    for i in np.flatnonzero(present & (vertices > MAX_VERTICES)):
        message = f"{int(vertices[i])} vertices; a parcel has at most {MAX_VERTICES}"
        out.append(
            _finding(
                "too_many_vertices", int(p.numbers[i]), nos[i], message, point_text(p.geoms[i])
            )
        )
    for i in np.flatnonzero(present & polygonal & ~p.valid):
        reason, where = _invalid(p.geoms[i])
        out.append(_finding("invalid_geometry", int(p.numbers[i]), nos[i], reason, where))
    for k, no in enumerate(nos):
        if no is None:
            where = None if empty[k] else point_text(p.geoms[k])
            out.append(
                _finding("missing_parcel_no", int(p.numbers[k]), None, "no parcel number", where)
            )
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.abs(p.declared - p.areas) / p.areas
    far = p.valid & (p.areas > 0) & ~np.isnan(p.declared) & (off > AREA_TOLERANCE)
    for i in np.flatnonzero(far):
        message = f"declared {_pg_number(p.declared[i])} m², drawn {p.areas[i]:.1f} m²"
        out.append(
            _finding("area_mismatch", int(p.numbers[i]), nos[i], message, point_text(p.geoms[i]))
        )
    return out


@dataclass
class _Village:
    """A village's features gathered so far: numbers and parcel numbers of all, the
    geometries of the valid polygons (``usable``)."""

    numbers: list[np.ndarray] = field(default_factory=list)
    parcel_nos: list[list[str | None]] = field(default_factory=list)
    usable: list[np.ndarray] = field(default_factory=list)
    geoms: list[np.ndarray] = field(default_factory=list)

    def add(self, p: Prepared, rows: slice | np.ndarray, usable: np.ndarray) -> None:
        self.numbers.append(p.numbers[rows])
        nos = p.parcel_nos[rows] if isinstance(rows, slice) else [p.parcel_nos[i] for i in rows]
        self.parcel_nos.append(nos)
        self.usable.append(usable[rows])
        self.geoms.append(p.geoms[rows][usable[rows]])


def _duplicates(
    numbers: np.ndarray, nos: list[str | None], rows: np.ndarray, geoms: np.ndarray
) -> Iterator[dict]:
    """Features whose parcel number an earlier feature has (``geoms``: the geometries of
    the features ``rows``, for the findings' locations)."""
    first: dict[str, int] = {}
    where: dict[int, Any] = {}
    for i, no in enumerate(nos):
        if no is None or (j := first.setdefault(no, i)) == i:
            continue
        if not where:
            where.update(zip(rows.tolist(), geoms, strict=True))
        yield _finding(
            "duplicate_parcel_no",
            int(numbers[i]),
            no,
            f"parcel number also on feature {numbers[j]}",
            point_text(where.get(i)),
        )


def _overlaps(
    numbers: np.ndarray,
    nos: list[str | None],
    rows: np.ndarray,
    geoms: np.ndarray,
    flagged: np.ndarray,
    hull: list[Any] | None,
) -> Iterator[dict]:
    """Pairs of ``geoms`` (the features ``rows``) sharing more than ``OVERLAP_M2``.

    Real cadastral maps are tilings: neighbours share their edges, so nearly every pair of
    boxes that meet also *intersects*. A pair overlaps when its interiors meet (DE-9IM
    ``T********``). Edges matched first (:mod:`geo.geodata.parcels.shared_edges`) spare
    most relates: when the loose edges make a simple outline (``hull``) no two polygons
    overlap at all; otherwise only pairs with a flagged member are asked, since any overlap
    involves one, and every pair when one of them does overlap — the findings are always
    those of a check of all pairs. Areas are cut only for pairs whose interiors meet."""
    if hull is not None:
        return
    a, b = _interiors_meeting(geoms, flagged)
    if not len(a):
        return
    shared = shapely.intersection(geoms[a], geoms[b])
    areas = ellipsoidal_area(shared)
    for i in np.flatnonzero(areas > OVERLAP_M2):
        first, later = rows[a[i]], rows[b[i]]
        yield _finding(
            "overlap",
            int(numbers[later]),
            nos[later],
            f"overlaps feature {numbers[first]} (parcel {nos[first] or '?'}) by {areas[i]:.1f} m²",
            point_text(shared[i]),
        )


def _interiors_meeting(geoms: np.ndarray, flagged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pairs (earlier, later) of ``geoms`` whose interiors meet, asking only pairs with
    a ``flagged`` member first (see :func:`_overlaps`), and every pair when one of those
    does."""
    tree = shapely.STRtree(geoms)
    if not flagged.all():
        asked = np.flatnonzero(flagged)
        a, b = tree.query(geoms[asked])
        a = asked[a]
        keep = (a != b) & (~flagged[b] | (a < b))  # each pair once
        a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
        if not shapely.relate_pattern(geoms[a], geoms[b], INTERIORS_MEET).any():
            return a[:0], b[:0]
    a, b = tree.query(geoms)  # every pair, as a check of all pairs finds them
    keep = a < b  # features come in file order, so a is the earlier one
    a, b = a[keep], b[keep]
    meet = shapely.relate_pattern(geoms[a], geoms[b], INTERIORS_MEET)
    return a[meet], b[meet]


def _outside(
    numbers: np.ndarray,
    nos: list[str | None],
    rows: np.ndarray,
    geoms: np.ndarray,
    zone: Any,
    hull: list[Any] | None,
) -> Iterator[dict]:
    """Those of ``geoms`` (the features ``rows``) with more than ``OUTSIDE_M2`` outside
    ``zone``. When the polygons' union is ``hull`` (a simple outline), a zone covering it
    covers each of them: one test instead of one per parcel."""
    if hull is not None and (_same_area(zone, hull) or shapely.covers(zone, hull).all()):
        return
    out = np.flatnonzero(~shapely.covers(zone, geoms))
    if not len(out):
        return
    rest = shapely.difference(geoms[out], zone)
    areas = ellipsoidal_area(rest)
    for i in np.flatnonzero(areas > OUTSIDE_M2):
        row = rows[out[i]]
        yield _finding(
            "outside_zone",
            int(numbers[row]),
            nos[row],
            f"{areas[i]:.1f} m² outside the guide-plan zone",
            point_text(rest[i]),
        )


def _same_area(zone: Any, hull: list[Any]) -> bool:
    """Whether ``zone`` is exactly the polygons ``hull`` (vertex for vertex, once both are
    normalized): a zone drawn as its parcels' union. Cheap where covers() is not: every
    edge of one lies on the other."""
    union = hull[0] if len(hull) == 1 else shapely.MultiPolygon(hull)
    return bool(shapely.equals_exact(shapely.normalize(zone), shapely.normalize(union), 0.0))


def _check_village(v: _Village, zone: Any) -> list[dict[str, Any]]:
    """One village's findings: duplicate numbers among all its features, overlaps and
    parts outside its zone among its valid polygons."""
    numbers = np.concatenate(v.numbers)
    nos = list(itertools.chain.from_iterable(v.parcel_nos))
    rows = np.flatnonzero(np.concatenate(v.usable))  # the valid polygons, whose geoms
    geoms = np.concatenate(v.geoms) if v.geoms else np.array([], dtype=object)
    found = list(_duplicates(numbers, nos, rows, geoms))
    if len(geoms):
        edges = match_edges(geoms)
        # an outline pays on a tiling; parcels kept apart (each its own ring) are cheaper
        # to relate pair by pair
        hull = outline(edges) if edges.flagged.mean() < OUTLINE_FLAGGED else None
        found.extend(_overlaps(numbers, nos, rows, geoms, edges.flagged, hull))
        if zone is not None:
            found.extend(_outside(numbers, nos, rows, geoms, zone, hull))
    return found


class Checker:
    """The findings of one upload, fed its prepared batches in file order."""

    def __init__(self, pool: Executor) -> None:
        self._pool = pool
        self.findings: list[dict[str, Any]] = []
        self.features = 0
        self.z_dropped = 0
        self._zones: dict[str, list[Any]] = {}
        self._zone_m2: defaultdict[str, float] = defaultdict(float)
        self._covered: defaultdict[str, float] = defaultdict(float)
        self._open: dict[str, _Village] = {}
        self._closed: set[str] = set()
        self._counts: Counter[str] = Counter()
        self._reopened: set[str] = set()
        self._checks: dict[str, Future[list[dict[str, Any]]]] = {}
        self._zone_union: dict[str, Any] = {}

    def add_zone(self, p: Prepared) -> None:
        """A batch of the guide-plan zone layer (read before the parcels)."""
        self.findings.extend(f for f in p.findings if f["code"] == "repaired_geometry")
        codes = p.codes.each
        for i in np.flatnonzero(p.valid):
            self._zone_m2[codes[i]] += float(p.areas[i])
            if shapely.get_type_id(p.geoms[i]) in POLYGONAL:
                self._zones.setdefault(codes[i], []).append(p.geoms[i])

    def _zone(self, village: str) -> Any:
        if village not in self._zone_union:
            parts = self._zones.get(village)
            zone = shapely.union_all(parts) if parts else None
            if zone is not None and not shapely.is_empty(zone):
                shapely.prepare(zone)
            else:
                zone = None
            self._zone_union[village] = zone
        return self._zone_union[village]

    def add(self, p: Prepared) -> None:
        """A batch of parcels, in file order."""
        self.features += p.count
        self.z_dropped += p.z
        self.findings.extend(p.findings)
        usable = p.valid & p.polygonal
        valid_areas = np.where(p.valid, np.nan_to_num(p.areas), 0.0)
        here = set()
        for code, start, end in p.codes.runs():
            here.add(code)
            self._counts[code] += end - start
            self._covered[code] += float(valid_areas[start:end].sum())
            if code in self._closed:  # back again later in the file: checked whole later
                self._closed.discard(code)
                self._reopened.add(code)
                self._checks.pop(code, None)
            if code in self._reopened:
                continue
            self._open.setdefault(code, _Village()).add(p, slice(start, end), usable)
        for code in [c for c in self._open if c not in here]:
            self._close(code)

    def _close(self, code: str) -> None:
        village = self._open.pop(code)
        self._closed.add(code)
        self._checks[code] = self._pool.submit(_check_village, village, self._zone(code))

    def regather(self) -> list[set[str]]:
        """After the last batch: the villages to read again (those whose features came
        back later in the file), in groups of at most ``REGATHER`` features."""
        for code in list(self._open):
            self._close(code)
        groups: list[set[str]] = []
        size = 0
        for code in sorted(self._reopened):
            if not groups or size + self._counts[code] > REGATHER:
                groups.append(set())
                size = 0
            groups[-1].add(code)
            size += self._counts[code]
        return groups

    def check_again(self, group: set[str], batches: Iterable[Prepared]) -> None:
        """Check the villages of ``group`` whole, from their features read again."""
        gathered: dict[str, _Village] = {}
        for p in batches:
            usable = p.valid & p.polygonal
            for code in group & set(p.codes.names):
                rows = p.codes.rows_of(code)
                gathered.setdefault(code, _Village()).add(p, rows, usable)
        for code, village in gathered.items():
            self._checks[code] = self._pool.submit(_check_village, village, self._zone(code))

    def report(self) -> dict[str, Any]:
        """The report: validity, counts by code, and the first ``LIMIT`` findings."""
        findings = list(self.findings)
        for future in self._checks.values():
            findings.extend(future.result())
        extras: dict[str, Any] = {}
        if not self._zone_m2:
            findings.append(
                _finding(
                    "no_zone",
                    None,
                    None,
                    "no guide-plan zone layer: gaps and parcels outside the zone were not checked",
                    None,
                )
            )
        else:
            # Valid parcels do not overlap (or the upload is refused), so the zone's covered
            # share is the sum of their areas: no union of thousands of polygons needed.
            zone_m2 = sum(self._zone_m2.values())
            covered = sum(self._covered[v] for v in self._zone_m2)
            share = max(0.0, (zone_m2 - covered) / zone_m2) if zone_m2 else 0
            extras = {"zone_m2": round(zone_m2, 1), "uncovered_share": round(share, 4)}
            findings.append(
                _finding(
                    "zone_gaps",
                    None,
                    None,
                    f"{share:.1%} of the zone is covered by no parcel "
                    "(streets and open land included)",
                    None,
                )
            )
        if self.z_dropped:
            findings.append(
                _finding(
                    "z_dropped",
                    None,
                    None,
                    f"{self.z_dropped} features had Z or M values; stored in 2D",
                    None,
                )
            )
        findings.sort(key=lambda f: (f["level"] != "error", f["feature"] or 0, f["code"]))
        errors = sum(1 for f in findings if f["level"] == "error")
        return {
            "valid": errors == 0,
            "summary": {
                "features": self.features,
                "errors": errors,
                "warnings": len(findings) - errors,
                "by_code": dict(Counter(f["code"] for f in findings)),
                **extras,
            },
            "findings": findings[:LIMIT],
        }
