"""Coverage (سرویس پوششی): what a registered plot overlaps, and how much of a village's plan
zone its parcels cover.

Areas are geodesic: PostGIS ``ST_Area(geography)`` on the WGS 84 ellipsoid, the same
measure as pyproj's ``Geod.geometry_area_perimeter`` (tests hold them to 0.1%). Overlaps
are cut in lon/lat (``ST_Intersection``), exact for plots of a few km².
"""

from __future__ import annotations

import json
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from geo.errors import NotFound
from geo.features.temporal import TimeFilter
from geo.persian import normalize_code
from geo.registry.editions import IN_FORCE_SQL
from geo.registry.equivalents import equivalent_codes, latest_run

__all__ = ["AREA_METHOD", "MAX_PARCELS", "plan_coverage", "plate_geometry", "plot_coverage"]

AREA_METHOD = "geodesic, on the WGS 84 ellipsoid (PostGIS geography)"
MAX_PARCELS = 5000
_PLOT = "ST_GeomFromWKB(:plot, 4326)"


def _valid(alias: str, when: TimeFilter | None) -> tuple[str, dict[str, Any]]:
    if when is None:
        return f"{alias}.valid_to IS NULL", {}
    return when.sql(alias)


def _share(part: float | None, whole: float | None) -> float | None:
    if not whole or part is None:
        return None
    return round(min(1.0, part / whole), 6)


OVERLAY_SQL = """
WITH plot AS (SELECT ST_GeomFromWKB(:plot, 4326) AS g),
editions AS (
    SELECT * FROM ({IN_FORCE_SQL}) e WHERE agency IN ('moi', 'sci', 'hf')),
parcels AS (
    SELECT t.id, t.village_agency, t.village_code, t.parcel_no, t.land_use, t.upload_id,
           t.valid_from, t.geom,
           ST_Area(ST_CollectionExtract(ST_Intersection(t.geom, plot.g), 3)::geography)
             AS overlap_m2,
           ST_Area(t.geom::geography) AS parcel_m2
    FROM parcel t, plot
    WHERE t.geom && plot.g AND ST_Intersects(t.geom, plot.g) AND {parcel_valid}),
plans AS (
    SELECT t.id, t.village_agency, t.village_code, t.plan_year, t.valid_from, t.zone,
           ST_Area(ST_CollectionExtract(ST_Intersection(t.zone, plot.g), 3)::geography)
             AS overlap_m2,
           ST_Area(t.zone::geography) AS zone_m2
    FROM guide_plan t, plot
    WHERE t.zone && plot.g AND ST_Intersects(t.zone, plot.g) AND {plan_valid}),
divisions AS (
    SELECT e.agency, e.label AS edition, d.level, d.code, d.name,
           ST_Area(ST_CollectionExtract(ST_Intersection(d.polygon, plot.g), 3)::geography)
             AS overlap_m2
    FROM division d JOIN edition e ON e.id = d.edition_id, plot
    WHERE d.edition_id IN (SELECT id FROM editions) AND d.polygon && plot.g
      AND ST_Intersects(d.polygon, plot.g)),
villages AS (
    SELECT village_agency AS agency, village_code AS code FROM parcels
    WHERE overlap_m2 > 0.0005
    UNION
    SELECT village_agency, village_code FROM plans WHERE overlap_m2 > 0.0005)
SELECT
  (SELECT ST_Area(g::geography) FROM plot) AS plot_m2,
  (SELECT coalesce(json_agg(json_build_object('id', id, 'village_agency', village_agency,
      'village_code', village_code, 'parcel_no', parcel_no, 'land_use', land_use,
      'upload_id', upload_id, 'valid_from', valid_from, 'overlap_m2', overlap_m2,
      'parcel_m2', parcel_m2) ORDER BY overlap_m2 DESC, id), '[]')
   FROM parcels WHERE overlap_m2 > 0.0005) AS parcels,
  (SELECT coalesce(ST_Area(ST_CollectionExtract(ST_Intersection(ST_Union(p.geom), plot.g), 3)
      ::geography), 0) FROM parcels p, plot WHERE p.overlap_m2 > 0.0005 GROUP BY plot.g)
    AS parcels_union_m2,
  (SELECT coalesce(json_agg(json_build_object('id', id, 'village_agency', village_agency,
      'village_code', village_code, 'plan_year', plan_year, 'valid_from', valid_from,
      'overlap_m2', overlap_m2, 'zone_m2', zone_m2) ORDER BY id), '[]')
   FROM plans WHERE overlap_m2 > 0.0005) AS plans,
  (SELECT coalesce(ST_Area(ST_CollectionExtract(ST_Intersection(ST_Union(p.zone), plot.g), 3)
      ::geography), 0) FROM plans p, plot WHERE p.overlap_m2 > 0.0005 GROUP BY plot.g)
    AS plans_union_m2,
  (SELECT coalesce(json_agg(json_build_object('agency', agency, 'edition', edition,
      'level', level, 'code', code, 'name', name, 'overlap_m2', overlap_m2)
      ORDER BY agency, length(code), code), '[]') FROM divisions) AS divisions,
  (SELECT coalesce(json_agg(json_build_object('id', id, 'agency', agency, 'label', label,
      'published_on', published_on) ORDER BY agency), '[]') FROM editions) AS editions,
  (SELECT coalesce(json_agg(json_build_object('agency', v.agency, 'code', v.code,
      'name', (SELECT d.name FROM division d JOIN editions e ON e.id = d.edition_id
               WHERE e.agency = v.agency AND d.code = v.code LIMIT 1))
      ORDER BY v.agency, v.code), '[]') FROM villages v) AS villages
""".replace("{IN_FORCE_SQL}", IN_FORCE_SQL)


