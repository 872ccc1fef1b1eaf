"""Publish a validated upload as its villages' new parcel maps, atomically, as versions.

In one transaction, holding each village's advisory lock (so two uploads for one village
apply one after the other; locks taken in code order, so no deadlock): parcels are matched
to the current maps by (village, parcel number); unchanged ones (same geometry and
attributes) stay untouched; modified and removed ones get ``valid_to``; new and modified ones
are inserted; every insert, update and delete is announced on the change feed (a change
set per village and operation naming the versions: their states are the versions').
Zones likewise, one change row per village.

The statements are in ``publish.sql`` beside this module, run by name (``SQL.<name>``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from geo.geodata.parcels.errors import UploadRejected
from geo.geodata.parcels.extents import VillageExtent, grow_seen_extents, seen_rows
from geo.geodata.parcels.first_load import (
    Loader,
    claim_new_provinces,
    close_loader,
    load_provinces,
)
from geo.geodata.persian import match_key
from geo.platform.database import copy_lines, copy_text
from geo.platform.sql import queries

__all__ = ["publish_loaded", "publish_stage", "stage_provinces"]

SQL = queries(__file__)


def stage_provinces(conn: Connection, upload_id: int, agency: str) -> dict[str, str]:
    """Each staged village's province (the partition its parcels go to)."""
    return dict(conn.execute(SQL.stage_provinces, {"u": upload_id, "a": agency}).all())  # type: ignore[arg-type]


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
    provinces = set(conn.execute(SQL.provinces_published).scalars())
    # A village with parcels stored under another province (its province changed, or was
    # unknown then) is compared with them: its province is not a first load.
    stored = conn.execute(SQL.provinces_with_stored_parcels, params).scalars()
    new = (candidates & provinces) - set(stored)
    _ensure_partitions(conn, provinces - new)
    if not new:
        return 0
    params = {**params, "new": sorted(new)}
    loaded = load_provinces(conn, new, SQL.first_load_rows.text, params, upload_id)
    conn.execute(SQL.change_sets_of_first_loads, params)
    conn.execute(SQL.forget_first_loads, params)
    return loaded


def _ensure_partitions(conn: Connection, provinces: set[str]) -> None:
    conn.execute(SQL.ensure_partitions, {"p": sorted(provinces)})


def _lock_villages(conn: Connection, params: dict[str, Any], provinces: dict[str, str]) -> None:
    """``pub_village`` (the villages and their provinces), each village's advisory lock
    taken in code order."""
    conn.execute(SQL.create_pub_village, {"v": list(provinces), "p": list(provinces.values())})
    conn.execute(SQL.analyze_pub_village)
    conn.execute(SQL.lock_villages, params)


def publish_stage(
    conn: Connection,
    upload_id: int,
    agency: str,
    cause: dict[str, Any],
    provinces: dict[str, str],
    *,
    confirm_removals: bool = False,
) -> dict[str, int]:
    """Apply staged upload ``upload_id`` (villages of ``agency``, each in its province as
    :func:`stage_provinces` found it); return change counts."""
    params = {
        "u": upload_id,
        "a": agency,
        "cause": json.dumps(cause),
        "confirm_removals": confirm_removals,
    }
    # The partitions' lock (when a province lacks one) before the villages' locks, as the
    # direct publish takes them: no deadlock between the two.
    candidates = claim_new_provinces(conn, set(provinces.values()))
    _lock_villages(conn, params, provinces)
    first_loads = _publish_first_loads(conn, params, upload_id, candidates)
    conn.execute(SQL.create_pub_new_from_stage, params)
    counts = _compare(conn, params)
    zones = _publish_zones(conn, params)
    if first_loads or any(counts.values()):
        conn.execute(SQL.mark_changed_area, {**params, "villages": sorted(provinces)})
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
    confirm_removals: bool = False,
) -> dict[str, int]:
    """Apply upload ``upload_id`` written straight into ``loader`` (and its zone staged;
    ``seen``: each village's province, rows and box, ``ids``: its rows' version ids): the
    other rows are compared with the stored maps, the new provinces' tables become their
    partitions (``indexed``: waits for their indexes, built meanwhile); return change
    counts."""
    params = {
        "u": upload_id,
        "a": agency,
        "cause": json.dumps(cause),
        "confirm_removals": confirm_removals,
    }
    # (the loader's tables are named per upload: a name is not a bind parameter)
    provinces: dict[str, str] = dict(
        conn.execute(text(f"SELECT DISTINCT village_code, province FROM {loader.rest}")).all()  # type: ignore[arg-type]
    )
    _lock_villages(conn, params, provinces)
    _ensure_partitions(conn, set(provinces.values()))
    conn.execute(
        text(
            "CREATE TEMP TABLE pub_new ON COMMIT DROP AS"
            " SELECT village_code AS village, parcel_no, land_use, area_declared, attrs, geom,"
            f" area_m2, province FROM {loader.rest}"
        )
    )
    counts = _compare(conn, params)
    rows = seen_rows(seen)
    loaded = {p for p in loader.tables if rows.get(p)}
    if loaded:  # (while their indexes are being built)
        _written_change_sets(conn, params, ids, seen, loaded)
        grow_seen_extents(conn, agency, seen, loaded)
    zones = _publish_zones(conn, params)
    moved = close_loader(conn, loader, rows, indexed=indexed)
    if any(moved.values()) or any(counts.values()):
        villages = sorted(set(provinces) | set(seen))
        conn.execute(SQL.mark_changed_area, {**params, "villages": villages})
    return {**counts, "insert": counts["insert"] + sum(moved.values()), "zone": zones}


