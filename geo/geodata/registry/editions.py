"""Which edition answers: the newest, or the one in force on a date; editions listed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import NotFound
from geo.geodata.registry.agencies import require_agency

__all__ = [
    "IN_FORCE_SQL",
    "edition_in_force",
    "editions_in_force",
    "get_edition",
    "list_editions",
]

_ORDER = "coalesce(published_on, imported_at::date) DESC, id DESC"
# Each agency's edition in force on ``:as_of`` (the newest when NULL), for use in queries.
IN_FORCE_SQL = (
    "SELECT DISTINCT ON (agency) id, agency, label, published_on FROM edition"
    " WHERE CAST(:as_of AS date) IS NULL"
    "   OR coalesce(published_on, imported_at::date) <= CAST(:as_of AS date)"
    f" ORDER BY agency, {_ORDER}"
)


def edition_in_force(conn: Connection, agency: str, as_of: date | None = None) -> dict[str, Any]:
    """The agency's newest edition, or the newest published on or before ``as_of``."""
    require_agency(conn, agency)
    row = (
        conn.execute(
            text(
                "SELECT id, agency, label, published_on, published_jalali FROM edition"
                " WHERE agency = :a AND (CAST(:d AS date) IS NULL"
                "   OR coalesce(published_on, imported_at::date) <= CAST(:d AS date))"
                f" ORDER BY {_ORDER} LIMIT 1"
            ),
            {"a": agency, "d": as_of},
        )
        .mappings()
        .first()
    )
    if row is None:
        when = f" in force on {as_of}" if as_of else ""
        raise NotFound(f"{agency} has no edition{when}", code="no_edition", agency=agency)
    return dict(row)


def editions_in_force(
    conn: Connection, agencies: Sequence[str], as_of: date | None, *, skip_missing: bool
) -> list[int]:
    """The ids of ``agencies``' editions in force (see :func:`edition_in_force`). An agency
    without one is left out when ``skip_missing`` (a search over every agency), else its
    ``NotFound`` (``no_edition``, ``unknown_agency``) stands (an agency the caller named)."""
    ids = []
    for agency in agencies:
        try:
            ids.append(edition_in_force(conn, agency, as_of)["id"])
        except NotFound:
            if not skip_missing:
                raise
    return ids


def get_edition(conn: Connection, edition_id: int) -> dict[str, Any]:
    row = (
        conn.execute(
            text(
                "SELECT e.id, e.agency, e.label, e.published_on, e.published_jalali, e.source_name,"
                " e.source_checksum, e.row_count, e.imported_at, e.imported_by, e.report,"
                " (SELECT jsonb_object_agg(kind, n) FROM"
                "   (SELECT kind, count(*) n FROM division_event"
                "   WHERE to_edition_id = e.id GROUP BY kind) k) AS events"
                " FROM edition e WHERE e.id = :id"
            ),
            {"id": edition_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no edition {edition_id}", code="no_edition")
    out = dict(row)
    out["events"] = out["events"] or {}
    return out


def list_editions(conn: Connection, agency: str | None = None) -> list[dict[str, Any]]:
    rows = (
        conn.execute(
            text(
                "SELECT id, agency, label, published_on, published_jalali, source_name, row_count,"
                " imported_at FROM edition WHERE CAST(:a AS text) IS NULL OR agency = :a"
                f" ORDER BY agency, {_ORDER}"
            ),
            {"a": agency},
        )
        .mappings()
        .all()
    )
    return [dict(r) for r in rows]