def _with_codes(conn: Connection, villages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each village with its codes in every agency (through the newest crosswalk run)."""
    run = latest_run(conn) if villages else None
    out = []
    for v in villages:
        codes: dict[str, list[str]] = {}
        for other, other_code in sorted(equivalent_codes(conn, v["agency"], v["code"], run)):
            codes.setdefault(other, []).append(other_code)
        out.append({**v, "codes": codes})
    return out


def _village_of(row: dict[str, Any]) -> dict[str, str]:
    return {"agency": row["village_agency"], "code": row["village_code"]}


def plot_coverage(
    conn: Connection, plot: BaseGeometry, when: TimeFilter | None = None
) -> dict[str, Any]:
    """Every parcel, guide-plan zone and division the plot intersects, with overlaps: the
    overlay is one statement, so the answer is consistent within itself."""
    wkb = shapely.to_wkb(plot, output_dimension=2)
    as_of = when.start if when is not None and when.instant else None
    parcel_valid, params = _valid("t", when)
    plan_valid, _ = _valid("t", when)
    # No province lookup first (as items and tiles do): a plot is a few hectares, each
    # partition's GiST index rules it out in microseconds, and the statement is prepared
    # once per connection, so the lookup's round trip would cost more than it saves.
    row = (
        conn.execute(
            text(OVERLAY_SQL.format(parcel_valid=parcel_valid, plan_valid=plan_valid)),
            {"plot": wkb, "as_of": as_of.date() if as_of else None, **params},
        )
        .mappings()
        .one()
    )
    plot_m2 = float(row["plot_m2"])
    parcels, plans = row["parcels"], row["plans"]
    covered_parcels = float(row["parcels_union_m2"] or 0)
    covered_plans = float(row["plans_union_m2"] or 0)
    return {
        "plot": {"area_m2": round(plot_m2, 3), "geometry": json.loads(shapely.to_geojson(plot))},
        "area_method": AREA_METHOD,
        "as_of": as_of.isoformat() if as_of else None,
        "editions": [
            {"agency": e["agency"], "label": e["label"], "published_on": e["published_on"]}
            for e in row["editions"]
        ],
        "totals": {
            "parcel_count": len(parcels),
            "parcels_m2": round(covered_parcels, 3),
            "share_by_parcels": _share(covered_parcels, plot_m2),
            "guide_plans_m2": round(covered_plans, 3),
            "share_by_guide_plans": _share(covered_plans, plot_m2),
        },
        "parcels": [
            {
                "id": p["id"],
                "village": _village_of(p),
                "parcel_no": p["parcel_no"],
                "land_use": p["land_use"],
                "overlap_m2": round(p["overlap_m2"], 3),
                "share_of_plot": _share(p["overlap_m2"], plot_m2),
                "share_of_parcel": _share(p["overlap_m2"], p["parcel_m2"]),
                "parcel_area_m2": round(p["parcel_m2"], 3),
                "upload_id": p["upload_id"],
                "version_from": p["valid_from"],
            }
            for p in parcels[:MAX_PARCELS]
        ],
        "truncated": len(parcels) > MAX_PARCELS,
        "guide_plans": [
            {
                "id": p["id"],
                "village": _village_of(p),
                "plan_year": p["plan_year"],
                "overlap_m2": round(p["overlap_m2"], 3),
                "share_of_plot": _share(p["overlap_m2"], plot_m2),
                "share_of_zone": _share(p["overlap_m2"], p["zone_m2"]),
                "version_from": p["valid_from"],
            }
            for p in plans
        ],
        "divisions": [
            {
                **d,
                "overlap_m2": round(d["overlap_m2"], 3),
                "share_of_plot": _share(d["overlap_m2"], plot_m2),
            }
            for d in row["divisions"]
        ],
        "villages": _with_codes(conn, row["villages"]),
    }


def plate_geometry(
    conn: Connection, unit: str, main: str, sub: str, when: TimeFilter | None = None
) -> dict[str, Any]:
    """The plate's row (id, numbers, WKB geometry, validity) as it was ``when``."""
    valid, params = _valid("t", when)
    numbers = {"u": normalize_code(unit), "m": normalize_code(main), "s": normalize_code(sub)}
    row = (
        conn.execute(
            text(
                "SELECT t.id, t.registration_unit, t.main_plate, t.sub_plate, t.valid_from,"
                " t.valid_to, ST_AsBinary(t.geom) AS wkb FROM plate t"
                " WHERE t.registration_unit = :u AND t.main_plate = :m AND t.sub_plate = :s"
                f" AND {valid} ORDER BY t.valid_from DESC LIMIT 1"
            ),
            {**numbers, **params},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(
            f"no registered plot {numbers['u']}/{numbers['m']}/{numbers['s']}"
            + (" at that time" if when else ""),
            code="unknown_plate",
        )
    return dict(row)


def plan_coverage(conn: Connection, agency: str, code: str) -> dict[str, Any]:
    """How much of the village's current guide-plan zone its current parcels cover: the share,
    the gaps as geometry, and the parcels reaching outside the zone."""
    pairs = sorted(equivalent_codes(conn, agency, code))
    plan = (
        conn.execute(
            text(
                "SELECT id, village_agency, village_code, plan_year, valid_from FROM guide_plan"
                " WHERE valid_to IS NULL AND (village_agency, village_code) IN"
                " (SELECT * FROM unnest(CAST(:a AS text[]), CAST(:c AS text[])))"
                " ORDER BY valid_from DESC LIMIT 1"
            ),
            {"a": [a for a, _ in pairs], "c": [c for _, c in pairs]},
        )
        .mappings()
        .first()
    )
    if plan is None:
        raise NotFound(
            f"no guide-plan zone for {agency}:{code} (codes tried: "
            + ", ".join(f"{a}:{c}" for a, c in pairs)
            + ")",
            code="no_guide_plan",
        )
    village = {"a": plan["village_agency"], "c": plan["village_code"], "plan": plan["id"]}
    summary = (
        conn.execute(
            text(
                """
                WITH z AS (SELECT zone FROM guide_plan WHERE id = :plan),
                p AS (SELECT ST_Union(geom) AS u, count(*) AS n FROM parcel
                      WHERE village_agency = :a AND village_code = :c AND valid_to IS NULL),
                g AS (SELECT ST_CollectionExtract(
                        ST_Difference(z.zone, coalesce(p.u, 'SRID=4326;POLYGON EMPTY')), 3) AS gaps,
                        ST_Area(z.zone::geography) AS zone_m2,
                        ST_Area(ST_CollectionExtract(ST_Intersection(z.zone, p.u), 3)::geography)
                          AS covered_m2, p.n
                      FROM z, p)
                SELECT zone_m2, coalesce(covered_m2, 0) AS covered_m2, n,
                       ST_Area(gaps::geography) AS gap_m2, ST_NumGeometries(gaps) AS gap_parts,
                       ST_AsGeoJSON(gaps, 7)::json AS gaps
                FROM g
                """
            ),
            village,
        )
        .mappings()
        .one()
    )
    outside = conn.execute(
        text(
            """
            WITH z AS (SELECT zone FROM guide_plan WHERE id = :plan)
            SELECT t.id, t.parcel_no, ST_Area(t.geom::geography) AS parcel_m2,
                   ST_Area(ST_CollectionExtract(ST_Difference(t.geom, z.zone), 3)::geography)
                     AS outside_m2
            FROM parcel t, z
            WHERE t.village_agency = :a AND t.village_code = :c AND t.valid_to IS NULL
              AND NOT ST_CoveredBy(t.geom, z.zone)
            ORDER BY t.id
            """
        ),
        village,
    ).mappings()
    return {
        "village": {"agency": plan["village_agency"], "code": plan["village_code"]},
        "codes_tried": [{"agency": a, "code": c} for a, c in pairs],
        "guide_plan": {
            "id": plan["id"],
            "plan_year": plan["plan_year"],
            "version_from": plan["valid_from"],
        },
        "area_method": AREA_METHOD,
        "zone_m2": round(summary["zone_m2"], 3),
        "covered_m2": round(summary["covered_m2"], 3),
        "share_covered": _share(summary["covered_m2"], summary["zone_m2"]),
        "parcel_count": summary["n"],
        "gaps": {
            "area_m2": round(summary["gap_m2"] or 0, 3),
            "parts": summary["gap_parts"] or 0,
            "geometry": summary["gaps"],
        },
        "parcels_outside": [
            {
                "id": r["id"],
                "parcel_no": r["parcel_no"],
                "outside_m2": round(r["outside_m2"], 3),
                "share_outside": _share(r["outside_m2"], r["parcel_m2"]),
            }
            for r in outside
            if r["outside_m2"] > 0.01
        ],
    }