# More than this share of a village's current parcels removed by one publish must be
# confirmed: a wrong file (one huge polygon, another village's map) would otherwise wipe
# out a village's map with no more than a warning.
MASS_REMOVAL = 0.2


def _refuse_mass_removals(conn: Connection) -> None:
    found = conn.execute(SQL.mass_removals, {"share": MASS_REMOVAL}).mappings().all()
    if not found:
        return
    villages = [dict(r) for r in found]
    first = villages[0]
    raise UploadRejected(
        f"publishing would remove {first['removed']} of the {first['current']} parcels of"
        f" village {first['village']}"
        + (f" and as many in {len(villages) - 1} other villages" if len(villages) > 1 else "")
        + f" (more than {MASS_REMOVAL:.0%}); publish again with confirm_removals if this is"
        " meant",
        code="mass_removal",
        villages=villages[:50],
    )


def _text_key(value: Any) -> str | None:
    return None if value is None else match_key(str(value))


def _forgive_spelling(conn: Connection) -> None:
    """Drop from ``pub_diff`` the updates whose land use and attributes differ only in
    spelling (Arabic ي/ك for Persian ی/ک, digits, ZWNJ…: :func:`geo.geodata.persian.match_key`,
    the one comparison of names): the stored text keeps its spelling."""
    same = [
        (village, no)
        for village, no, old_use, new_use, old, new in conn.execute(SQL.updates_of_text_only)
        if _text_key(old_use) == _text_key(new_use)
        and {k: _text_key(v) for k, v in old.items()} == {k: _text_key(v) for k, v in new.items()}
    ]
    if same:
        conn.execute(SQL.forgive_updates, {"v": [v for v, _ in same], "n": [n for _, n in same]})


def _compare(conn: Connection, params: dict[str, Any]) -> dict[str, int]:
    """Compare the new maps (``pub_new``) with the current ones of their villages
    (``pub_village``) and apply the difference; the counts of each operation. A village
    that would lose more than ``MASS_REMOVAL`` of its parcels stops the publish
    (``mass_removal``) unless ``params["confirm_removals"]``."""
    conn.execute(SQL.create_pub_cur, params)
    conn.execute(SQL.create_pub_diff, params)
    if not params.get("confirm_removals"):
        _refuse_mass_removals(conn)
    _forgive_spelling(conn)
    conn.execute(SQL.close_old_versions, params)
    conn.execute(SQL.create_pub_ins, params)
    conn.execute(SQL.insert_new_versions, params)
    conn.execute(SQL.change_sets_of_comparison, params)
    counts: dict[str, int] = dict(conn.execute(SQL.counts_by_operation).all())  # type: ignore[arg-type]
    return {op: counts.get(op, 0) for op in ("insert", "update", "delete")}


def _publish_zones(conn: Connection, params: dict[str, Any]) -> int:
    """The staged zones as their villages' new guide-plan zones (changed ones only); the
    stage rows are removed. The number of zones changed."""
    zones = conn.execute(SQL.publish_zones, params).all()
    conn.execute(SQL.clear_stage, params)
    return len(zones)
