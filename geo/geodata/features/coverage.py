"""Coverage (سرویس پوششی): what a registered plot overlaps, and how much of a village's plan
zone its parcels cover.

Areas are geodesic: PostGIS ``ST_Area(geography)`` on the WGS 84 ellipsoid, the same
measure as pyproj's ``Geod.geometry_area_perimeter`` (tests hold them to 0.1%). Overlaps
are cut in lon/lat (``ST_Intersection``), exact for plots of a few km².
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text

from geo.errors import NotFound
from geo.geodata.features.temporal import TimeFilter
from geo.geodata.persian import normalize_code
from geo.geodata.registry.agencies import require_agency
from geo.geodata.registry.editions import IN_FORCE_SQL
from geo.geodata.registry.partners import Partners, partners
from geo.models.base import sql_in
from geo.models.crosswalk import LINK_AGENCIES
from geo.platform.database import read_mapping

__all__ = [
    "AREA_METHOD",
    "MAX_PARCELS",
    "Coverage",
    "plan_coverage",
    "plate_geometry",
    "plot_coverage",
]

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


def share_sql(part: str, whole: str) -> str:
    """SQL for PART's share of WHOLE: at most 1, 6 decimals; null when the whole is zero or
    unknown (the same rule as :func:`_share`)."""
    return (
        f"CASE WHEN {whole} > 0 AND {part} IS NOT NULL"
        f" THEN round(least(1.0, {part} / {whole})::numeric, 6) END"
    )


# The overlay of a plot, as one statement; {parcel_valid} and {plan_valid} are the validity
# conditions of the time asked (`_valid`), {latest_run} the crosswalk run that answers and
# {village_codes} a village's codes in every agency through it (the crosswalk's expressions:
# geo does not know its tables); `overlay_sql` fills them in.
OVERLAY_SQL = f"""
WITH run AS (SELECT {{latest_run}} AS id),
plot AS (
    SELECT g, ST_Area(g::geography) AS m2 FROM (SELECT ST_GeomFromWKB(:plot, 4326) AS g) p),
editions AS (
    SELECT * FROM ({IN_FORCE_SQL}) e WHERE agency IN ({sql_in(LINK_AGENCIES)})),
-- (parcels and plans MATERIALIZED: else hit_parcels' filter on overlap_m2 is pushed into
-- the scan and each intersection and its area are computed twice)
parcels AS MATERIALIZED (
    SELECT t.id, t.village_agency, t.village_code, t.parcel_no, t.land_use, t.upload_id,
           t.valid_from, t.geom,
           ST_Area(ST_CollectionExtract(ST_Intersection(t.geom, plot.g), 3)::geography)
             AS overlap_m2,
           ST_Area(t.geom::geography) AS parcel_m2
    FROM parcel t, plot
    WHERE t.geom && plot.g AND ST_Intersects(t.geom, plot.g) AND {{parcel_valid}}),
plans AS MATERIALIZED (
    SELECT t.id, t.village_agency, t.village_code, t.plan_year, t.valid_from, t.zone,
           ST_Area(ST_CollectionExtract(ST_Intersection(t.zone, plot.g), 3)::geography)
             AS overlap_m2,
           ST_Area(t.zone::geography) AS zone_m2
    FROM guide_plan t, plot
    WHERE t.zone && plot.g AND ST_Intersects(t.zone, plot.g) AND {{plan_valid}}),
divisions AS (
    SELECT e.agency, e.label AS edition, d.level, d.code, d.name,
           ST_Area(ST_CollectionExtract(ST_Intersection(d.polygon, plot.g), 3)::geography)
             AS overlap_m2
    FROM division d JOIN edition e ON e.id = d.edition_id, plot
    WHERE d.edition_id IN (SELECT id FROM editions) AND d.polygon && plot.g
      AND ST_Intersects(d.polygon, plot.g)),
hit_parcels AS (SELECT * FROM parcels WHERE overlap_m2 > 0.0005),
hit_plans AS (SELECT * FROM plans WHERE overlap_m2 > 0.0005),
covered AS MATERIALIZED (  -- its unions once, not once per use below
    SELECT coalesce((SELECT ST_Area(ST_CollectionExtract(ST_Intersection(ST_Union(p.geom),
             (SELECT g FROM plot)), 3)::geography) FROM hit_parcels p), 0) AS by_parcels,
           coalesce((SELECT ST_Area(ST_CollectionExtract(ST_Intersection(ST_Union(p.zone),
             (SELECT g FROM plot)), 3)::geography) FROM hit_plans p), 0) AS by_plans),
villages AS (
    SELECT village_agency AS agency, village_code AS code FROM hit_parcels
    UNION
    SELECT village_agency, village_code FROM hit_plans)
