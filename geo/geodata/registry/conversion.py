"""A table keyed by one agency's codes at one date, re-keyed to another agency and/or date.

Each row's code is projected (`projection.project_many`: the agency's events, the crosswalk
run, the target's events) to the units it became; its count columns are divided among
them by the weights and summed per target unit and category (the category columns the
user declares group the output: a row per target unit and category values). Merges are
thus summed, splits divided.

Weights, never invented (DESIGN §12):

- every unit reached has a weight (areas, populations, identity): the row's counts are
  divided by them, scaled to sum to 1 (all of the row lands among the units it reached,
  so totals are preserved exactly);
- one unit reached takes the whole row, whatever its weight (basis ``whole``);
- several units and a weight unknown: the row is refused (``unknown_weight``) unless the
  user allows equal shares — then the units of unknown weight share equally what the known
  weights leave (basis ``equal_shares``).

A row that cannot be converted is reported with its reason, never dropped silently:
``missing_code``, ``unknown_code`` (not in the edition in force at the date),
``no_target`` (the projection reached no unit), ``unknown_weight``, ``not_a_number``.
Every output row names its provenance: the input rows, their codes, the weights used, the
links crossed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Connection

from geo.errors import ValidationError
from geo.geodata.persian import is_digits, normalize_code, parse_number
from geo.geodata.registry.formats import column_index
from geo.geodata.registry.projection import project_many
from geo.platform.bulk import bulk

__all__ = ["REASONS", "Conversion", "ConversionSpec", "Refused", "convert"]

REASONS = ("missing_code", "unknown_code", "no_target", "unknown_weight", "not_a_number")
PROVENANCE_COLUMNS = ("from_rows", "from_codes", "weights", "weight_basis", "links")


@dataclass(frozen=True)
class ConversionSpec:
    """What to convert: ``code`` names the code column, ``counts`` the columns summed and
    divided, ``categories`` the columns kept as they are (the output is grouped by them);
    the rows are ``agency``'s codes in force on ``at``, wanted as ``to_agency``'s (the same
    agency when None) in force on ``to_date``."""

    agency: str
    code: str
    counts: tuple[str, ...]
    categories: tuple[str, ...] = ()
    at: date | None = None
    to_agency: str | None = None
    to_date: date | None = None
    equal_shares: bool = False


@dataclass(frozen=True)
class Refused:
    row: int  # the row's line in the file (the header is line 1)
    code: str
    reason: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "code": self.code, "reason": self.reason, "detail": self.detail}


@dataclass
class _Target:
    code: str
    name: str | None
    level: str | None
    categories: tuple[str, ...]
    counts: list[float]
    sources: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Conversion:
    """The converted table (a row per target unit and category values) and the report."""

    to_agency: str
    categories: tuple[str, ...]
    counts: tuple[str, ...]
    targets: list[_Target]
    refused: list[Refused]
    used: dict[str, Any]
    totals: dict[str, dict[str, float]]  # count column → in / out / refused

    @property
    def summary(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for r in self.refused:
            reasons[r.reason] = reasons.get(r.reason, 0) + 1
        converted = {s["row"] for t in self.targets for s in t.sources}
        return {
            "rows_in": len(converted) + len(self.refused),
            "rows_converted": len(converted),
            "rows_refused": len(self.refused),
            "refused": reasons,
            "rows_out": len(self.targets),
            "totals": {
                name: {k: number(v) for k, v in sums.items()} for name, sums in self.totals.items()
            },
        }

    def table(self) -> list[list[Any]]:
        """Header and rows: the target's code, name and level, the categories, the counts,
        then the provenance columns."""
        header = [
            f"{self.to_agency}_code",
            "name",
            "level",
            *self.categories,
            *self.counts,
            *PROVENANCE_COLUMNS,
        ]
        rows: list[list[Any]] = [header]
        for t in self.targets:
            rows.append(
                [
                    t.code,
                    t.name or "",
                    t.level or "",
                    *t.categories,
                    *(number(v) for v in t.counts),
                    " ".join(str(r) for r in sorted({s["row"] for s in t.sources})),
                    " ".join(sorted({s["code"] for s in t.sources})),
                    " ".join(f"{s['row']}:{number(s['weight'])}" for s in t.sources),
                    " ".join(sorted({s["basis"] for s in t.sources})),
                    " ".join(sorted({link for s in t.sources for link in s["links"]})),
                ]
            )
        return rows

    def refused_table(self) -> list[list[Any]]:
        return [["row", "code", "reason", "detail"]] + [
            [r.row, r.code, r.reason, r.detail] for r in self.refused
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            **self.used,
            "summary": self.summary,
            "rows": [
                {
                    "code": t.code,
                    "name": t.name,
                    "level": t.level,
                    "categories": dict(zip(self.categories, t.categories, strict=True)),
                    "counts": {c: number(v) for c, v in zip(self.counts, t.counts, strict=True)},
                    "from": t.sources,
                }
                for t in self.targets
            ],
            "refused": [r.as_dict() for r in self.refused],
        }


def number(value: float) -> int | float:
    """A count as written back: whole numbers as integers, others to 6 decimals."""
    rounded = round(value, 6)
    return int(rounded) if rounded == int(rounded) else rounded


@bulk
def convert(
    conn: Connection,
    table: list[list[str]],
    spec: ConversionSpec,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Conversion:
    """Convert ``table`` (its first row the header) as ``spec`` says."""
    if len(table) < 2:
        raise ValidationError("the table has no rows under its header", code="empty_table")
    if not spec.counts:
        raise ValidationError(
            "name at least one count column (counts=…)", code="no_counts", field="counts"
        )
    header, rows = table[0], table[1:]
    code_at = column_index(header, spec.code, "code")
    count_at = [column_index(header, c, "counts") for c in spec.counts]
    category_at = [column_index(header, c, "categories") for c in spec.categories]
    overlap = {code_at} & set(count_at) or set(count_at) & set(category_at)
    if overlap or len(set(count_at)) < len(count_at):
        raise ValidationError(
            "a column is named twice (as code, count or category)", code="column_twice"
        )
    to_agency = spec.to_agency or spec.agency
    codes = [normalize_code(_cell(r, code_at)) for r in rows]
    used, projected = project_many(
        conn,
        spec.agency,
        sorted({c for c in codes if is_digits(c)}),
        to_agency,
        at=spec.at,
        to_date=spec.to_date,
    )
    names = [header[i] for i in count_at]
    totals = {n: {"in": 0.0, "out": 0.0, "refused": 0.0} for n in names}
    targets: dict[tuple[str, tuple[str, ...]], _Target] = {}
    refused: list[Refused] = []
    for i, (row, code) in enumerate(zip(rows, codes, strict=True)):
        line = i + 2
        values, bad = _counts(row, count_at, names)
        if bad is not None:
            refused.append(Refused(line, code, "not_a_number", bad))
            continue
        for n, v in zip(names, values, strict=True):
            totals[n]["in"] += v
        shares, why = _shares(code, projected, spec)
        if why is not None:
            refused.append(Refused(line, code, *why))
            for n, v in zip(names, values, strict=True):
                totals[n]["refused"] += v
            continue
        categories = tuple(_cell(row, at).strip() for at in category_at)
        for unit, weight, basis in shares:
            key = (unit["code"], categories)
            target = targets.get(key)
            if target is None:
                target = targets[key] = _Target(
                    unit["code"],
                    unit.get("name"),
                    unit.get("level"),
                    categories,
                    [0.0] * len(names),
                )
            for k, v in enumerate(values):
                target.counts[k] += v * weight
            target.sources.append(
                {
                    "row": line,
                    "code": code,
                    "weight": round(weight, 6),
                    "basis": basis,
                    "links": _links(unit),
                }
            )
        if progress is not None and (i % 1000 == 999 or i == len(rows) - 1):
            progress(i + 1, len(rows))
    ordered = [targets[k] for k in sorted(targets)]
    for t in ordered:
        for n, v in zip(names, t.counts, strict=True):
            totals[n]["out"] += v
    return Conversion(
        to_agency,
        tuple(header[i] for i in category_at),
        tuple(names),
        ordered,
        refused,
        used,
        totals,
    )


def _cell(row: list[str], at: int) -> str:
    return row[at] if at < len(row) else ""


def _counts(
    row: list[str], count_at: list[int], names: list[str]
) -> tuple[list[float], str | None]:
    """The row's counts (an empty cell is 0), or what is not a number."""
    values = []
    for at, name in zip(count_at, names, strict=True):
        text = _cell(row, at)
        if not text.strip():
            values.append(0.0)
            continue
        value = parse_number(text)
        if value is None:
            return [], f"{name}: {text!r} is not a number"
        values.append(value)
    return values, None


