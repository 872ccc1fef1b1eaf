"""Agency list layouts (DESIGN.md section 3) read into one row shape.

- ``moi``: ``row,type,name,province,county,district,rural,hierarchicalCode,nationalId``
  with Persian type words; parents follow from the hierarchical code (county 4 digits,
  district 6, rural district 8, city 9 under its district, village 11 under its rural
  district).
- ``sci``: the geography file's Persian headers, code parts per level and CODEREC.
- ``generic``: ``code,name,level,parent_code`` plus optional ``lat,lon,population,
  national_id`` (HF and anyone else).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from geo.errors import ValidationError
from geo.persian import ascii_digits

__all__ = ["FORMATS", "DivisionRow", "decode", "detect_format", "read_rows"]

FORMATS = ("moi", "sci", "generic")
MOI_LEVELS = {
    "استان": "province",
    "شهرستان": "county",
    "بخش": "district",
    "دهستان": "rural",
    "شهر": "city",
    "آبادی": "village",
    "روستا": "village",
}
SCI_LEVELS = {
    "1": "province",
    "2": "county",
    "3": "district",
    "4": "rural",
    "5": "city",
    "6": "village",
    "8": "village",
}
_MOI_PARENT_LEN = {"county": 2, "district": 4, "rural": 6, "city": 6, "village": 8}


@dataclass
class DivisionRow:
    """One unit read from a file, before validation; ``line`` is the file's line number."""

    line: int
    code: str
    name: str
    level: str
    parent_code: str | None
    national_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    population: int | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def decode(raw: bytes) -> str:
    """Text of a file in UTF-8 (with or without BOM) or Windows-1256."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1256")


def detect_format(header: list[str]) -> str:
    """Which layout a CSV header belongs to."""
    cols = {c.strip() for c in header}
    if {"hierarchicalCode", "type", "name"} <= cols:
        return "moi"
    if "CODEREC" in cols and "کد استان" in cols:
        return "sci"
    if {"code", "name", "level", "parent_code"} <= cols:
        return "generic"
    raise ValidationError(
        "the file's header matches no known layout (MOI list, SCI geography file, or "
        "generic code,name,level,parent_code)",
        code="unknown_format",
    )


def _clean(value: str | None) -> str:
    return ascii_digits((value or "").strip())


def _moi(reader: csv.DictReader) -> Iterator[DivisionRow]:  # type: ignore[type-arg]
    for i, r in enumerate(reader, start=2):
        level = MOI_LEVELS.get((r.get("type") or "").strip(), "")
        code = _clean(r.get("hierarchicalCode"))
        cut = _MOI_PARENT_LEN.get(level)
        yield DivisionRow(
            line=i,
            code=code,
            name=(r.get("name") or "").strip(),
            level=level,
            parent_code=code[:cut] if cut and len(code) > cut else None,
            national_id=_clean(r.get("nationalId")) or None,
            attrs={"type": (r.get("type") or "").strip()} if not level else {},
        )


def _sci(reader: csv.reader) -> Iterator[DivisionRow]:  # type: ignore[valid-type]
    for i, r in enumerate(reader, start=2):
        r = [*r, *[""] * (12 - len(r))]
        p, c, d, rd, v = (_clean(x) for x in (r[0], r[2], r[4], r[6], r[8]))
        rec = r[10].strip()
        level = SCI_LEVELS.get(rec, "")
        code, parent = {
            "province": (p, None),
            "county": (p + c, p),
            "district": (p + c + d, p + c),
            "rural": (p + c + d + rd, p + c + d),
            "city": (p + c + d + rd, p + c + d),
            "village": (p + c + d + rd + v, p + c + d + rd),
        }.get(level, (p + c + d + rd + v, None))
        attrs: dict[str, Any] = {"coderec": rec}
        if rec == "8":
            attrs["farm_point"] = True
        if r[11].strip():
            attrs["diag"] = r[11].strip()
        yield DivisionRow(
            line=i, code=code, name=r[9].strip(), level=level, parent_code=parent, attrs=attrs
        )


def _number(text: str | None, kind: type) -> Any:
    text = _clean(text)
    if not text:
        return None
    try:
        return kind(float(text)) if kind is int else kind(text)
    except ValueError:
        return None


def _generic(reader: csv.DictReader) -> Iterator[DivisionRow]:  # type: ignore[type-arg]
    for i, r in enumerate(reader, start=2):
        yield DivisionRow(
            line=i,
            code=_clean(r.get("code")),
            name=(r.get("name") or "").strip(),
            level=(r.get("level") or "").strip().lower(),
            parent_code=_clean(r.get("parent_code")) or None,
            national_id=_clean(r.get("national_id")) or None,
            lat=_number(r.get("lat"), float),
            lon=_number(r.get("lon"), float),
            population=_number(r.get("population"), int),
        )


def read_rows(text: str, fmt: str | None = None) -> tuple[str, list[DivisionRow]]:
    """Parse a list; return its format and rows (unvalidated)."""
    buf = io.StringIO(text)
    header = next(csv.reader(io.StringIO(buf.readline())), [])
    fmt = fmt or detect_format(header)
    buf.seek(0)
    if fmt == "sci":
        reader = csv.reader(buf)
        next(reader)
        return fmt, list(_sci(reader))
    dict_reader = csv.DictReader(buf)
    if fmt == "moi":
        return fmt, list(_moi(dict_reader))
    if fmt == "generic":
        return fmt, list(_generic(dict_reader))
    raise ValidationError(
        f"unknown format {fmt!r}; one of {', '.join(FORMATS)}", code="unknown_format"
    )
