"""Resolve a code of any agency: the unit, its parents, children, history, partners.

Codes may be typed with Persian or Arabic-Indic digits, spaces or dashes; an MOI unit
also resolves by its 10-digit national id. Unknown codes raise ``NotFound`` with the
nearest existing codes as suggestions.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import InvalidParameter, NotFound
from geo.geodata.persian import is_digits, loose_key, match_key, normalize_code
from geo.geodata.registry.editions import edition_in_force
from geo.geodata.registry.lineage import gone_or_unknown
from geo.geodata.registry.partners import partners as partner_source
from geo.geodata.registry.references import clean_code, parse_unit_ref
from geo.platform.bulk import bulk
from geo.platform.database import read_rows

__all__ = ["batch_resolve", "children", "history", "partners", "resolve"]

UNIT_COLUMNS = (
    "d.code, d.level, d.name, d.parent_code, d.national_id, d.population, d.attrs,"
    " ST_X(d.point) AS lon, ST_Y(d.point) AS lat, d.polygon IS NOT NULL AS has_polygon"
)


def _suggest(conn: Connection, edition_id: int, code: str) -> list[str]:
    rows = (
        conn.execute(
            text(
                "SELECT code FROM division WHERE edition_id = :e"
                " AND (code LIKE :p OR length(code) = :n)"
                " ORDER BY levenshtein(left(code, 255), left(:c, 255)), code LIMIT 5"
            ),
            {"e": edition_id, "p": code[: max(2, len(code) - 2)] + "%", "n": len(code), "c": code},
        )
        .scalars()
        .all()
    )
    return list(rows)


def _find(conn: Connection, edition_id: int, code: str, agency: str) -> dict[str, Any] | None:
    row = (
        conn.execute(
            text(
                f"SELECT {UNIT_COLUMNS}, d.ancestors FROM division d"
                " WHERE d.edition_id = :e AND d.code = :c"
            ),
            {"e": edition_id, "c": code},
        )
        .mappings()
        .first()
    )
    if row is None and agency == "moi":
        row = (
            conn.execute(
                text(
                    f"SELECT {UNIT_COLUMNS}, d.ancestors FROM division d"
                    " WHERE d.edition_id = :e AND d.national_id = :c"
                ),
                {"e": edition_id, "c": code},
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def partners(
    conn: Connection, agency: str, code: str, run: int | None = None
) -> list[dict[str, Any]]:
    """The other agencies' units linked to this one (the crosswalk's answer) in run ``run``
    (the newest finished one when None)."""
    found = partner_source().of_units(conn, agency, [code], with_method=True, run=run)
    return found.get(code, [])


def run_built_on(conn: Connection, agency: str, edition_id: int) -> int | None:
    """The newest finished crosswalk run built on this edition of the agency, if any."""
    built = [
        r["id"] for r in partner_source().runs(conn) if r["editions"].get(agency) == edition_id
    ]
    return built[-1] if built else None


def resolve(
    conn: Connection,
    agency: str,
    code: str,
    *,
    as_of: date | None = None,
    children_limit: int = 50,
    children_offset: int = 0,
) -> dict[str, Any]:
    """The unit with its edition, parent chain, first children, identifiers and partners."""
    edition = edition_in_force(conn, agency, as_of)
    cleaned = clean_code(code)
    unit = _find(conn, edition["id"], cleaned, agency)
    if unit is None:
        why = gone_or_unknown(conn, agency, cleaned, edition["id"], as_of)
        if why is not None:  # held by another edition: replaced (410) or not yet created
            raise why
        raise NotFound(
            f"{agency} has no code {cleaned} in edition {edition['label']}",
            code="unknown_code",
            agency=agency,
            requested=cleaned,
            suggestions=_suggest(conn, edition["id"], cleaned),
        )
    # at a date, the partners of the run built on the edition then in force (if one was)
    run = run_built_on(conn, agency, edition["id"]) if as_of is not None else None
    chain = (
        conn.execute(
            text(
                "SELECT code, level, name FROM division WHERE edition_id = :e"
                " AND code = ANY(:codes) ORDER BY array_position(:codes, code)"
            ),
            {"e": edition["id"], "codes": unit.pop("ancestors")},
        )
        .mappings()
        .all()
    )
    identifiers = {"code": unit["code"]}
    if unit["national_id"]:
        identifiers["national_id"] = unit["national_id"]
    return {
        "agency": agency,
        "edition": edition,
        **unit,
        "identifiers": identifiers,
        "parents": [dict(p) for p in chain],
        "children": children(
            conn,
            agency,
            unit["code"],
            edition_id=edition["id"],
            limit=children_limit,
            offset=children_offset,
        ),
        "partners": partners(conn, agency, unit["code"], run),
        "partners_run": run,
    }


def children(
    conn: Connection,
    agency: str,
    code: str,
    *,
    edition_id: int | None = None,
    as_of: date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> dict[str, Any]:
    """One page of a unit's children, with their total."""
    if not 1 <= limit <= 1000:
        raise InvalidParameter("limit is 1 to 1000", field="limit")
    if offset < 0:
        raise InvalidParameter("offset is 0 or more", field="offset")
    edition_id = edition_id or edition_in_force(conn, agency, as_of)["id"]
    total = conn.execute(
        text("SELECT count(*) FROM division WHERE edition_id = :e AND parent_code = :c"),
        {"e": edition_id, "c": code},
    ).scalar_one()
    items = (
        conn.execute(
            text(
                "SELECT code, level, name FROM division WHERE edition_id = :e AND parent_code = :c"
                " ORDER BY code LIMIT :l OFFSET :o"
            ),
            {"e": edition_id, "c": code, "l": limit, "o": offset},
        )
        .mappings()
        .all()
    )
    return {"total": total, "offset": offset, "limit": limit, "items": [dict(i) for i in items]}