def _shares(
    code: str, projected: dict[str, list[dict[str, Any]]], spec: ConversionSpec
) -> tuple[list[tuple[dict[str, Any], float, str]], tuple[str, str] | None]:
    """Each unit the code reached with the share of the row it takes and why, or the
    reason the row cannot be converted."""
    if not code:
        return [], ("missing_code", "the code cell is empty")
    if code not in projected:
        return [], ("unknown_code", f"{spec.agency} has no {code} in the edition in force")
    units = projected[code]
    if not units:
        return [], ("no_target", "the projection reached no unit (abolished, or no link)")
    if len(units) == 1:
        return [(units[0], 1.0, "whole")], None
    known = [u["weight"] for u in units if u["weight"] is not None]
    unknown = len(units) - len(known)
    if unknown == 0:
        total = sum(known)
        if total <= 0:
            return [], ("unknown_weight", f"the {len(units)} units reached all weigh 0")
        return [(u, u["weight"] / total, u["weight_basis"]) for u in units], None
    if not spec.equal_shares:
        listed = ", ".join(u["code"] for u in units if u["weight"] is None)
        return [], (
            "unknown_weight",
            f"reached {len(units)} units and the share of {listed} is unknown"
            " (allow equal shares to divide it)",
        )
    rest = max(0.0, 1.0 - sum(known)) / unknown if unknown else 0.0
    return [
        (u, u["weight"], u["weight_basis"])
        if u["weight"] is not None
        else (u, rest, "equal_shares")
        for u in units
    ], None


def _links(unit: dict[str, Any]) -> list[str]:
    """How the unit was reached, in words: ``source→run code (relation)`` per way."""
    out = []
    for way in unit.get("via", []):
        if way.get("run_code") is None:
            out.append(f"{way['source_code']}→{unit['code']}")
        else:
            out.append(f"{way['source_code']}→{way['run_code']}({way['relation']})→{unit['code']}")
    return out
