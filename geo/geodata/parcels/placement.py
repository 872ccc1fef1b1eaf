"""Where an upload belongs: its CRS and its village(s), and whether the parcels lie there.

The village comes from ``--village`` (one for the whole file), from a village-code field
(one per feature; a file may hold many villages' maps), or from where the parcels fall.
The CRS is chosen before staging from the file's header and its first batch (see
:mod:`geo.geodata.parcels.crs_choice`); after staging, each village's parcels must lie within
``VILLAGE_RADIUS_KM`` of its known location — a mismatch is an error, not a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from sqlalchemy import Connection, text

from geo.errors import InvalidParameter, NotFound
from geo.geodata.crs import transformer
from geo.geodata.parcels.crs_choice import CrsChoice, _epsg_of, _km, choose_crs
from geo.geodata.parcels.errors import UploadRejected
from geo.geodata.parcels.prepare import Codes
from geo.geodata.parcels.readers import LayerSource
from geo.geodata.parcels.stage import StageStats
from geo.geodata.persian import normalize_code
from geo.geodata.registry.partners import partners as partner_source
from geo.geodata.registry.references import UnitRef, parse_unit_ref
from geo.models.crosswalk import LINK_AGENCIES

__all__ = ["VILLAGE_RADIUS_KM", "Placement", "check_locations", "place"]

VILLAGE_RADIUS_KM = 5.0
Point = tuple[float, float]


@dataclass
class Placement:
    """The CRS, the agency, and either one village for all features or the field naming
    each feature's village."""

    choice: CrsChoice
    agency: str
    single: str | None
    field: str | None = None

    def villages_of(self, batch: pa.RecordBatch) -> Codes:
        """Each feature's village code in ``batch`` ('' where the field is empty)."""
        if self.single is not None or self.field is None:
            return Codes.single(self.single or "", batch.num_rows)
        return _codes(batch, self.field)


def _codes(batch: pa.RecordBatch, name: str) -> Codes:
    """The field's values as village codes (normalized once per distinct value)."""
    encoded = pc.dictionary_encode(batch.column(name))
    raw = encoded.dictionary.to_pylist()
    folded = [normalize_code(str(v)) if v is not None and str(v).strip() else "" for v in raw]
    if encoded.indices.null_count:
        folded.append("")  # (where the field is null)
    names, which = np.unique(np.asarray(folded, dtype=object), return_inverse=True)
    index = encoded.indices.fill_null(len(raw)).to_numpy(zero_copy_only=False)
    return Codes(which[index].astype(np.intp), names)


def _parse_village(value: str) -> UnitRef:
    try:
        return parse_unit_ref(value, "village")
    except InvalidParameter as exc:
        raise UploadRejected(exc.message, code="invalid_village", field="village") from None


def _partner_point(conn: Connection, agency: str, code: str) -> Point | None:
    """A crosswalk partner's known location, for a village that has none of its own."""
    if agency not in LINK_AGENCIES:
        return None
    linked = partner_source().of_units(conn, agency, [code]).get(code, [])
    for p in linked:
        point = conn.execute(
            text(
                "SELECT ST_X(d.point), ST_Y(d.point) FROM division d JOIN edition e ON"
                " e.id = d.edition_id WHERE e.agency = :a AND d.code = :c AND d.point IS"
                " NOT NULL ORDER BY e.id DESC LIMIT 1"
            ),
            {"a": p["agency"], "c": p["code"]},
        ).first()
        if point:
            return point[0], point[1]
    return None


def village_points(
    conn: Connection, agency: str, codes: list[str], *, strict: bool = True
) -> dict[str, Point | None]:
    """Each village's known location (its own point, else a crosswalk partner's, else
    None); ``unknown_village`` when the agency's list lacks any of them (``strict``), or
    the codes it lacks left out (not ``strict``)."""
    from geo.geodata.registry.editions import edition_in_force

    try:
        edition = edition_in_force(conn, agency)
    except NotFound as exc:  # no such agency, or no list of it imported yet
        raise UploadRejected(
            f"{agency} has no division list to find villages in ({exc.message}): import one"
            f" (tagsim divisions import --agency {agency} --edition LABEL FILE), or name the"
            " village by another agency's code (--village moi:CODE)",
            code="unknown_village",
            field="village",
        ) from None
    rows = conn.execute(
        text(
            "SELECT code, ST_X(point), ST_Y(point) FROM division WHERE edition_id = :e"
            " AND code = ANY(:c)"
        ),
        {"e": edition["id"], "c": codes},
    ).all()
    found = {r[0]: (r[1], r[2]) if r[1] is not None else None for r in rows}
    missing = [c for c in codes if c not in found]
    if missing and strict:
        raise UploadRejected(
            f"{agency} has no village {', '.join(missing[:10])}"
            + (f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""),
            code="unknown_village",
            field="village",
        )
    return {c: p if p is not None else _partner_point(conn, agency, c) for c, p in found.items()}


