"""Validate a staged upload in PostGIS; every finding has a stable code and a location.

Errors (block publish): ``empty_geometry``, ``wrong_geometry_type``, ``invalid_geometry``
(with ST_IsValidDetail's reason; repaired with consent, then a warning
``repaired_geometry`` with the area changed), ``missing_parcel_no``,
``duplicate_parcel_no``, ``overlap`` (above ``OVERLAP_M2``), ``outside_zone`` (the last two
per village in :mod:`geo.parcels.village_checks`).
Warnings: ``z_dropped``, ``area_mismatch`` (declared area more than ``AREA_TOLERANCE`` off),
``zone_gaps`` (share of the zone no parcel covers), ``no_zone``.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Connection, text

from geo.parcels.village_checks import OUTSIDE_M2, OVERLAP_M2, village_findings

__all__ = ["AREA_TOLERANCE", "OUTSIDE_M2", "OVERLAP_M2", "validate_stage"]

AREA_TOLERANCE = 0.10
ERRORS = {
    "empty_geometry",
    "wrong_geometry_type",
    "invalid_geometry",
    "missing_parcel_no",
    "duplicate_parcel_no",
    "overlap",
    "outside_zone",
}
LIMIT = 5000

_CHECKS = {
    "empty_geometry": """
        SELECT feature, parcel_no, 'no geometry' AS message, NULL AS location
        FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels'
        AND (geom IS NULL OR ST_IsEmpty(geom))""",
    "wrong_geometry_type": """
        SELECT feature, parcel_no, 'a ' || GeometryType(geom) || ', not a polygon' AS message,
               ST_AsText(ST_PointOnSurface(geom)) AS location
        FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels' AND geom IS NOT NULL
        AND NOT ST_IsEmpty(geom) AND GeometryType(geom) NOT IN ('POLYGON', 'MULTIPOLYGON')""",
    "invalid_geometry": """
        SELECT feature, parcel_no, (ST_IsValidDetail(geom)).reason AS message,
               ST_AsText((ST_IsValidDetail(geom)).location) AS location
        FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels' AND geom IS NOT NULL
        AND GeometryType(geom) IN ('POLYGON', 'MULTIPOLYGON') AND NOT valid""",
    "missing_parcel_no": """
        SELECT feature, parcel_no, 'no parcel number' AS message,
               ST_AsText(ST_PointOnSurface(geom)) AS location
        FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels'
        AND (parcel_no IS NULL OR parcel_no = '')""",
    "duplicate_parcel_no": """
        SELECT s.feature, s.parcel_no, 'parcel number also on feature ' || d.first AS message,
               ST_AsText(ST_PointOnSurface(s.geom)) AS location
        FROM parcel_stage s JOIN (SELECT village, parcel_no, min(feature) AS first
          FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels'
          GROUP BY village, parcel_no HAVING count(*) > 1) d
          ON d.parcel_no = s.parcel_no AND d.village = s.village
        WHERE s.upload_id = :u AND s.layer = 'parcels' AND s.feature <> d.first""",
    "area_mismatch": """
        SELECT feature, parcel_no,
               'declared ' || area_declared || ' m², drawn '
               || round(area_m2::numeric, 1) || ' m²' AS message,
               ST_AsText(ST_PointOnSurface(geom)) AS location
        FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels' AND area_declared IS NOT
          NULL AND area_m2 > 0 AND abs(area_declared - area_m2) / area_m2 > :tol
          AND valid""",
}


def _repair(conn: Connection, upload_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(
        text("""
        WITH fixed AS (
            SELECT id, feature, parcel_no, geom AS before,
                   ST_Multi(ST_CollectionExtract(ST_MakeValid(geom), 3)) AS after
            FROM parcel_stage WHERE upload_id = :u AND layer IN ('parcels', 'zone')
            AND geom IS NOT NULL AND NOT valid)
        UPDATE parcel_stage s SET geom = f.after, area_m2 = ST_Area(f.after::geography),
          valid = ST_IsValid(f.after)
        FROM fixed f WHERE s.id = f.id
        RETURNING f.feature, f.parcel_no,
          'repaired: area ' || round(ST_Area(f.before::geography)::numeric, 1) || ' → '
          || round(ST_Area(f.after::geography)::numeric, 1) || ' m²' AS message,
          ST_AsText(ST_PointOnSurface(f.after)) AS location"""),
        {"u": upload_id},
    ).mappings()
    return [{**dict(r), "code": "repaired_geometry", "level": "warning"} for r in rows]


def validate_stage(
    conn: Connection,
    upload_id: int,
    *,
    repair: bool = False,
    z_dropped: int = 0,
    village_conn: Connection | None = None,
) -> dict[str, Any]:
    """Run every check on the staged upload; return the report (nothing is changed, except
    geometries repaired when ``repair``).

    ``village_conn``: a second connection that sees the staged rows (committed, and not
    to be repaired): the per-village checks then run on it while PostgreSQL runs the SQL
    checks — one core each instead of one after the other.
    """
    findings: list[dict[str, Any]] = []
    if repair:
        findings += _repair(conn, upload_id)
    with ThreadPoolExecutor(max_workers=1) as pool:
        villages = (
            pool.submit(village_findings, village_conn, upload_id)
            if village_conn is not None and not repair
            else None
        )
        params = {"u": upload_id, "tol": AREA_TOLERANCE}
        for code, sql in _CHECKS.items():
            for row in conn.execute(text(sql), params).mappings():
                findings.append(
                    {**dict(row), "code": code, "level": "error" if code in ERRORS else "warning"}
                )
        # overlap, outside_zone
        findings += villages.result() if villages else village_findings(conn, upload_id)
    # Valid parcels do not overlap (checked above), so the zone's covered share is the sum
    # of their areas: no union of thousands of polygons needed.
    zone = conn.execute(
        text("""
        SELECT sum(z.zone_m2) AS zone_m2, sum(z.zone_m2) - sum(coalesce(p.covered, 0)) AS gap_m2
        FROM (SELECT village, sum(area_m2) AS zone_m2 FROM parcel_stage
              WHERE upload_id = :u AND layer = 'zone' AND valid GROUP BY village) z
        LEFT JOIN (SELECT village, sum(area_m2) AS covered FROM parcel_stage
              WHERE upload_id = :u AND layer = 'parcels' AND valid
              GROUP BY village) p ON p.village = z.village
        HAVING count(*) > 0"""),
        {"u": upload_id},
    ).first()
    extras: dict[str, Any] = {}
    if zone is None:
        findings.append(
            {
                "feature": None,
                "parcel_no": None,
                "code": "no_zone",
                "level": "warning",
                "location": None,
                "message": "no guide-plan zone layer: gaps and parcels outside the "
                "zone were not checked",
            }
        )
    else:
        share = max(0.0, zone.gap_m2 / zone.zone_m2) if zone.zone_m2 else 0
        extras = {"zone_m2": round(zone.zone_m2, 1), "uncovered_share": round(share, 4)}
        findings.append(
            {
                "feature": None,
                "parcel_no": None,
                "code": "zone_gaps",
                "level": "warning",
                "location": None,
                "message": f"{share:.1%} of the zone is covered by no parcel "
                "(streets and open land included)",
            }
        )
    if z_dropped:
        findings.append(
            {
                "feature": None,
                "parcel_no": None,
                "code": "z_dropped",
                "level": "warning",
                "location": None,
                "message": f"{z_dropped} features had Z or M values; stored in 2D",
            }
        )
    findings.sort(key=lambda f: (f["level"] != "error", f["feature"] or 0, f["code"]))
    counts = Counter(f["code"] for f in findings)
    errors = sum(1 for f in findings if f["level"] == "error")
    features = conn.execute(
        text("SELECT count(*) FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels'"),
        {"u": upload_id},
    ).scalar_one()
    return {
        "valid": errors == 0,
        "summary": {
            "features": features,
            "errors": errors,
            "warnings": len(findings) - errors,
            "by_code": dict(counts),
            **extras,
        },
        "findings": findings[:LIMIT],
    }
