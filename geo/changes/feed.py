"""The change feed: every change in commit order, never missed, never seen twice.

A change row records the writing transaction (``txid``). A reader is given only the rows of
transactions older than the oldest one still running (``pg_snapshot_xmin`` of its
snapshot): those are finished, so no row can appear behind the reader's cursor later.
Sequence numbers alone would not do: a later number can commit first.

The feed is read from ``change_event`` (migration 0013): a row of one entity is one event,
a parcel change set (one village, one operation) is one event per parcel. Events are
ordered by (txid, id, part) and the cursor is the last one returned, opaque to clients.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import GeoError, InvalidParameter, ValidationError
from geo.geodata.registry.editions import IN_FORCE_SQL
from geo.geodata.registry.partners import partners
from geo.models.changes import ENTITY_KINDS

__all__ = ["daily_digest", "decode_cursor", "encode_cursor", "feed_position", "read_changes"]

CURSOR_PATTERN = r"^[A-Za-z0-9_-]*$"  # how a cursor is written (unpadded base64url)
WHOLE = 2**62  # the part of a cursor that names a change row as a whole: every part read


def encode_cursor(txid: int, change_id: int, part: int = WHOLE) -> str:
    raw = f"{txid}.{change_id}" if part >= WHOLE else f"{txid}.{change_id}.{part}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[int, int, int]:
    """(txid, id, part) of a cursor; the start of the feed for None or ''. A cursor of
    (txid, id) alone — a change row read whole — has part ``WHOLE``."""
    if not cursor:
        return 0, 0, 0
    if re.fullmatch(CURSOR_PATTERN, cursor) is None:
        raise InvalidParameter("since is a cursor this service gave", field="since")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        parts = [int(v) for v in raw.split(".")]
        if len(parts) not in (2, 3):
            raise ValueError(raw)
        out = (parts[0], parts[1], parts[2] if len(parts) == 3 else WHOLE)
    except (ValueError, UnicodeDecodeError):
        raise _not_ours() from None
    if min(out) < 0 or out[0] >= 2**63 or out[2] > WHOLE:
        raise _not_ours()
    return out


def feed_position(conn: Connection) -> str:
    """The cursor of ``conn``'s snapshot: every change of a transaction older than the
    snapshot's oldest running one (its xmin) lies at or before it. Changes after it may
    include a few the snapshot already sees (transactions that finished after xmin): a copy
    made from the snapshot sets each entity to its ``after``, so twice is once."""
    xmin = conn.execute(
        text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
    ).scalar_one()
    return encode_cursor(int(xmin), 0, 0)


def _not_ours() -> ValidationError:
    """Text written like a cursor that no cursor of ours decodes to (422)."""
    return ValidationError(
        "since is a cursor this service gave", code="invalid_cursor", field="since"
    )


def within_filter(conn: Connection, within: tuple[str, str] | None) -> tuple[str, dict[str, Any]]:
    """SQL keeping the changes inside a division, by code and by place.

    By code: the division's code and its counterparts in the other agencies (through the
    crosswalk) are prefixes — SCI and MOI codes nest, so ``sci:2304`` takes in every SCI
    unit of that county, and a parcel or plan change of village ``hf:X`` is inside
    ``hf:X``. By place: where the registry has the division's boundary, any change whose
    geometry (after, or before for a removal) intersects it.
    """
    if within is None:
        return "TRUE", {}
    agency, code = within
    pairs = sorted(partners().equivalent_codes(conn, agency, code))
    boundary = conn.execute(
        text(
            "SELECT ST_AsBinary(ST_Union(d.polygon)) FROM division d"
            " JOIN edition e ON e.id = d.edition_id"
            " WHERE d.polygon IS NOT NULL AND (e.agency, d.code) IN"
            "  (SELECT * FROM unnest(CAST(:a AS text[]), CAST(:c AS text[])))"
            f" AND d.edition_id IN (SELECT id FROM ({IN_FORCE_SQL}) e)"
        ),
        {"a": [a for a, _ in pairs], "c": [c for _, c in pairs], "as_of": None},
    ).scalar()
    sql = (
        "EXISTS (SELECT 1 FROM unnest(CAST(:w_prefixes AS text[])) p"
        "  WHERE (':' || replace(entity_id, '~', ':')) LIKE '%:' || p || '%')"
        " OR (CAST(:w_boundary AS bytea) IS NOT NULL"
        "  AND ST_Intersects(ST_GeomFromWKB(CAST(:w_boundary AS bytea), 4326), geom))"
    )
    return sql, {
        "w_prefixes": [f"{a}:{c}" for a, c in pairs],
        "w_boundary": bytes(boundary) if boundary is not None else None,
    }


def _feed(
    conn: Connection,
    since: str | None,
    kinds: list[str] | None,
    limit: int,
    bbox: tuple[float, float, float, float] | None,
    within: tuple[str, str] | None,
    upload: int | None = None,
) -> tuple[str, dict[str, Any], tuple[int, int, int]]:
    """The feed's selection: FROM/WHERE/ORDER/LIMIT SQL, its parameters, the cursor asked."""
    if kinds:
        unknown = sorted(set(kinds) - set(ENTITY_KINDS))
        if unknown:
            raise InvalidParameter(
                f"unknown kinds {', '.join(unknown)}; kinds are {', '.join(ENTITY_KINDS)}",
                field="kinds",
            )
    if not 1 <= limit <= 10_000:
        raise InvalidParameter("limit is 1 to 10000", field="limit")
    txid, change_id, part = decode_cursor(since)
    where_within, within_params = within_filter(conn, within)
    sql = (
        "FROM change_event"
        " WHERE txid < pg_snapshot_xmin(pg_current_snapshot())"
        # the first condition is the index's; the second reads on inside a change set
        " AND (txid, id) >= (CAST(:t AS text)::xid8, :i)"
        " AND (txid, id, part) > (CAST(:t AS text)::xid8, :i, :k)"
        " AND (CAST(:kinds AS text[]) IS NULL"
        "  OR entity_kind = ANY(CAST(:kinds AS text[])))"
        " AND (CAST(:x1 AS float8) IS NULL OR ST_Intersects("
        "  ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326), geom))"
        f" AND ({where_within})"
        " AND (CAST(:upload AS text) IS NULL OR cause->>'upload' = CAST(:upload AS text))"
        " ORDER BY txid, id, part LIMIT :l"
    )
    params = {
        "t": str(txid),
        "i": change_id,
        "k": part,
        "kinds": kinds or None,
        "l": limit,
        **dict(zip(("x1", "y1", "x2", "y2"), bbox or (None,) * 4, strict=True)),
        **within_params,
        "upload": str(upload) if upload is not None else None,
    }
    return sql, params, (txid, change_id, part)


