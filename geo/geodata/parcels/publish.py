"""Publish a validated upload as its villages' new parcel maps, atomically, as versions.

In one transaction, holding each village's advisory lock (so two uploads for one village
apply one after the other; locks taken in code order, so no deadlock): parcels are matched
to the current maps by (village, parcel number); unchanged ones (same geometry and
attributes) stay untouched; modified and removed ones get ``valid_to``; new and modified ones
are inserted; every insert, update and delete is announced on the change feed (a change
set per village and operation naming the versions: their states are the versions').
Zones likewise, one change row per village.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from geo.geodata.parcels.extents import VillageExtent, grow_seen_extents, seen_rows
from geo.geodata.parcels.first_load import (
    Loader,
    claim_new_provinces,
    close_loader,
    load_provinces,
)
from geo.geodata.persian import match_key
from geo.platform.database import copy_lines, copy_text

__all__ = ["publish_loaded", "publish_stage", "stage_provinces", "write_change_sets"]


def write_change_sets(conn: Connection, params: dict[str, Any], versions: str) -> None:
    """One ``change`` row per village and operation (migration 0013) from ``versions``, a
    query of (village, province, op, after_id, before_id): the feed reads each row back as
    one event per parcel, in the order of the version ids (as written)."""
    conn.execute(
        text(
            """
        INSERT INTO change (entity_kind, entity_id, operation, cause, province, after_ids,
                            before_ids)
        SELECT 'parcel', :a || ':' || village, op, CAST(:cause AS jsonb), province,
               CASE WHEN op <> 'delete'
                    THEN array_agg(after_id ORDER BY coalesce(after_id, before_id)) END,
               CASE WHEN op <> 'insert'
                    THEN array_agg(before_id ORDER BY coalesce(after_id, before_id)) END
        FROM ("""
            + versions
            + """) v
        GROUP BY village, province, op"""
        ),
        params,
    )


def stage_provinces(conn: Connection, upload_id: int, agency: str) -> dict[str, str]:
    """Each staged village's province (the partition its parcels go to)."""
    return dict(
        conn.execute(
            text("""
            SELECT village, parcel_province(:a, village)
            FROM (SELECT DISTINCT village FROM parcel_stage WHERE upload_id = :u) v"""),
            {"u": upload_id, "a": agency},
        ).all()
    )


# A staged parcel as a row of ``parcel`` (first_load.COLUMNS), for the provinces :new.
_FIRST_LOAD = """
    SELECT nextval('parcel_id_seq'), :a, s.village, s.parcel_no, s.land_use, s.area_declared,
           coalesce(s.area_m2, ST_Area(s.geom::geography)), ST_Multi(s.geom), s.attrs, :u,
           v.province
    FROM parcel_stage s JOIN pub_village v USING (village)
    WHERE s.upload_id = :u AND s.layer = 'parcels' AND v.province = ANY(CAST(:new AS text[]))"""
# The staged parcels as the comparison takes them (``pub_new``).
_STAGED = """
    SELECT s.village, s.parcel_no, s.land_use, s.area_declared, s.attrs,
           ST_Multi(s.geom) AS geom, coalesce(s.area_m2, ST_Area(s.geom::geography))
           AS area_m2, v.province
    FROM parcel_stage s JOIN pub_village v USING (village)
    WHERE s.upload_id = :u AND s.layer = 'parcels'"""


def _inserted_change_sets(conn: Connection, params: dict[str, Any], provinces: list[str]) -> None:
    """Change sets of the parcels of provinces whose partitions this upload built (every
    parcel there is this upload's, an insert)."""
    write_change_sets(
        conn,
        {**params, "new": provinces},
        """
        SELECT village_code AS village, province, 'insert' AS op, id AS after_id,
               NULL::bigint AS before_id
        FROM parcel WHERE province = ANY(CAST(:new AS text[]))""",
    )


def _written_change_sets(
    conn: Connection,
    params: dict[str, Any],
    ids: dict[str, list[np.ndarray]],
    seen: dict[str, VillageExtent],
    provinces: set[str],
) -> None:
    """The insert change sets of the villages of ``provinces`` from the version ids their
    rows were written with (``ids``, in file order): no row is read back."""
    cause = copy_text(params["cause"])
    lines = []
    for village in sorted(v for v, s in seen.items() if s.province in provinces):
        after = np.sort(np.concatenate(ids[village])).tolist()
        lines.append(
            f"parcel\t{copy_text(params['a'])}:{copy_text(village)}\tinsert\t{cause}"
            f"\t{copy_text(seen[village].province)}\t{{{','.join(map(str, after))}}}"
        )
    copy_lines(
        conn,
        "COPY change (entity_kind, entity_id, operation, cause, province, after_ids) FROM STDIN",
        lines,
        chunk=100,
    )


