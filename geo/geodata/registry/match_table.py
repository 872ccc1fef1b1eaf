"""A user's table (CSV or XLSX) matched row by row (`matching`), answered as the same table
with result columns added: CSV stays CSV (UTF-8 with a BOM, for Excel), XLSX stays XLSX,
Persian as typed.

Columns play roles (:data:`~geo.geodata.registry.matching.COLUMNS`, ``code``, and another
agency's code as ``moi_code``/``sci_code``/``hf_code``, projected to the agency), named
by the user (``{"county": "شهرستان", …}``, by header or 1-based number) or recognised from
common headers in Persian or English.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection

from geo.errors import ValidationError
from geo.geodata.persian import is_digits, match_key, normalize_code
from geo.geodata.registry.formats import XLSX_MEDIA, column_index, read_table, write_csv, write_xlsx
from geo.geodata.registry.matching import COLUMNS, MAX_CANDIDATES, Match, Matcher
from geo.geodata.registry.partners import partners
from geo.geodata.registry.projection import project_many
from geo.models.crosswalk import LINK_AGENCIES
from geo.platform.bulk import bulk
from geo.platform.database import read_rows

__all__ = ["RESULT_COLUMNS", "ROLES", "MatchedTable", "match_table"]

FOREIGN = tuple(f"{a}_code" for a in LINK_AGENCIES)  # another agency's code, projected
ROLES = (*COLUMNS, "code", *FOREIGN)
RESULT_COLUMNS = (
    "match_status",
    "match_code",
    "match_name",
    "match_level",
    "match_score",
    "match_evidence",
    *(f"{a}_code" for a in LINK_AGENCIES),
    "match_candidates",
)
# Headers recognised when the user names no column (compared by their match keys).
_HEADERS = {
    "province": ("province", "استان", "نام استان", "ostan"),
    "county": ("county", "شهرستان", "نام شهرستان", "shahrestan"),
    "district": ("district", "بخش", "نام بخش", "bakhsh"),
    "rural": ("rural", "rural district", "دهستان", "نام دهستان", "dehestan"),
    "place": ("place", "village", "city", "آبادی", "روستا", "شهر", "نام آبادی", "نام روستا", "نام"),
    "code": ("code", "کد", "کد آبادی"),
}


@dataclass
class MatchedTable:
    body: bytes
    media_type: str
    extension: str
    summary: dict[str, int]
    columns: dict[str, str]  # role → the header it was read from


@bulk
def match_table(
    conn: Connection,
    raw: bytes,
    agency: str,
    columns: Mapping[str, str] | None = None,
    *,
    as_of: date | None = None,
    progress: Callable[[int, int], None] | None = None,
    fmt: str | None = None,
) -> MatchedTable:
    """Match every row of ``raw`` to ``agency``'s units (the edition in force on ``as_of``);
    answered as ``fmt`` (``csv`` or ``xlsx``; by default as the table came)."""
    table = read_table(raw)
    if len(table) < 2:
        raise ValidationError("the table has no rows under its header", code="empty_table")
    header, rows = table[0], table[1:]
    where = _columns(header, columns or {})
    matcher = Matcher(conn, agency, as_of)
    matches: list[Match] = []
    for i, row in enumerate(rows, start=1):
        asked = {role: (row[at] if at < len(row) else "") for role, at in where.items()}
        matches.append(matcher.match(asked))
        if progress is not None and (i % 1000 == 0 or i == len(rows)):
            progress(i, len(rows))
    _by_foreign_codes(conn, agency, rows, where, matches, as_of)
    codes = _codes_everywhere(conn, agency, sorted({m.code for m in matches if m.code}))
    added = [_result_cells(m, codes) for m in matches]
    summary = dict(Counter(m.status for m in matches))
    named = {role: header[at] for role, at in where.items()}
    full = [header + list(RESULT_COLUMNS), *(r + a for r, a in zip(rows, added, strict=True))]
    if (fmt or ("xlsx" if raw.startswith(b"PK\x03\x04") else "csv")) == "xlsx":
        return MatchedTable(write_xlsx({"matched": full}), XLSX_MEDIA, "xlsx", summary, named)
    return MatchedTable(write_csv(full), "text/csv; charset=utf-8", "csv", summary, named)


def _columns(header: list[str], asked: Mapping[str, str]) -> dict[str, int]:
    """Each role's column index: as the user named it (header text or 1-based number),
    else recognised from the header; at least one name or the code is needed."""
    keys = [match_key(h) for h in header]
    found: dict[str, int] = {}
    for role, name in asked.items():
        if not name:
            continue
        if role not in ROLES:
            raise ValidationError(
                f"{role!r} is not a column role; use {', '.join(ROLES)}", code="unknown_role"
            )
        found[role] = column_index(header, name, role)
    if not found:
        for role, words in _HEADERS.items():
            for word in words:
                if match_key(word) in keys and role not in found:
                    found[role] = keys.index(match_key(word))
    if not any(r in found for r in ROLES):
        raise ValidationError(
            "no column names a place or a code; say which (e.g. place=نام آبادی)",
            code="no_columns",
        )
    return found


def _by_foreign_codes(
    conn: Connection,
    agency: str,
    rows: list[list[str]],
    where: dict[str, int],
    matches: list[Match],
    as_of: date | None,
) -> None:
    """Rows with another agency's code: that code projected to ``agency`` (its events and
    the crosswalk) decides, unless the row's own code already did."""
    for role in FOREIGN:
        other = role.removesuffix("_code")
        if role not in where or other == agency:
            continue
        at = where[role]
        given = [normalize_code(r[at]) if at < len(r) else "" for r in rows]
        wanted = sorted({c for c in given if is_digits(c)})
        if not wanted:
            continue
        _, projected = project_many(conn, other, wanted, agency, at=as_of, to_date=as_of)
        for i, code in enumerate(given):
            units = projected.get(code, [])
            if not units or matches[i].by_code:
                continue
            if len(units) == 1:
                unit = units[0]
                said = f"{other} code {code} is linked to «{unit['name']}»"
                matches[i] = Match("exact", unit["code"], unit["name"], unit["level"], 0.95, said)
            else:
                matches[i] = Match(
                    "ambiguous",
                    score=0.5,
                    evidence=f"{other} code {code} is linked to {len(units)} units",
                    candidates=[
                        {"code": u["code"], "name": u.get("name"), "level": u.get("level")}
                        for u in units[:MAX_CANDIDATES]
                    ],
                )