def _village_from_location(conn: Connection, lon: float, lat: float) -> tuple[str, str] | None:
    row = conn.execute(
        text("""
        SELECT e.agency, d.code, ST_Distance(d.point::geography,
               ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography) AS m
        FROM division d JOIN edition e ON e.id = d.edition_id
        WHERE d.level IN ('village', 'city') AND d.point IS NOT NULL
          AND d.point && ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 0.05)
        ORDER BY d.point <-> ST_SetSRID(ST_MakePoint(:x, :y), 4326) LIMIT 2"""),
        {"x": lon, "y": lat},
    ).all()
    if row and row[0].m < 3000 and (len(row) == 1 or row[1].m > 2 * row[0].m):
        return row[0].agency, row[0].code
    return None


def _center(bounds: tuple[float, float, float, float], epsg: int) -> Point:
    minx, miny, maxx, maxy = bounds
    return transformer(epsg, 4326).transform((minx + maxx) / 2, (miny + maxy) / 2)


def place(
    conn: Connection,
    parcels: LayerSource,
    first: pa.RecordBatch,
    fields: dict[str, str | None],
    village: str | None,
    crs: int | None,
) -> Placement:
    """Decide the CRS and the village(s) from the header and the first batch."""
    field = fields.get("village")
    if village:
        agency, code = _parse_village(village)
        point = village_points(conn, agency, [code])[code]
        return Placement(choose_crs(parcels.crs, parcels.bounds, crs, point), agency, code)
    codes = _codes(first, field).each if field else []
    named = [c for c in dict.fromkeys(codes) if c]
    if named:
        # a code the list lacks is that village's finding (check_locations), not the file's
        points = village_points(conn, "hf", named, strict=False)
        known = next((c for c in named if points.get(c)), None)
        bounds = parcels.bounds
        if known is not None and not (crs or _epsg_of(parcels.crs)):
            # Infer the CRS from one village's features: the whole file spans many zones.
            mine = [i for i, c in enumerate(codes) if c == known]
            geoms = shapely.from_wkb(first.column("geometry").take(mine).to_pylist())
            x0, y0, x1, y1 = (float(v) for v in shapely.total_bounds(geoms))
            bounds = (x0, y0, x1, y1)
        choice = choose_crs(parcels.crs, bounds, crs, points[known] if known else None)
        return Placement(choice, "hf", None, field)
    choice = choose_crs(parcels.crs, parcels.bounds, crs, None)
    found = _village_from_location(conn, *_center(parcels.bounds, choice.epsg))
    if found is None:
        raise UploadRejected(
            "no village given, none in the attributes, and none known "
            "within 3 km of the parcels: name it (--village)",
            code="unknown_village",
            field="village",
        )
    agency, code = found
    village_points(conn, agency, [code])
    return Placement(choice, agency, code)


def check_locations(
    conn: Connection, placement: Placement, stats: StageStats
) -> tuple[list[str], list[dict[str, Any]]]:
    """The staged villages (codes) and the findings about them: in a file of many villages
    (a village field), a code the agency's list lacks is an ``unknown_village`` finding of
    that village's features. Parcels far from their village's known location refuse the
    file (``village_mismatch``: a wrong CRS or a wrong village)."""
    codes = sorted(stats.boxes)
    if "" in stats.boxes and len(codes) > 1:
        raise UploadRejected(
            f"some features name no village in {placement.field}",
            code="unknown_village",
            field="village",
        )
    many = placement.single is None and placement.field is not None
    points = village_points(conn, placement.agency, codes, strict=not many)
    findings = [_unknown(placement, code, stats) for code in codes if code not in points]
    far = []
    for code in codes:
        point, center = points.get(code), stats.center(code)
        if point is None or center is None:
            continue
        km = _km(*center, *point)
        if km > VILLAGE_RADIUS_KM:
            far.append(f"{placement.agency}:{code} ({km:.1f} km)")
    if far:
        raise UploadRejected(
            "the parcels lie far from village "
            + ", ".join(far[:10])
            + ": wrong village or wrong CRS",
            code="village_mismatch",
            field="village",
        )
    return codes, findings


def _unknown(placement: Placement, code: str, stats: StageStats) -> dict[str, Any]:
    """The finding of a village the agency's list lacks, located at its features' centre."""
    center = stats.center(code)
    return {
        "feature": None,
        "parcel_no": None,
        "message": f"{placement.agency} has no village {code} (field {placement.field}): "
        "its features cannot be placed; correct the code, or import the list that has it",
        "location": f"POINT({center[0]:.15g} {center[1]:.15g})" if center else None,
        "code": "unknown_village",
        "level": "error",
        "village": code,
    }
