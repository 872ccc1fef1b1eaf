"""Export a run or release: one row per link, MOI as the reference, CSV (UTF-8 with BOM) or XLSX.

Columns: level, moi_code, moi_national_id, moi_name, sci_code, sci_name, hf_code, hf_name,
relation, confidence, method, status. An MOI unit linked to both an SCI and an HF unit is
one row; a unit with no counterpart is a row with only its own code (status
``unmatched``). Rejected links are left out.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, text

from crosswalk.errors import NoRun
from geo.models.registry import LEVELS

__all__ = ["COLUMNS", "export_rows", "to_csv", "to_xlsx"]

COLUMNS = [
    "level",
    "moi_code",
    "moi_national_id",
    "moi_name",
    "sci_code",
    "sci_name",
    "hf_code",
    "hf_name",
    "relation",
    "confidence",
    "method",
    "status",
]
_RANK = {"rejected": 3, "needs_review": 2, "auto": 1, "confirmed": 0}
_LEVELS = {level: i for i, level in enumerate(LEVELS)}  # listing order


def _units(conn: Connection, edition_id: int | None) -> dict[str, tuple[str, str, str | None]]:
    if edition_id is None:
        return {}
    rows = conn.execute(
        text(
            "SELECT code, level, name, national_id FROM division WHERE edition_id = :e"
            " AND NOT coalesce((attrs->>'farm_point')::boolean, false)"
        ),
        {"e": edition_id},
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def export_rows(conn: Connection, run_id: int) -> Iterator[dict[str, Any]]:
    """The export's rows for ``run_id``, MOI units in code order, then the unmatched others."""
    run = conn.execute(
        text(
            "SELECT moi_edition_id, sci_edition_id, hf_edition_id FROM crosswalk_run"
            " WHERE id = :r AND status = 'finished'"
        ),
        {"r": run_id},
    ).first()
    if run is None:
        raise NoRun(f"no finished crosswalk run {run_id}", code="no_crosswalk_run")
    moi, sci, hf = (_units(conn, e) for e in run)
    partners: dict[str, dict[str, list[Any]]] = defaultdict(lambda: {"sci": [], "hf": []})
    linked: dict[str, set[str]] = {"sci": set(), "hf": set()}
    for r in conn.execute(
        text(
            "SELECT moi_code, sci_code, hf_code, relation, confidence, method, status"
            " FROM crosswalk_link WHERE run_id = :r AND status <> 'rejected'"
            " ORDER BY moi_code, sci_code, hf_code"
        ),
        {"r": run_id},
    ):
        agency = "sci" if r.sci_code else "hf"
        code = r.sci_code or r.hf_code
        partners[r.moi_code][agency].append((code, r.relation, r.confidence, r.method, r.status))
        linked[agency].add(code)
    for code in sorted(moi, key=lambda c: (_LEVELS.get(moi[c][0], 9), c)):
        level, name, nid = moi[code]
        sides = partners.get(code, {"sci": [], "hf": []})
        for s in sides["sci"] or [None]:
            for h in sides["hf"] or [None]:
                parts = [p for p in (s, h) if p]
                if not parts:
                    yield {
                        "level": level,
                        "moi_code": code,
                        "moi_national_id": nid or "",
                        "moi_name": name,
                        "sci_code": "",
                        "sci_name": "",
                        "hf_code": "",
                        "hf_name": "",
                        "relation": "",
                        "confidence": "",
                        "method": "",
                        "status": "unmatched",
                    }
                    continue
                worst = max(parts, key=lambda p: _RANK[p[4]])
                relation = next((p[1] for p in parts if p[1] != "same"), "same")
                yield {
                    "level": level,
                    "moi_code": code,
                    "moi_national_id": nid or "",
                    "moi_name": name,
                    "sci_code": s[0] if s else "",
                    "sci_name": sci.get(s[0], ("", ""))[1] if s else "",
                    "hf_code": h[0] if h else "",
                    "hf_name": hf.get(h[0], ("", ""))[1] if h else "",
                    "relation": relation,
                    "confidence": round(min(p[2] for p in parts), 3),
                    "method": min(parts, key=lambda p: p[2])[3],
                    "status": worst[4],
                }
    for agency, units in (("sci", sci), ("hf", hf)):
        for code in sorted(units, key=lambda c: (_LEVELS.get(units[c][0], 9), c)):
            if code not in linked[agency]:
                level, name, _ = units[code]
                row = dict.fromkeys(COLUMNS, "")
                row.update(
                    {
                        "level": level,
                        f"{agency}_code": code,
                        f"{agency}_name": name,
                        "status": "unmatched",
                    }
                )
                yield row


def to_csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """CSV text in chunks, starting with a BOM so Excel shows Persian."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\r\n")
    buf.write("\ufeff")
    writer.writeheader()
    for i, row in enumerate(rows, start=1):
        writer.writerow(row)
        if i % 2000 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def to_xlsx(rows: Iterator[dict[str, Any]]) -> bytes:
    """An XLSX workbook (write-only, so memory stays flat) with one sheet."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("crosswalk")
    sheet.append(COLUMNS)
    for row in rows:
        sheet.append([row[c] for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