def _event_cursor(txid: int, change_id: int, part: int) -> str:
    return encode_cursor(txid, change_id, part if part else WHOLE)


def read_changes(
    conn: Connection,
    since: str | None = None,
    *,
    kinds: list[str] | None = None,
    limit: int = 100,
    bbox: tuple[float, float, float, float] | None = None,
    within: tuple[str, str] | None = None,
    upload: int | None = None,
) -> dict[str, Any]:
    """Up to ``limit`` finished changes after ``since``, and the cursor to continue from.

    ``bbox`` (lon/lat) keeps the changes whose geometry, before or after, touches it.
    ``within`` (agency, code) keeps the changes of that division and what lies in it: see
    :func:`within_filter`. ``upload`` keeps the changes an upload published.
    """
    sql, params, asked = _feed(conn, since, kinds, limit, bbox, within, upload)
    rows = (
        conn.execute(
            text(
                "SELECT id, part, txid::text::bigint AS txid, entity_kind, entity_id, operation,"
                f" occurred_at, cause, before, after {sql}"
            ),
            params,
        )
        .mappings()
        .all()
    )
    changes = [dict(r) for r in rows]
    last = (changes[-1]["txid"], changes[-1]["id"], changes[-1]["part"]) if changes else None
    for c in changes:
        c["cursor"] = _event_cursor(c.pop("txid"), c["id"], c.pop("part"))
    return {
        "count": len(changes),
        "changes": changes,
        "next": _event_cursor(*last) if last else encode_cursor(*asked),
    }


