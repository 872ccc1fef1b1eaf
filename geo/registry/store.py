"""Store an agency's list as a new edition, all or nothing, fast (PostgreSQL COPY)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import text

from geo.db import engine
from geo.errors import ValidationError
from geo.models.registry import LEVELS
from geo.persian import match_key
from geo.registry.formats import DivisionRow, decode, read_rows

__all__ = ["ImportResult", "import_edition"]


@dataclass
class ImportResult:
    """What an import did. ``created`` is False when the same file was already imported."""

    edition_id: int
    agency: str
    label: str
    format: str
    created: bool
    counts: dict[str, int] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> str:
        if not self.created:
            return (
                f"{self.agency} {self.label}: this file is already edition {self.edition_id};"
                " nothing done"
            )
        levels = ", ".join(f"{n} {lvl}" for lvl, n in self.counts.items())
        extra = f"; {len(self.skipped)} rows skipped" if self.skipped else ""
        head = f"{self.agency} {self.label} ({self.format}) → edition {self.edition_id}"
        return f"{head}: {levels}{extra}"


def _check(rows: list[DivisionRow]) -> tuple[list[DivisionRow], list[dict[str, Any]]]:
    """Drop exact duplicates (reported); refuse anything else that is wrong."""
    seen: dict[str, DivisionRow] = {}
    kept: list[DivisionRow] = []
    skipped: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for row in rows:
        if not row.code.isdigit():
            problems.append({"line": row.line, "code": "malformed_code", "value": row.code})
        elif row.level not in LEVELS:
            problems.append({"line": row.line, "code": "unknown_level", "value": row.level})
        elif not row.name:
            problems.append({"line": row.line, "code": "empty_name", "value": row.code})
        elif row.code in seen:
            first = seen[row.code]
            same = (first.name, first.level, first.parent_code, first.national_id) == (
                row.name,
                row.level,
                row.parent_code,
                row.national_id,
            )
            if same:
                skipped.append(
                    {
                        "line": row.line,
                        "code": "duplicate_row",
                        "value": row.code,
                        "first_line": first.line,
                    }
                )
            else:
                problems.append(
                    {
                        "line": row.line,
                        "code": "duplicate_code",
                        "value": row.code,
                        "first_line": first.line,
                    }
                )
        else:
            seen[row.code] = row
            kept.append(row)
    for row in kept:
        if row.parent_code and row.parent_code not in seen:
            problems.append({"line": row.line, "code": "unknown_parent", "value": row.parent_code})
    if problems:
        raise ValidationError(
            f"{len(problems)} rows are wrong; nothing was stored",
            code="invalid_rows",
            problems=json.dumps(problems[:50], ensure_ascii=False),
        )
    return kept, skipped


def import_edition(
    url: str,
    agency: str,
    label: str,
    raw: bytes,
    *,
    source_name: str | None = None,
    published_on: date | None = None,
    fmt: str | None = None,
    imported_by: str | None = None,
) -> ImportResult:
    """Import one list file as edition ``label`` of ``agency`` in one transaction."""
    checksum = hashlib.sha256(raw).hexdigest()
    found_fmt, rows = read_rows(decode(raw), fmt)
    with engine(url).begin() as conn:
        same = conn.execute(
            text("SELECT id, label FROM edition WHERE agency = :a AND source_checksum = :c"),
            {"a": agency, "c": checksum},
        ).first()
        if same:
            return ImportResult(same.id, agency, same.label, found_fmt, created=False)
        if (
            conn.execute(text("SELECT 1 FROM agency WHERE code = :a"), {"a": agency}).first()
            is None
        ):
            raise ValidationError(f"unknown agency {agency!r}", code="unknown_agency")
        if conn.execute(
            text("SELECT 1 FROM edition WHERE agency = :a AND label = :l"),
            {"a": agency, "l": label},
        ).first():
            raise ValidationError(
                f"{agency} already has an edition {label!r} from another file",
                code="edition_exists",
            )
        kept, skipped = _check(rows)
        edition_id = conn.execute(
            text(
                "INSERT INTO edition (agency, label, published_on, source_name, source_checksum,"
                " row_count, imported_by) VALUES (:a, :l, :p, :s, :c, :n, :by) RETURNING id"
            ),
            {
                "a": agency,
                "l": label,
                "p": published_on,
                "s": source_name,
                "c": checksum,
                "n": len(kept),
                "by": imported_by,
            },
        ).scalar_one()
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(
            "COPY division (edition_id, code, level, name, name_key, parent_code, national_id,"
            " point, population, attrs) FROM STDIN"
        ) as copy:
            for r in kept:
                point = (
                    f"SRID=4326;POINT({r.lon} {r.lat})"
                    if r.lon is not None and r.lat is not None
                    else None
                )
                copy.write_row(
                    (
                        edition_id,
                        r.code,
                        r.level,
                        r.name,
                        match_key(r.name),
                        r.parent_code,
                        r.national_id,
                        point,
                        r.population,
                        json.dumps(r.attrs, ensure_ascii=False),
                    )
                )
    counts = Counter(r.level for r in kept)
    return ImportResult(
        edition_id,
        agency,
        label,
        found_fmt,
        True,
        {lvl: counts[lvl] for lvl in LEVELS if counts[lvl]},
        skipped,
    )
