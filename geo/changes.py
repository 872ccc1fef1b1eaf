"""The change feed: every change in commit order, never missed, never seen twice.

A change row records the writing transaction (``txid``). A reader is given only the rows of
transactions older than the oldest one still running (``pg_snapshot_xmin`` of its
snapshot): those are finished, so no row can appear behind the reader's cursor later. Rows
are ordered by (txid, id) and the cursor is the last (txid, id) returned, opaque to clients.
Sequence numbers alone would not do: a later number can commit first.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import GeoError, InvalidParameter
from geo.models.changes import ENTITY_KINDS

__all__ = ["daily_digest", "decode_cursor", "encode_cursor", "read_changes"]


def encode_cursor(txid: int, change_id: int) -> str:
    return base64.urlsafe_b64encode(f"{txid}.{change_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[int, int]:
    """(txid, id) of a cursor; the start of the feed for None or ''."""
    if not cursor:
        return 0, 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        txid, change_id = raw.split(".")
        out = int(txid), int(change_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidParameter("since is a cursor this service gave", field="since") from None
    if out[0] < 0 or out[1] < 0 or out[0] >= 2**63:
        raise InvalidParameter("since is a cursor this service gave", field="since")
    return out


def read_changes(
    conn: Connection,
    since: str | None = None,
    *,
    kinds: list[str] | None = None,
    limit: int = 100,
    bbox: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """Up to ``limit`` finished changes after ``since``, and the cursor to continue from.

    ``bbox`` (lon/lat) keeps the changes whose geometry, before or after, touches it.
    """
    if kinds:
        unknown = sorted(set(kinds) - set(ENTITY_KINDS))
        if unknown:
            raise InvalidParameter(
                f"unknown kinds {', '.join(unknown)}; kinds are {', '.join(ENTITY_KINDS)}",
                field="kinds",
            )
    if not 1 <= limit <= 10_000:
        raise InvalidParameter("limit is 1 to 10000", field="limit")
    txid, change_id = decode_cursor(since)
    rows = (
        conn.execute(
            text(
                "SELECT id, txid::text::bigint AS txid, entity_kind, entity_id, operation,"
                " occurred_at, cause, before, after FROM change"
                " WHERE txid < pg_snapshot_xmin(pg_current_snapshot())"
                " AND (txid, id) > (CAST(:t AS text)::xid8, :i)"
                " AND (CAST(:kinds AS text[]) IS NULL"
                "  OR entity_kind = ANY(CAST(:kinds AS text[])))"
                " AND (CAST(:x1 AS float8) IS NULL OR ST_Intersects("
                "  ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326),"
                "  ST_SetSRID(ST_GeomFromGeoJSON(coalesce(after, before)->'geometry'), 4326)))"
                " ORDER BY txid, id LIMIT :l"
            ),
            {
                "t": str(txid),
                "i": change_id,
                "kinds": kinds or None,
                "l": limit,
                **dict(zip(("x1", "y1", "x2", "y2"), bbox or (None,) * 4, strict=True)),
            },
        )
        .mappings()
        .all()
    )
    changes = [dict(r) for r in rows]
    last = (changes[-1]["txid"], changes[-1]["id"]) if changes else (txid, change_id)
    for c in changes:
        c["cursor"] = encode_cursor(c.pop("txid"), c["id"])
    return {"count": len(changes), "changes": changes, "next": encode_cursor(*last)}


def daily_digest(
    conn: Connection, day: str, *, limit: int = 1000, offset: int = 0
) -> dict[str, Any]:
    """The changes of one Jalali day (Tehran time): counts by kind and operation, and a page
    of the changes themselves."""
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    from geo.dates import jalali, parse_date

    try:
        gregorian = parse_date(day)
    except GeoError:
        raise InvalidParameter("the day is a Jalali date, e.g. 1403-05-12", field="day") from None
    tehran = ZoneInfo("Asia/Tehran")
    start = datetime.combine(gregorian, time.min, tzinfo=tehran)
    end = start + timedelta(days=1)
    params = {"s": start, "e": end, "l": limit, "o": offset}
    finished = (
        "occurred_at >= :s AND occurred_at < :e AND txid < pg_snapshot_xmin(pg_current_snapshot())"
    )
    counts = conn.execute(
        text(
            f"SELECT entity_kind, operation, count(*) FROM change WHERE {finished}"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        params,
    ).all()
    rows = (
        conn.execute(
            text(
                f"SELECT id, entity_kind, entity_id, operation, occurred_at, cause, before, after"
                f" FROM change WHERE {finished} ORDER BY txid, id LIMIT :l OFFSET :o"
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