def history(conn: Connection, agency: str, code: str) -> dict[str, Any]:
    """The code in every edition of the agency, and every event that names it."""
    cleaned = clean_code(code)
    editions = (
        conn.execute(
            text(
                "SELECT e.id AS edition_id, e.label, e.published_on, d.name, d.level, d.parent_code"
                " FROM edition e LEFT JOIN division d ON d.edition_id = e.id AND d.code = :c"
                " WHERE e.agency = :a ORDER BY coalesce(e.published_on, e.imported_at::date), e.id"
            ),
            {"a": agency, "c": cleaned},
        )
        .mappings()
        .all()
    )
    if not any(e["name"] for e in editions):
        raise NotFound(
            f"{agency} has never had code {cleaned}",
            code="unknown_code",
            agency=agency,
            requested=cleaned,
        )
    events = (
        conn.execute(
            text(
                "SELECT ev.kind, ev.codes_before, ev.codes_after, ev.detail, ev.from_edition_id,"
                " ev.to_edition_id, e.label AS to_label FROM division_event ev"
                " JOIN edition e ON e.id = ev.to_edition_id"
                " WHERE ev.agency = :a AND (:c = ANY(ev.codes_before) OR :c = ANY(ev.codes_after))"
                " ORDER BY coalesce(e.published_on, e.imported_at::date), ev.id"
            ),
            {"a": agency, "c": cleaned},
        )
        .mappings()
        .all()
    )
    return {
        "agency": agency,
        "code": cleaned,
        "editions": [{**dict(e), "present": e["name"] is not None} for e in editions],
        "events": [dict(e) for e in events],
    }