def _codes_everywhere(
    conn: Connection, agency: str, codes: list[str]
) -> dict[str, dict[str, list[str]]]:
    """Each chosen unit's codes in every agency (the crosswalk's accepted links)."""
    if not codes:
        return {}
    crosswalk = partners()
    units = crosswalk.units_sql("CAST(:a AS text)", "q.code", crosswalk.latest_run_sql())
    found: dict[str, dict[str, list[str]]] = {c: {} for c in codes}
    for code, other, other_code in read_rows(
        conn,
        "SELECT q.code, u.agency, u.code FROM unnest(string_to_array(:c, ',')) AS q(code)"
        f" CROSS JOIN LATERAL ({units}) u ORDER BY 1, 2, 3",
        {"a": agency, "c": ",".join(codes)},
    ):
        found[code].setdefault(other, []).append(other_code)
    return found


def _candidate(c: dict[str, Any]) -> str:
    """``code name (parents)``: a candidate as a person tells homonyms apart."""
    parents = " › ".join(c.get("parents") or [])
    return f"{c['code']} {c['name']}" + (f" ({parents})" if parents else "")


def _result_cells(m: Match, codes: dict[str, dict[str, list[str]]]) -> list[str]:
    everywhere = codes.get(m.code or "", {})
    return [
        m.status,
        m.code or "",
        m.name or "",
        m.level or "",
        f"{m.score:.3f}",
        m.evidence,
        *(" | ".join(everywhere.get(a, [])) for a in LINK_AGENCIES),
        " | ".join(_candidate(c) for c in m.candidates),
    ]