def read_changes_json(
    conn: Connection,
    since: str | None = None,
    *,
    kinds: list[str] | None = None,
    limit: int = 100,
    bbox: tuple[float, float, float, float] | None = None,
    within: tuple[str, str] | None = None,
    upload: int | None = None,
) -> str:
    """:func:`read_changes` as JSON text written by PostgreSQL (what ``GET /changes`` sends):
    the same page, without turning every change into Python objects and back."""
    sql, params, asked = _feed(conn, since, kinds, limit, bbox, within, upload)
    body, count, last = conn.execute(
        text(
            "SELECT coalesce(string_agg(j, ',' ORDER BY txid, id, part), ''), count(*),"
            " (array_agg(txid::text || '.' || id || '.' || part"
            "  ORDER BY txid DESC, id DESC, part DESC))[1] FROM ("
            " SELECT txid, id, part, json_build_object('id', id, 'entity_kind', entity_kind,"
            "  'entity_id', entity_id, 'operation', operation, 'occurred_at', occurred_at,"
            "  'cause', cause, 'before', before, 'after', after,"
            "  'cursor', rtrim(translate(encode(convert_to(txid::text || '.' || id"
            "  || CASE WHEN part > 0 THEN '.' || part ELSE '' END, 'UTF8'),"
            "  'base64'), '+/', '-_'), '='))::text AS j"
            f" {sql}) c"
        ),
        params,
    ).one()
    if last:
        txid, change_id, part = (int(v) for v in last.split("."))
        cursor = _event_cursor(txid, change_id, part)
    else:
        cursor = encode_cursor(*asked)
    return f'{{"count":{count},"changes":[{body}],"next":"{cursor}"}}'


def daily_digest(
    conn: Connection, day: str, *, limit: int = 1000, offset: int = 0
) -> dict[str, Any]:
    """The changes of one Jalali day (Tehran time): counts by kind and operation, and a page
    of the changes themselves."""
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    from geo.geodata.dates import DATE_PATTERN, jalali, parse_date

    if re.fullmatch(DATE_PATTERN, day.strip()) is None:
        raise InvalidParameter("the day is a Jalali date, e.g. 1403-05-12", field="day")
    try:
        gregorian = parse_date(day)
    except GeoError as exc:  # written as a date, but no such day
        raise ValidationError(exc.message, code="invalid_date", field="day") from None
    tehran = ZoneInfo("Asia/Tehran")
    start = datetime.combine(gregorian, time.min, tzinfo=tehran)
    end = start + timedelta(days=1)
    params = {"s": start, "e": end, "l": limit, "o": offset}
    finished = (
        "occurred_at >= :s AND occurred_at < :e AND txid < pg_snapshot_xmin(pg_current_snapshot())"
    )
    counts = conn.execute(
        text(
            "SELECT entity_kind, operation,"
            " sum(coalesce(cardinality(coalesce(after_ids, before_ids)), 1))::bigint"
            f" FROM change WHERE {finished} GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        params,
    ).all()
    rows = (
        conn.execute(
            text(
                "SELECT id, entity_kind, entity_id, operation, occurred_at, cause, before, after"
                f" FROM change_event WHERE {finished} ORDER BY txid, id, part LIMIT :l OFFSET :o"
            ),
            params,
        )
        .mappings()
        .all()
    )
    by_kind: dict[str, dict[str, int]] = {}
    for kind, operation, n in counts:
        by_kind.setdefault(kind, {})[operation] = n
    return {
        "day": jalali(gregorian),
        "gregorian": gregorian.isoformat(),
        "total": sum(n for _, _, n in counts),
        "counts": by_kind,
        "offset": offset,
        "limit": limit,
        "changes": [dict(r) for r in rows],
    }
