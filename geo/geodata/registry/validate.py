"""Check a list before anything is stored; every finding has a line, a stable code, a field.

Errors (the file is refused unless only valid rows are asked for):
``empty_code``, ``malformed_code``, ``empty_name``, ``unknown_level``, ``malformed_number``,
``duplicate_code`` (same code, other content), ``missing_parent``, ``unknown_parent``,
``parent_level`` (a parent of a level that cannot hold this one), ``code_scheme`` (length
or prefix contradicts the agency's coding), ``coordinates_outside`` (not in Iran).
Skipped, not errors: ``duplicate_row`` (an exact repeat, imported once) and, when valid
rows are imported, ``parent_skipped`` (a row whose parent was refused).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from geo.geodata.persian import is_digits
from geo.geodata.registry.formats import DivisionRow

__all__ = ["PARENT_LEVELS", "Report", "validate"]

PARENT_LEVELS = {
    "province": set(),
    "county": {"province"},
    "district": {"county"},
    "rural": {"district"},
    "city": {"district", "rural"},
    "village": {"rural", "district"},
}
# Code length per level, and how a child's code extends its parent's, per agency scheme.
SCHEMES: dict[str, dict[str, int]] = {
    "moi": {"province": 2, "county": 4, "district": 6, "rural": 8, "city": 9, "village": 11},
    "sci": {"province": 2, "county": 4, "district": 6, "rural": 10, "city": 10, "village": 16},
}
IRAN = (43.5, 24.0, 63.5, 40.0)  # lon/lat box, generous


@dataclass
class Report:
    """What validation found; ``kept`` are the rows that may be stored."""

    format: str
    rows: int
    kept: list[DivisionRow] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, limit: int = 1000) -> dict[str, Any]:
        return {
            "format": self.format,
            "rows": self.rows,
            "valid": len(self.kept),
            "errors": self.errors[:limit],
            "error_count": len(self.errors),
            "skipped": self.skipped[:limit],
            "skipped_count": len(self.skipped),
        }


def _finding(row: DivisionRow, code: str, field_: str, value: Any, message: str) -> dict[str, Any]:
    return {"line": row.line, "code": code, "field": field_, "value": value, "message": message}


def _scheme_problem(row: DivisionRow, scheme: dict[str, int]) -> str | None:
    want = scheme.get(row.level)
    if want and len(row.code) != want:
        return f"a {row.level} code has {want} digits here, not {len(row.code)}"
    if row.parent_code and not row.code.startswith(row.parent_code):
        return f"code {row.code} does not extend its parent's code {row.parent_code}"
    if row.level == "city" and scheme is SCHEMES["moi"] and int(row.code[-3:]) < 500:
        return "an MOI city code ends in 500 or more"
    return None


def validate(rows: list[DivisionRow], fmt: str, agency: str) -> Report:
    """Check every row; return the rows that can be stored and what was found."""
    report = Report(format=fmt, rows=len(rows))
    scheme = SCHEMES.get(agency)
    all_codes = {r.code for r in rows}
    first: dict[str, DivisionRow] = {}
    bad_lines: set[int] = set()
    for row in rows:
        for code, field_, value in row.problems:
            report.errors.append(_finding(row, code, field_, value, f"{field_}: {value!r}"))
            bad_lines.add(row.line)
        if not row.code:
            report.errors.append(_finding(row, "empty_code", "code", "", "no code"))
        elif not is_digits(row.code):
            report.errors.append(
                _finding(
                    row, "malformed_code", "code", row.code, "codes are digits (Persian or ASCII)"
                )
            )
        if not row.name:
            report.errors.append(_finding(row, "empty_name", "name", "", "no name"))
        if (
            row.lat is not None
            and row.lon is not None
            and not (IRAN[0] <= row.lon <= IRAN[2] and IRAN[1] <= row.lat <= IRAN[3])
        ):
            report.errors.append(
                _finding(
                    row, "coordinates_outside", "lat,lon", f"{row.lat},{row.lon}", "not in Iran"
                )
            )
        if report.errors and report.errors[-1]["line"] == row.line:
            bad_lines.add(row.line)
            continue
        if row.code in first:
            prior = first[row.code]
            same = (prior.name, prior.level, prior.parent_code, prior.national_id) == (
                row.name,
                row.level,
                row.parent_code,
                row.national_id,
            )
            if same:
                report.skipped.append(
                    {
                        **_finding(
                            row,
                            "duplicate_row",
                            "code",
                            row.code,
                            f"repeats line {prior.line}; imported once",
                        ),
                        "first_line": prior.line,
                    }
                )
            else:
                report.errors.append(
                    {
                        **_finding(
                            row,
                            "duplicate_code",
                            "code",
                            row.code,
                            f"line {prior.line} has this code for {prior.level} {prior.name!r}",
                        ),
                        "first_line": prior.line,
                    }
                )
                bad_lines.add(row.line)
            continue
        first[row.code] = row
    candidates = [r for r in first.values() if r.line not in bad_lines]
    by_code = {r.code: r for r in candidates}
    for row in candidates:
        parent = by_code.get(row.parent_code) if row.parent_code else None
        problem: tuple[str, str, str, str] | None = None
        if row.level != "province" and not row.parent_code:
            problem = ("missing_parent", "parent_code", "", f"a {row.level} needs a parent")
        elif row.parent_code and row.parent_code not in all_codes:
            problem = ("unknown_parent", "parent_code", row.parent_code, "no such code in the file")
        elif parent is not None and parent.level not in PARENT_LEVELS.get(row.level, set()):
            problem = (
                "parent_level",
                "parent_code",
                row.parent_code or "",
                f"a {row.level} cannot sit under a {parent.level}",
            )
        elif scheme and (why := _scheme_problem(row, scheme)):
            problem = ("code_scheme", "code", row.code, why)
        if problem:
            report.errors.append(_finding(row, *problem))
            bad_lines.add(row.line)
    good = {r.code for r in candidates if r.line not in bad_lines}
    refused = {r.code for r in rows if r.line in bad_lines} - good
    for row in candidates:  # rows under a refused parent go too (parents come first or not)
        if row.line in bad_lines:
            continue
        node, chain = row, list[str]()
        while node.parent_code and node.parent_code in by_code and len(chain) < 10:
            chain.append(node.parent_code)
            node = by_code[node.parent_code]
        if any(c in refused for c in chain) or (node.parent_code and node.parent_code in refused):
            report.skipped.append(
                _finding(
                    row,
                    "parent_skipped",
                    "parent_code",
                    row.parent_code,
                    "its parent (or an ancestor) was refused",
                )
            )
            bad_lines.add(row.line)
        else:
            report.kept.append(row)
    return report