@bulk
def batch_resolve(
    conn: Connection,
    agency: str,
    codes: list[str],
    *,
    as_of: date | None = None,
    with_partners: bool = True,
) -> dict[str, Any]:
    """Resolve many codes of one agency; results keep the input's order.

    Each distinct code is looked up once (tables repeat codes): one hash join on the code,
    then, for MOI, the codes still missing by national id; partners once per unit found."""
    edition = edition_in_force(conn, agency, as_of)
    cleaned = [normalize_code(str(c)) for c in codes]
    wanted = [c for c in dict.fromkeys(cleaned) if is_digits(c)]
    columns = "d.code, d.level, d.name, d.parent_code, d.national_id"
    units = {
        r[0]: r
        for r in _rows_of(
            conn,
            f"SELECT {columns} FROM unnest(string_to_array(:codes, ',')) AS q(code)"
            " JOIN division d ON d.edition_id = :e AND d.code = q.code",
            {"codes": ",".join(wanted), "e": edition["id"]},
        )
    }
    missing = [c for c in wanted if c not in units]
    if agency == "moi" and missing:  # an MOI unit also answers to its national id
        for r in _rows_of(
            conn,
            f"SELECT {columns} FROM division d WHERE d.edition_id = :e"
            " AND d.national_id = ANY(string_to_array(:codes, ',')) ORDER BY d.code",
            {"codes": ",".join(missing), "e": edition["id"]},
        ):
            units.setdefault(r[4], r)
    links = (
        partner_source().of_units(conn, agency, sorted({r[0] for r in units.values()}))
        if with_partners
        else {}
    )
    answers: dict[str, dict[str, Any]] = {}
    for asked, (code, level, name, parent, national_id) in units.items():
        answers[asked] = {
            "status": "found",
            "code": code,
            "level": level,
            "name": name,
            "parent_code": parent,
            "national_id": national_id,
            "partners": links.get(code, []),
        }
    results: list[dict[str, Any]] = []
    for given, clean in zip(codes, cleaned, strict=True):
        found = answers.get(clean)
        if found is None:
            status = "not_found" if is_digits(clean) else "malformed"
            results.append({"input": given, "status": status})
        else:
            results.append({"input": given, **found})
    return {
        "agency": agency,
        "edition": edition,
        "count": len(results),
        "found": sum(1 for c in cleaned if c in answers),
        "results": results,
    }


def _rows_of(conn: Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    return read_rows(conn, sql, params)


def batch_resolve_names(
    conn: Connection,
    agency: str,
    names: list[str],
    *,
    level: str | None = None,
    within: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """Resolve many names of one agency in one query, through the Persian keys.

    Each name is ``found`` (one unit with the same match key, else one with the same loose
    key), ``ambiguous`` (several: homonyms; the candidates are listed, none is chosen) or
    ``not_found``. ``level`` and ``within`` (``AGENCY:CODE``) narrow the candidates.
    """
    edition = edition_in_force(conn, agency, as_of)
    scope = None
    if within:
        scope_agency, scope = parse_unit_ref(within, "within")
        if scope_agency != agency:
            raise InvalidParameter("within must name a unit of the same agency", field="within")
    keys = [match_key(n) for n in names]
    looses = [loose_key(n) for n in names]
    rows = conn.execute(
        text(
            "SELECT q.i, d.code, d.level, d.name, d.parent_code, d.name_key = q.k AS exact"
            " FROM unnest(CAST(:keys AS text[]), CAST(:looses AS text[])) WITH ORDINALITY"
            "   AS q(k, l, i)"
            " JOIN division d ON d.edition_id = :e AND (d.name_key = q.k OR d.name_loose = q.l)"
            " WHERE (CAST(:level AS text) IS NULL OR d.level = :level)"
            " AND (CAST(:scope AS text) IS NULL OR d.ancestors @> ARRAY[CAST(:scope AS text)])"
            " ORDER BY q.i, exact DESC, d.code"
        ),
        {"keys": keys, "looses": looses, "e": edition["id"], "level": level, "scope": scope},
    ).all()
    hits: dict[int, list[Any]] = {}
    for r in rows:
        hits.setdefault(r.i, []).append(r)
    results: list[dict[str, Any]] = []
    for i, name in enumerate(names, start=1):
        found = hits.get(i, [])
        best = [r for r in found if r.exact] or found
        if not best:
            results.append({"input": name, "status": "not_found"})
        elif len(best) == 1:
            r = best[0]
            results.append(
                {
                    "input": name,
                    "status": "found",
                    "code": r.code,
                    "level": r.level,
                    "name": r.name,
                    "parent_code": r.parent_code,
                    "match": "name" if r.exact else "variant",
                }
            )
        else:
            results.append(
                {
                    "input": name,
                    "status": "ambiguous",
                    "candidates": [
                        {
                            "code": r.code,
                            "level": r.level,
                            "name": r.name,
                            "parent_code": r.parent_code,
                        }
                        for r in best[:20]
                    ],
                }
            )
    found_n = sum(1 for x in results if x["status"] == "found")
    return {
        "agency": agency,
        "edition": edition,
        "count": len(results),
        "found": found_n,
        "results": results,
    }