SELECT
  plot.m2 AS plot_m2,
  (SELECT count(*) FROM hit_parcels) AS parcel_count,
  json_build_object(
    'editions', (SELECT coalesce(json_agg(json_build_object('agency', agency, 'label', label,
        'published_on', published_on) ORDER BY agency), '[]') FROM editions),
    'totals', json_build_object(
        'parcel_count', (SELECT count(*) FROM hit_parcels),
        'parcels_m2', round(covered.by_parcels::numeric, 3),
        'share_by_parcels', {share_sql("covered.by_parcels", "plot.m2")},
        'guide_plans_m2', round(covered.by_plans::numeric, 3),
        'share_by_guide_plans', {share_sql("covered.by_plans", "plot.m2")}),
    'parcels', (SELECT coalesce(json_agg(json_build_object('id', id,
        'village', json_build_object('agency', village_agency, 'code', village_code),
        'parcel_no', parcel_no, 'land_use', land_use,
        'overlap_m2', round(overlap_m2::numeric, 3),
        'share_of_plot', {share_sql("overlap_m2", "plot.m2")},
        'share_of_parcel', {share_sql("overlap_m2", "parcel_m2")},
        'parcel_area_m2', round(parcel_m2::numeric, 3), 'upload_id', upload_id,
        'version_from', valid_from) ORDER BY overlap_m2 DESC, id), '[]')
      FROM (SELECT * FROM hit_parcels ORDER BY overlap_m2 DESC, id LIMIT {MAX_PARCELS}) p),
    'truncated', (SELECT count(*) FROM hit_parcels) > {MAX_PARCELS},
    'guide_plans', (SELECT coalesce(json_agg(json_build_object('id', id,
        'village', json_build_object('agency', village_agency, 'code', village_code),
        'plan_year', plan_year, 'overlap_m2', round(overlap_m2::numeric, 3),
        'share_of_plot', {share_sql("overlap_m2", "plot.m2")},
        'share_of_zone', {share_sql("overlap_m2", "zone_m2")}, 'version_from', valid_from)
        ORDER BY id), '[]') FROM hit_plans),
    'divisions', (SELECT coalesce(json_agg(json_build_object('agency', agency,
        'edition', edition, 'level', level, 'code', code, 'name', name,
        'overlap_m2', round(overlap_m2::numeric, 3),
        'share_of_plot', {share_sql("overlap_m2", "plot.m2")})
        ORDER BY agency, length(code), code), '[]') FROM divisions)
  )::text AS answer,
  (SELECT coalesce(json_agg(json_build_object('agency', v.agency, 'code', v.code,
      'name', (SELECT d.name FROM division d JOIN editions e ON e.id = d.edition_id
               WHERE e.agency = v.agency AND d.code = v.code LIMIT 1),
      'codes', {{village_codes}})
      ORDER BY v.agency, v.code), '[]')::text FROM villages v) AS villages
FROM plot, covered
"""


@functools.lru_cache(maxsize=64)
def overlay_sql(parcel_valid: str, plan_valid: str, crosswalk: Partners) -> str:
    """The overlay statement for the validity conditions given, its villages' codes in
    every agency read through ``crosswalk`` (written once per set of arguments: ~50 µs)."""
    return OVERLAY_SQL.format(
        parcel_valid=parcel_valid,
        plan_valid=plan_valid,
        latest_run=crosswalk.latest_run_sql(),
        village_codes=crosswalk.codes_sql("v.agency", "v.code", "(SELECT id FROM run)"),
    )


def plot_coverage(conn: Connection, plot: BaseGeometry, when: TimeFilter | None = None) -> Coverage:
    """Every parcel, guide-plan zone and division the plot intersects, with overlaps: the
    overlay is one statement, so the answer is consistent within itself."""
    wkb = shapely.to_wkb(plot, output_dimension=2)
    as_of = when.start if when is not None and when.instant else None
    parcel_valid, params = _valid("t", when)
    plan_valid, _ = _valid("t", when)
    # No province lookup first (as items and tiles do): a plot is a few hectares, each
    # partition's GiST index rules it out in microseconds, and the statement is prepared
    # once per connection, so the lookup's round trip would cost more than it saves.
    row = read_mapping(
        conn,
        overlay_sql(parcel_valid, plan_valid, partners()),
        {"plot": wkb, "as_of": as_of.date() if as_of else None, **params},
    )
    # the plot's GeoJSON goes in as shapely writes it (not decoded and encoded again)
    area = json.dumps(round(float(row["plot_m2"]), 3))
    when_text = json.dumps(as_of.isoformat() if as_of else None)
    head = (
        f'{{"plot":{{"area_m2":{area},"geometry":{shapely.to_geojson(plot)}}},'
        f'"area_method":{json.dumps(AREA_METHOD, ensure_ascii=False)},"as_of":{when_text}}}'
    )
    tail = f'{{"villages":{row["villages"]}}}'
    return Coverage(_merged(head, row["answer"], tail), int(row["parcel_count"]))


@dataclass(frozen=True)
class Coverage:
    """A coverage answer as JSON text (PostgreSQL writes the lists: nothing is decoded and
    encoded again here), and how many parcels it names (for the audit)."""

    body: str
    parcel_count: int

    def with_plate(self, plate: dict[str, Any]) -> str:
        """The answer with the registered plot's row appended as ``plate``."""
        return _merged(self.body, _object({"plate": plate}))


def _object(value: dict[str, Any]) -> str:
    return json.dumps(value, ensure_ascii=False, default=_iso)


def _merged(*objects: str) -> str:
    """JSON objects' texts as one object, their keys in order."""
    inner = [text.strip()[1:-1] for text in objects]
    return "{" + ",".join(part for part in inner if part.strip()) + "}"


def _iso(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


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
    require_agency(conn, agency)  # (the crosswalk names its columns after agencies)
    pairs = sorted(partners().equivalent_codes(conn, agency, code))
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
