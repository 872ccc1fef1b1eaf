"""GeoJSON features straight from PostGIS: a page of items, one item, a feature's versions.

PostgreSQL writes each feature's JSON (``json_build_object`` + ``ST_AsGeoJSON``); Python
only joins the pieces, so a page costs little more than the query itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import Gone, NotFound
from geo.geodata.features.collections import Collection
from geo.geodata.features.query import FeatureQuery, OutputCrs
from geo.platform.database import read_row, statement

__all__ = [
    "COUNT_AT_MOST",
    "FeatureGone",
    "Page",
    "count",
    "feature",
    "feature_sql",
    "page",
    "versions",
]


class FeatureGone(Gone):
    """The feature existed and was removed: HTTP 410 with the time it went."""

    code = "feature_removed"


@dataclass(frozen=True)
class Page:
    features: str  # the GeoJSON Features, comma-separated JSON text
    returned: int
    last_id: int | None
    more: bool
    matched: int | None = None  # the whole selection's size, when counted with the page
    last_key: str | None = None  # a sorted page's last row: its sort values and id (JSON)
    counted: bool = False  # counted with the page (``matched`` None then: past the cap)


def _properties(c: Collection, names: tuple[str, ...] | None = None) -> str:
    """The properties' JSON object: all of them, or those ``names`` (already checked)."""
    pairs = ", ".join(
        f"'{name}', {expr}" for name, expr, _ in c.properties if names is None or name in names
    )
    return f"json_build_object({pairs})"


def feature_sql(c: Collection, crs: OutputCrs, names: tuple[str, ...] | None = None) -> str:
    """SQL of one row's GeoJSON Feature as text (with the properties ``names`` only)."""
    geometry = crs.wrap(c.geometry)
    return (
        "json_build_object('type', 'Feature', 'id', t.id,"
        f" 'geometry', ST_AsGeoJSON({geometry}, {crs.decimals})::json,"
        f" 'properties', {_properties(c, names)})::text"
    )


# A selection is counted exactly up to this many features; past it ``numberMatched`` is
# left out (OGC API - Features allows that) rather than paid for on every page.
COUNT_AT_MOST = 100_000


def count(conn: Connection, q: FeatureQuery, at_most: int | None = None) -> int | None:
    """The selection's size, or None when it holds more than ``at_most`` features
    (default :data:`COUNT_AT_MOST`): the count stops reading there."""
    cap = COUNT_AT_MOST if at_most is None else at_most
    where, params = q.where(conn)
    found = conn.execute(
        statement(
            f"SELECT count(*) FROM (SELECT 1 FROM {q.collection.table} WHERE {where}"
            f" LIMIT {int(cap) + 1}) s"
        ),
        params,
    ).scalar_one()
    return None if found > cap else found


def page(conn: Connection, q: FeatureQuery) -> Page:
    """Up to ``q.limit`` features after ``q.after``, in id order, joined by PostgreSQL into
    one text (one row crosses the wire, not one per feature). One row more than the page is
    read: whether more follow comes with the page, not from a second statement.

    A first page by bbox (or by a filter that keeps only features meeting a geometry it
    names) is counted in the same statement (``Page.matched``): the box's rows are all
    read and sorted for the page anyway, so a window count costs nothing more, while a
    second ``count(*)`` would read them again. A sorted first page reads every row too (to
    sort them): it is counted in the same statement by a capped count of the selection.
    Other selections (a whole layer, a village) are read by the id index and stop at the
    page: they are not.
    """
    where, params = q.where(conn, paged=True)
    if q.limit is None:
        keep, limit = "TRUE", ""
    else:
        keep, limit = f"n <= {int(q.limit)}", f" LIMIT {int(q.limit) + 1}"
    bounded = q.bbox is not None or q.condition_bounding is not None
    first = q.after is None and q.after_key is None
    by_window = bounded and first
    total = "count(*) OVER ()" if by_window else "NULL::bigint"
    by_count = bool(q.sort) and first and not by_window
    matched_sql = "max(total)"
    if by_count:
        matched_sql = (
            f"(SELECT count(*) FROM (SELECT 1 FROM {q.collection.table} WHERE {where}"
            f" LIMIT {COUNT_AT_MOST + 1}) c)"
        )
    # the page's order and its last row's key: its id, or (sortby) its sort values and id
    if q.sort:
        extra = "".join(f", {k.sql} AS s{i}" for i, k in enumerate(q.sort))
        # the paging key is written for the page's rows only, after the sort (written in
        # the sort's input it cost ~1.5 µs for every row of the selection)
        values = ", ".join(f"s{i}" for i in range(len(q.sort)))
        carried = f", json_build_array({values}, id)::text AS k"
        directions = ("DESC" if k.descending else "ASC" for k in q.sort)
        window = ", ".join([*(f"s{i} {d} NULLS LAST" for i, d in enumerate(directions)), "id"])
        last = f"(array_agg(k ORDER BY n DESC) FILTER (WHERE {keep}))[1]"
    else:
        extra, window, carried, last = "", "id", "", f"max(id) FILTER (WHERE {keep})"
    row = read_row(
        conn,
        (
            f"SELECT coalesce(string_agg(f, ',' ORDER BY n) FILTER (WHERE {keep}), ''),"
            f" count(*) FILTER (WHERE {keep}), {last},"
            f" count(*) FILTER (WHERE NOT {keep}) > 0, {matched_sql} FROM ("
            f" SELECT id, f, total{carried}, row_number() OVER (ORDER BY {window}) AS n FROM ("
            f" SELECT t.id, {feature_sql(q.collection, q.crs, q.properties)} AS f,"
            f" {total} AS total{extra}"
            f" FROM {q.collection.table} WHERE {where} ORDER BY {q.order()}{limit}) p) numbered"
        ),
        params,
    )
    assert row is not None  # (an aggregate: always one row)
    features, returned, last_seen, more, matched = row
    counted = by_window or by_count
    if counted and matched is None:  # nothing in the box
        matched = 0
    if matched is not None and matched > COUNT_AT_MOST:
        matched = None
    if q.sort:
        return Page(features, returned, None, bool(more), matched, last_seen, counted)
    return Page(features, returned, last_seen, bool(more), matched, counted=counted)


