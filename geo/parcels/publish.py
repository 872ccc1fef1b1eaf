"""Publish a validated upload as the village's new parcel map, atomically, as a version.

In one transaction, holding the village's advisory lock (so two uploads for one village
apply one after the other): parcels are matched to the current map by parcel number;
unchanged ones (same geometry and attributes) stay untouched; modified and removed ones
get ``valid_to``; new and modified ones are inserted; every insert, update and delete
writes a ``change`` row with the before and after states. The zone likewise.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

__all__ = ["publish_stage"]

_STATE = (
    "jsonb_build_object('parcel_no', {t}.parcel_no, 'land_use', {t}.land_use,"
    " 'area_declared', {t}.area_declared, 'area_m2', round(ST_Area({t}.geom::geography)"
    "::numeric, 2), 'attrs', {t}.attrs, 'geometry', ST_AsGeoJSON({t}.geom, 7)::jsonb)"
)


def publish_stage(
    conn: Connection, upload_id: int, agency: str, code: str, cause: dict[str, Any]
) -> dict[str, int]:
    """Apply staged upload ``upload_id`` to village ``agency:code``; return change counts."""
    import json

    params = {"u": upload_id, "a": agency, "c": code, "cause": json.dumps(cause)}
    conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('village:' || :a || ':' || :c, 0))"),
        params,
    )
    conn.execute(
        text("""
        CREATE TEMP TABLE pub_new ON COMMIT DROP AS
        SELECT parcel_no, land_use, area_declared, attrs, ST_Multi(geom) AS geom
        FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels'"""),
        params,
    )
    conn.execute(
        text("""
        CREATE TEMP TABLE pub_cur ON COMMIT DROP AS
        SELECT id, parcel_no, land_use, area_declared, attrs, geom FROM parcel
        WHERE village_agency = :a AND village_code = :c AND valid_to IS NULL"""),
        params,
    )
    conn.execute(
        text("""
        CREATE TEMP TABLE pub_diff ON COMMIT DROP AS
        SELECT coalesce(n.parcel_no, c.parcel_no) AS parcel_no, c.id AS old_id,
               CASE WHEN c.id IS NULL THEN 'insert' WHEN n.parcel_no IS NULL THEN 'delete'
                    ELSE 'update' END AS op
        FROM pub_new n FULL JOIN pub_cur c ON c.parcel_no = n.parcel_no
        WHERE c.id IS NULL OR n.parcel_no IS NULL OR NOT (
            ST_AsEWKB(c.geom) = ST_AsEWKB(n.geom)
            AND c.land_use IS NOT DISTINCT FROM n.land_use
            AND c.area_declared IS NOT DISTINCT FROM n.area_declared
            AND c.attrs = n.attrs)"""),
        params,
    )
    conn.execute(
        text(
            """
        INSERT INTO change (entity_kind, entity_id, operation, cause, before)
        SELECT 'parcel', :a || ':' || :c || ':' || d.parcel_no, 'delete', CAST(:cause AS jsonb),
               """
            + _STATE.format(t="p")
            + """
        FROM pub_diff d JOIN parcel p ON p.id = d.old_id WHERE d.op = 'delete'"""
        ),
        params,
    )
    conn.execute(
        text("""
        UPDATE parcel SET valid_to = now() WHERE id IN (
            SELECT old_id FROM pub_diff WHERE op IN ('update', 'delete'))"""),
        params,
    )
    conn.execute(
        text(
            """
        WITH ins AS (
            INSERT INTO parcel (village_agency, village_code, parcel_no, land_use, area_declared,
                                area_m2, geom, attrs, upload_id)
            SELECT :a, :c, n.parcel_no, n.land_use, n.area_declared, ST_Area(n.geom::geography),
                   n.geom, n.attrs, :u
            FROM pub_new n JOIN pub_diff d ON d.parcel_no = n.parcel_no AND d.op <> 'delete'
            RETURNING *)
        INSERT INTO change (entity_kind, entity_id, operation, cause, before, after)
        SELECT 'parcel', :a || ':' || :c || ':' || ins.parcel_no, d.op, CAST(:cause AS jsonb),
               CASE WHEN d.op = 'update' THEN (SELECT """
            + _STATE.format(t="o")
            + """
                 FROM parcel o WHERE o.id = d.old_id) END,
               """
            + _STATE.format(t="ins")
            + """
        FROM ins JOIN pub_diff d ON d.parcel_no = ins.parcel_no"""
        ),
        params,
    )
    counts = dict(conn.execute(text("SELECT op, count(*) FROM pub_diff GROUP BY op")).all())
    zone = conn.execute(
        text("""
        SELECT ST_Multi(ST_Union(geom)) FROM parcel_stage WHERE upload_id = :u
        AND layer = 'zone'"""),
        params,
    ).scalar()
    if zone is not None:
        changed = (
            conn.execute(
                text("""
            SELECT id FROM guide_plan WHERE village_agency = :a AND village_code = :c
            AND valid_to IS NULL AND ST_AsEWKB(zone) = ST_AsEWKB(
              (SELECT ST_Multi(ST_Union(geom)) FROM parcel_stage WHERE upload_id = :u
               AND layer = 'zone'))"""),
                params,
            ).first()
            is None
        )
        if changed:
            old = conn.execute(
                text("""
                UPDATE guide_plan SET valid_to = now() WHERE village_agency = :a
                AND village_code = :c AND valid_to IS NULL
                RETURNING jsonb_build_object('geometry', ST_AsGeoJSON(zone, 7)::jsonb)"""),
                params,
            ).scalar()
            new = conn.execute(
                text("""
                INSERT INTO guide_plan (village_agency, village_code, zone, upload_id)
                SELECT :a, :c, ST_Multi(ST_Union(geom)), :u FROM parcel_stage
                WHERE upload_id = :u AND layer = 'zone'
                RETURNING jsonb_build_object('geometry', ST_AsGeoJSON(zone, 7)::jsonb)"""),
                params,
            ).scalar()
            conn.execute(
                text("""
                INSERT INTO change (entity_kind, entity_id, operation, cause, before, after)
                VALUES ('guide_plan', :a || ':' || :c, :op, CAST(:cause AS jsonb),
                        CAST(:before AS jsonb), CAST(:after AS jsonb))"""),
                {
                    **params,
                    "op": "update" if old else "insert",
                    "before": json.dumps(old) if old else None,
                    "after": json.dumps(new),
                },
            )
            counts["zone"] = 1
    conn.execute(text("DELETE FROM parcel_stage WHERE upload_id = :u"), params)
    return {
        "insert": counts.get("insert", 0),
        "update": counts.get("update", 0),
        "delete": counts.get("delete", 0),
        "zone": counts.get("zone", 0),
    }