def _publish_first_loads(
    conn: Connection, params: dict[str, Any], upload_id: int, candidates: set[str]
) -> int:
    """Villages of provinces that have no partition yet (``candidates``, claimed): their
    partitions are built whole (:mod:`geo.geodata.parcels.first_load`), every parcel an insert;
    these villages then leave ``pub_village`` and the comparison. The number of parcels
    inserted."""
    provinces = {r[0] for r in conn.execute(text("SELECT DISTINCT province FROM pub_village"))}
    # A village with parcels stored under another province (its province changed, or was
    # unknown then) is compared with them: its province is not a first load.
    stored = conn.execute(
        text("""
        SELECT DISTINCT v.province FROM pub_village v WHERE EXISTS (
          SELECT 1 FROM parcel p WHERE p.village_agency = :a AND p.village_code = v.village
            AND p.valid_to IS NULL)"""),
        params,
    ).scalars()
    new = (candidates & provinces) - set(stored)
    _ensure_partitions(conn, provinces - new)
    if not new:
        return 0
    params = {**params, "new": sorted(new)}
    loaded = load_provinces(conn, new, _FIRST_LOAD, params, upload_id)
    _inserted_change_sets(conn, params, sorted(new))
    conn.execute(text("DELETE FROM pub_village WHERE province = ANY(CAST(:new AS text[]))"), params)
    return loaded


def _ensure_partitions(conn: Connection, provinces: set[str]) -> None:
    conn.execute(
        text("SELECT parcel_ensure_partition(p) FROM unnest(CAST(:p AS text[])) p"),
        {"p": sorted(provinces)},
    )


def _lock_villages(conn: Connection, params: dict[str, Any], provinces: dict[str, str]) -> None:
    """``pub_village`` (the villages and their provinces, in a table of their own: a
    registry lookup inlined into the joins was evaluated for every parcel, 60 s
    nationally), each village's advisory lock taken in code order."""
    conn.execute(
        text("""
        CREATE TEMP TABLE pub_village ON COMMIT DROP AS
        SELECT * FROM unnest(CAST(:v AS text[]), CAST(:p AS text[])) AS x(village, province)"""),
        {"v": list(provinces), "p": list(provinces.values())},
    )
    conn.execute(text("ANALYZE pub_village"))
    conn.execute(
        text("""
        SELECT pg_advisory_xact_lock(hashtextextended('village:' || :a || ':' || village, 0))
        FROM (SELECT village FROM pub_village ORDER BY 1) villages"""),
        params,
    )


def publish_stage(
    conn: Connection,
    upload_id: int,
    agency: str,
    cause: dict[str, Any],
    provinces: dict[str, str],
) -> dict[str, int]:
    """Apply staged upload ``upload_id`` (villages of ``agency``, each in its province as
    :func:`stage_provinces` found it); return change counts."""
    params = {"u": upload_id, "a": agency, "cause": json.dumps(cause)}
    # The partitions' lock (when a province lacks one) before the villages' locks, as the
    # direct publish takes them: no deadlock between the two.
    candidates = claim_new_provinces(conn, set(provinces.values()))
    _lock_villages(conn, params, provinces)
    first_loads = _publish_first_loads(conn, params, upload_id, candidates)
    counts = _compare(conn, params, _STAGED)
    zones = _publish_zones(conn, params)
    return {**counts, "insert": counts["insert"] + first_loads, "zone": zones}