def _row(conn: Connection, c: Collection, fid: int, crs: OutputCrs) -> Any:
    extra = ", t.valid_to" if c.versioned else ", NULL"
    return read_row(
        conn, f"SELECT {feature_sql(c, crs)}{extra} FROM {c.table} WHERE t.id = :fid", {"fid": fid}
    )


def _identity_where(c: Collection) -> str:
    return " AND ".join(f"t.{col} = o.{col}" for col in c.identity)


def _current_successor(conn: Connection, c: Collection, fid: int) -> int | None:
    table = c.base_table
    return conn.execute(
        text(
            f"SELECT t.id FROM {table} t JOIN {table} o ON {_identity_where(c)}"
            " WHERE o.id = :fid AND t.valid_to IS NULL ORDER BY t.id DESC LIMIT 1"
        ),
        {"fid": fid},
    ).scalar()


def feature(conn: Connection, c: Collection, fid: int, crs: OutputCrs) -> tuple[str, int | None]:
    """One feature version as GeoJSON text, and the id of the current version of the same
    feature when this one is history. A feature whose every version is closed is gone:
    ``FeatureGone`` with ``removed_at``."""
    row = _row(conn, c, fid, crs)
    if row is None:
        raise NotFound(f"{c.id} has no feature {fid}", code="unknown_feature")
    body, valid_to = row
    if not c.versioned or valid_to is None:
        return body, None
    successor = _current_successor(conn, c, fid)
    if successor is None:
        removed: datetime = _removed_at(conn, c, fid) or valid_to
        raise FeatureGone(
            f"{c.id} feature {fid} was removed at {removed.isoformat()}",
            removed_at=removed.isoformat(),
            feature_id=fid,
        )
    return body, successor


def _removed_at(conn: Connection, c: Collection, fid: int) -> datetime | None:
    table = c.base_table
    return conn.execute(
        text(
            f"SELECT max(t.valid_to) FROM {table} t JOIN {table} o ON {_identity_where(c)}"
            " WHERE o.id = :fid"
        ),
        {"fid": fid},
    ).scalar()


def versions(conn: Connection, c: Collection, fid: int, crs: OutputCrs) -> list[str]:
    """Every version of the feature ``fid`` belongs to, oldest first, as GeoJSON texts."""
    if not c.versioned:
        raise NotFound(f"{c.id} features are not versioned", code="not_versioned")
    table = c.base_table
    rows = conn.execute(
        text(
            f"SELECT {feature_sql(c, crs)} FROM {table} t JOIN {table} o"
            f" ON {_identity_where(c)} WHERE o.id = :fid ORDER BY t.valid_from, t.id"
        ),
        {"fid": fid},
    ).scalars()
    found = list(rows)
    if not found:
        raise NotFound(f"{c.id} has no feature {fid}", code="unknown_feature")
    return found
