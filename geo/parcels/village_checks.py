"""The geometric checks of an upload, village by village, in the ingest process.

Overlapping parcels and parcels outside the guide-plan zone are questions about a
village's own few hundred features. Asked in SQL over a whole national file they cost an
index probe and a GEOS call per feature pair (~50 s for 1.2 M parcels); here the staged
features come back once, ordered by village, and each village's are checked with a
shapely STRtree and a prepared zone, vectorised (a few seconds for the same file).
Findings are worded and located as the SQL checks word theirs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from sqlalchemy import Connection, text

from geo.areas import ellipsoidal_area

__all__ = ["OUTSIDE_M2", "OVERLAP_M2", "village_findings"]

OVERLAP_M2 = 1.0
OUTSIDE_M2 = 1.0

_VILLAGES = """
    SELECT village, layer, array_agg(feature ORDER BY feature) AS features,
           array_agg(parcel_no ORDER BY feature) AS parcel_nos,
           array_agg(ST_AsBinary(geom) ORDER BY feature) AS wkb
    FROM parcel_stage
    WHERE upload_id = :u AND geom IS NOT NULL AND valid
      AND GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON')
    GROUP BY village, layer ORDER BY village, layer"""


@dataclass(frozen=True)
class _Features:
    """A village's valid parcels: their feature numbers, parcel numbers and geometries."""

    numbers: list[int]
    parcel_nos: list[str | None]
    geoms: np.ndarray


def _point(geom: Any) -> str:
    p = shapely.point_on_surface(geom)
    return f"POINT({shapely.get_x(p):.15g} {shapely.get_y(p):.15g})"


def _finding(code: str, feature: int, parcel_no: str | None, message: str, where: Any) -> dict:
    return {
        "feature": feature,
        "parcel_no": parcel_no,
        "message": message,
        "location": _point(where),
        "code": code,
        "level": "error",
    }


def _overlaps(f: _Features) -> Iterator[dict[str, Any]]:
    a, b = shapely.STRtree(f.geoms).query(f.geoms, predicate="intersects")
    keep = a < b  # each pair once; features come in file order, so a is the earlier one
    a, b = a[keep], b[keep]
    if not len(a):
        return
    shared = shapely.intersection(f.geoms[a], f.geoms[b])
    areas = ellipsoidal_area(shared)
    for i in np.flatnonzero(areas > OVERLAP_M2):
        first, later = a[i], b[i]
        yield _finding(
            "overlap",
            f.numbers[later],
            f.parcel_nos[later],
            f"overlaps feature {f.numbers[first]} (parcel {f.parcel_nos[first] or '?'}) by "
            f"{areas[i]:.1f} m²",
            shared[i],
        )


def _outside(f: _Features, zone_wkb: list[bytes]) -> Iterator[dict[str, Any]]:
    zone_geoms = shapely.from_wkb(zone_wkb)
    zone = shapely.union_all(zone_geoms[shapely.is_valid(zone_geoms)])
    if zone is None or shapely.is_empty(zone):
        return
    shapely.prepare(zone)
    out = np.flatnonzero(~shapely.covers(zone, f.geoms))
    if not len(out):
        return
    rest = shapely.difference(f.geoms[out], zone)
    areas = ellipsoidal_area(rest)
    for i in np.flatnonzero(areas > OUTSIDE_M2):
        yield _finding(
            "outside_zone",
            f.numbers[out[i]],
            f.parcel_nos[out[i]],
            f"{areas[i]:.1f} m² outside the guide-plan zone",
            rest[i],
        )


def _village(
    numbers: list[int], parcel_nos: list[str | None], wkb: list[bytes], zone: list[bytes] | None
) -> list[dict[str, Any]]:
    """One village's findings, from its parcels' columns and its zone's geometries."""
    features = _Features(numbers, parcel_nos, shapely.from_wkb(wkb))  # valid ones only
    found = list(_overlaps(features))
    if zone is not None:
        found.extend(_outside(features, zone))
    return found


def village_findings(conn: Connection, upload_id: int) -> list[dict[str, Any]]:
    """``overlap`` (valid parcels of one village sharing more than ``OVERLAP_M2``) and
    ``outside_zone`` (a valid parcel with more than ``OUTSIDE_M2`` outside its village's
    zone) findings of a staged upload.

    One row per village and layer comes back; villages are checked on two threads while
    the next rows arrive (shapely releases the GIL in its vectorised calls).
    """
    rows = conn.execution_options(yield_per=50).execute(text(_VILLAGES), {"u": upload_id})
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = []
        for _village_code, group in itertools.groupby(rows, key=lambda r: r.village):
            layers = {r.layer: r for r in group}
            parcels, zone = layers.get("parcels"), layers.get("zone")
            if parcels is not None:
                futures.append(
                    pool.submit(
                        _village,
                        parcels.features,
                        parcels.parcel_nos,
                        parcels.wkb,
                        zone.wkb if zone is not None else None,
                    )
                )
        return [f for future in futures for f in future.result()]