def publish_loaded(
    conn: Connection,
    upload_id: int,
    agency: str,
    cause: dict[str, Any],
    loader: Loader,
    seen: dict[str, VillageExtent],
    ids: dict[str, list[np.ndarray]],
    *,
    indexed: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Apply upload ``upload_id`` written straight into ``loader`` (and its zone staged;
    ``seen``: each village's province, rows and box, ``ids``: its rows' version ids): the
    other rows are compared with the stored maps, the new provinces' tables become their
    partitions (``indexed``: waits for their indexes, built meanwhile); return change
    counts."""
    params = {"u": upload_id, "a": agency, "cause": json.dumps(cause)}
    provinces: dict[str, str] = dict(
        conn.execute(text(f"SELECT DISTINCT village_code, province FROM {loader.rest}")).all()  # type: ignore[arg-type]
    )
    _lock_villages(conn, params, provinces)
    _ensure_partitions(conn, set(provinces.values()))
    counts = _compare(
        conn,
        params,
        f"""
        SELECT village_code AS village, parcel_no, land_use, area_declared, attrs, geom,
               area_m2, province
        FROM {loader.rest}""",
    )
    rows = seen_rows(seen)
    loaded = {p for p in loader.tables if rows.get(p)}
    if loaded:  # (while their indexes are being built)
        _written_change_sets(conn, params, ids, seen, loaded)
        grow_seen_extents(conn, agency, seen, loaded)
    zones = _publish_zones(conn, params)
    moved = close_loader(conn, loader, rows, indexed=indexed)
    return {**counts, "insert": counts["insert"] + sum(moved.values()), "zone": zones}


# Coordinates closer than this (degrees, ~0.1 mm) are the same: a map exported through
# another CRS and back differs from itself in the last bits of its coordinates.
SAME_WITHIN_DEG = 1e-9


def _same_shape(old: str, new: str) -> str:
    """SQL: whether geometries ``old`` and ``new`` are the same map drawing: the same
    bytes, or the same vertices each within ``SAME_WITHIN_DEG``."""
    return (
        f"(ST_AsEWKB({old}) = ST_AsEWKB({new}) OR (ST_NPoints({old}) = ST_NPoints({new})"
        f" AND ST_HausdorffDistance({old}, {new}) <= {SAME_WITHIN_DEG!r}))"
    )


def _text_key(value: Any) -> str | None:
    return None if value is None else match_key(str(value))


def _forgive_spelling(conn: Connection) -> None:
    """Drop from ``pub_diff`` the updates whose land use and attributes differ only in
    spelling (Arabic ي/ك for Persian ی/ک, digits, ZWNJ…: :func:`geo.geodata.persian.match_key`,
    the one comparison of names): the stored text keeps its spelling."""
    rows = conn.execute(
        text(
            """
        SELECT d.village, d.parcel_no, c.land_use, n.land_use, c.attrs, n.attrs
        FROM pub_diff d JOIN pub_cur c ON c.id = d.old_id
        JOIN pub_new n ON n.village = d.village AND n.parcel_no = d.parcel_no
        WHERE d.op = 'update' AND c.area_declared IS NOT DISTINCT FROM n.area_declared
          AND (c.land_use IS DISTINCT FROM n.land_use OR c.attrs <> n.attrs)
          AND """
            + _same_shape("c.geom", "n.geom")
        )
    ).all()
    same = [
        (village, no)
        for village, no, old_use, new_use, old, new in rows
        if _text_key(old_use) == _text_key(new_use)
        and {k: _text_key(v) for k, v in old.items()} == {k: _text_key(v) for k, v in new.items()}
    ]
    if same:
        conn.execute(
            text(
                "DELETE FROM pub_diff WHERE (village, parcel_no) IN"
                " (SELECT * FROM unnest(CAST(:v AS text[]), CAST(:n AS text[])))"
            ),
            {"v": [v for v, _ in same], "n": [n for _, n in same]},
        )


def _compare(conn: Connection, params: dict[str, Any], new_rows: str) -> dict[str, int]:
    """Compare the new maps (``new_rows``: village, parcel_no, land_use, area_declared,
    attrs, geom, area_m2, province) with the current ones of their villages
    (``pub_village``) and apply the difference; the counts of each operation."""
    conn.execute(text(f"CREATE TEMP TABLE pub_new ON COMMIT DROP AS {new_rows}"), params)
    conn.execute(
        text("""
        CREATE TEMP TABLE pub_cur ON COMMIT DROP AS
        SELECT p.id, p.province, p.village_code AS village, p.parcel_no, p.land_use,
               p.area_declared, p.area_m2, p.attrs, p.geom FROM parcel p
        WHERE p.village_agency = :a AND p.valid_to IS NULL
          AND p.village_code IN (SELECT village FROM pub_village)"""),
        params,
    )
    conn.execute(
        text(
            """
        CREATE TEMP TABLE pub_diff ON COMMIT DROP AS
        SELECT coalesce(n.village, c.village) AS village,
               coalesce(n.parcel_no, c.parcel_no) AS parcel_no, c.id AS old_id,
               CASE WHEN c.id IS NULL THEN 'insert' WHEN n.parcel_no IS NULL THEN 'delete'
                    ELSE 'update' END AS op
        FROM pub_new n FULL JOIN pub_cur c
          ON c.village = n.village AND c.parcel_no = n.parcel_no
        WHERE c.id IS NULL OR n.parcel_no IS NULL OR NOT (
            """
            + _same_shape("c.geom", "n.geom")
            + """
            AND c.land_use IS NOT DISTINCT FROM n.land_use
            AND c.area_declared IS NOT DISTINCT FROM n.area_declared
            AND c.attrs = n.attrs)"""
        ),
        params,
    )
    _forgive_spelling(conn)
    conn.execute(
        text("""
        UPDATE parcel p SET valid_to = now() FROM pub_diff d JOIN pub_cur c ON c.id = d.old_id
        WHERE p.id = c.id AND p.province = c.province AND d.op IN ('update', 'delete')"""),
        params,
    )
    # New versions take their ids first: the change sets name them.
    conn.execute(
        text("""
        CREATE TEMP TABLE pub_ins ON COMMIT DROP AS
        SELECT nextval('parcel_id_seq') AS id, d.old_id, d.op, n.*
        FROM pub_new n JOIN pub_diff d ON d.village = n.village
          AND d.parcel_no = n.parcel_no AND d.op <> 'delete'"""),
        params,
    )
    conn.execute(
        text("""
        INSERT INTO parcel (id, village_agency, village_code, parcel_no, land_use, area_declared,
                            area_m2, geom, attrs, upload_id, province)
        SELECT id, :a, village, parcel_no, land_use, area_declared, area_m2, geom, attrs, :u,
               province
        FROM pub_ins"""),
        params,
    )
    write_change_sets(
        conn,
        params,
        """
        SELECT village, province, op, id AS after_id, old_id AS before_id
        FROM pub_ins
        UNION ALL
        SELECT d.village, c.province, 'delete', NULL, d.old_id
        FROM pub_diff d JOIN pub_cur c ON c.id = d.old_id WHERE d.op = 'delete'""",
    )
    counts: dict[str, int] = dict(
        conn.execute(text("SELECT op, count(*) FROM pub_diff GROUP BY op")).all()  # type: ignore[arg-type]
    )
    return {op: counts.get(op, 0) for op in ("insert", "update", "delete")}


def _publish_zones(conn: Connection, params: dict[str, Any]) -> int:
    """The staged zones as their villages' new guide-plan zones (changed ones only); the
    stage rows are removed. The number of zones changed."""
    zones = conn.execute(
        text(
            """
        WITH staged AS (
            SELECT village, ST_Multi(ST_Union(geom)) AS zone FROM parcel_stage
            WHERE upload_id = :u AND layer = 'zone' GROUP BY village),
        changed AS (
            SELECT s.village, s.zone, g.id AS old_id, g.zone AS old_zone FROM staged s
            LEFT JOIN guide_plan g ON g.village_agency = :a AND g.village_code = s.village
              AND g.valid_to IS NULL
            WHERE g.id IS NULL OR NOT """
            + _same_shape("g.zone", "s.zone")
            + """),
        closed AS (
            UPDATE guide_plan SET valid_to = now() WHERE id IN (SELECT old_id FROM changed)),
        opened AS (
            INSERT INTO guide_plan (village_agency, village_code, zone, upload_id)
            SELECT :a, village, zone, :u FROM changed)
        INSERT INTO change (entity_kind, entity_id, operation, cause, before, after)
        SELECT 'guide_plan', :a || ':' || village,
               CASE WHEN old_id IS NULL THEN 'insert' ELSE 'update' END, CAST(:cause AS jsonb),
               CASE WHEN old_id IS NOT NULL THEN
                 json_build_object('geometry', ST_AsGeoJSON(old_zone, 7)::json) END,
               json_build_object('geometry', ST_AsGeoJSON(zone, 7)::json)
        FROM changed RETURNING 1"""
        ),
        params,
    ).all()
    conn.execute(text("DELETE FROM parcel_stage WHERE upload_id = :u"), params)
    return len(zones)
