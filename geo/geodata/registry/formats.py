"""Agency list layouts (DESIGN.md section 3) read into one row shape.

- ``moi``: ``row,type,name,province,county,district,rural,hierarchicalCode,nationalId``
  with Persian type words; parents follow from the hierarchical code (county 4 digits,
  district 6, rural district 8, city 9 under its district, village 11 under its rural
  district).
- ``sci``: the geography file's Persian headers, code parts per level and CODEREC.
- ``generic``: ``code,name,level,parent_code`` plus optional ``lat,lon,population,
  national_id`` (HF and anyone else).

Files are CSV (UTF-8, UTF-8 with BOM, or Windows-1256) or XLSX (first sheet).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from geo.errors import ValidationError
from geo.geodata.persian import ascii_digits, is_digits, match_key, normalize_code

__all__ = [
    "FORMATS",
    "XLSX_MEDIA",
    "DivisionRow",
    "column_index",
    "decode",
    "detect_format",
    "read_rows",
    "read_table",
    "write_csv",
    "write_xlsx",
]

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

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
GENERIC_LEVELS = {
    "province": "province",
    "county": "county",
    "district": "district",
    "rural": "rural",
    "rural_district": "rural",
    "dehestan": "rural",
    "city": "city",
    "town": "city",
    "village": "village",
    **MOI_LEVELS,
    "آبادي": "village",
}
_MOI_PARENT_LEN = {"county": 2, "district": 4, "rural": 6, "city": 6, "village": 8}
_SCI_WIDTHS = (2, 2, 2, 4, 6)  # code parts: province, county, district, rural/city, village


@dataclass
class DivisionRow:
    """One unit read from a file, before validation; ``line`` is the file's line number.

    ``problems`` holds what parsing already found wrong: (code, field, value).
    """

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
    problems: list[tuple[str, str, str]] = field(default_factory=list)


def decode(raw: bytes) -> str:
    """Text of a file in UTF-8 (with or without BOM) or Windows-1256."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1256")


def _xlsx_table(raw: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds on a broken file
        raise ValidationError(
            f"not a readable XLSX file: {type(exc).__name__}", code="unreadable_file"
        ) from None
    sheet = book.worksheets[0]
    table = []
    for values in sheet.iter_rows(values_only=True):
        cells = [
            ""
            if v is None
            else (str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
            for v in values
        ]
        if any(c.strip() for c in cells):
            table.append(cells)
    book.close()
    return table


def read_table(raw: bytes) -> list[list[str]]:
    """The file's rows as lists of strings (XLSX's first sheet, or CSV in any encoding)."""
    if raw.startswith(b"PK\x03\x04"):
        return _xlsx_table(raw)
    if b"\x00" in raw[:4096]:
        raise ValidationError("a binary file, neither CSV nor XLSX", code="unreadable_file")
    try:
        return [
            row
            for row in csv.reader(io.StringIO(decode(raw), newline=""))
            if any(c.strip() for c in row)
        ]
    except csv.Error as exc:
        raise ValidationError(f"not a readable CSV file: {exc}", code="unreadable_file") from None


def column_index(header: list[str], name: str, role: str) -> int:
    """The index of the column a user named for ``role``: its header (compared by match
    key: Persian spelling variants and spaces do not matter) or its 1-based number."""
    if name.isdigit() and 1 <= int(name) <= len(header):
        return int(name) - 1
    keys = [match_key(h) for h in header]
    if match_key(name) in keys:
        return keys.index(match_key(name))
    raise ValidationError(
        f"the table has no column {name!r} (for {role})", code="unknown_column", field=role
    )


def write_csv(rows: list[list[Any]]) -> bytes:
    """CSV as Excel opens Persian text: UTF-8 with a byte-order mark, CRLF line ends."""
    out = io.StringIO()
    out.write("\ufeff")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def write_xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    """An XLSX workbook with one sheet per entry (name → rows)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def detect_format(header: list[str]) -> str:
    """Which layout a header belongs to."""
    cols = {c.strip() for c in header}
    if {"hierarchicalCode", "type", "name"} <= cols:
        return "moi"
    if "CODEREC" in cols and "کد استان" in cols:
        return "sci"
    if {"code", "name", "level"} <= cols:
        return "generic"
    raise ValidationError(
        "the file's header matches no known layout (MOI list, SCI geography file, or "
        "generic code,name,level,parent_code)",
        code="unknown_format",
    )


def _code(value: str | None) -> str:
    return normalize_code(value or "")


def _dicts(table: list[list[str]]) -> Iterator[tuple[int, dict[str, str]]]:
    header = [h.strip() for h in table[0]]
    for i, row in enumerate(table[1:], start=2):
        yield i, dict(zip(header, [*row, *[""] * (len(header) - len(row))], strict=False))


def _moi(table: list[list[str]]) -> Iterator[DivisionRow]:
    for i, r in _dicts(table):
        word = (r.get("type") or "").strip()
        level = MOI_LEVELS.get(word, "")
        code = _code(r.get("hierarchicalCode"))
        cut = _MOI_PARENT_LEN.get(level)
        row = DivisionRow(
            line=i,
            code=code,
            name=(r.get("name") or "").strip(),
            level=level,
            parent_code=code[:cut] if cut and len(code) > cut else None,
            national_id=_code(r.get("nationalId")) or None,
        )
        if not level:
            row.problems.append(("unknown_level", "type", word))
        yield row


def _sci(table: list[list[str]]) -> Iterator[DivisionRow]:
    for i, r in enumerate(table[1:], start=2):
        r = [*r, *[""] * (12 - len(r))]
        parts = []
        for value, width in zip((r[0], r[2], r[4], r[6], r[8]), _SCI_WIDTHS, strict=True):
            v = _code(value)
            parts.append(v.zfill(width) if is_digits(v) else v)  # XLSX drops leading zeros
        p, c, d, rd, v = parts
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
        row = DivisionRow(
            line=i, code=code, name=r[9].strip(), level=level, parent_code=parent, attrs=attrs
        )
        if not level:
            row.problems.append(("unknown_level", "CODEREC", rec))
        yield row


def _number(row: DivisionRow, name: str, text: str | None, kind: type) -> Any:
    text = ascii_digits((text or "").strip())
    if not text:
        return None
    try:
        return int(float(text)) if kind is int else float(text)
    except ValueError:
        row.problems.append(("malformed_number", name, text))
        return None


def _generic(table: list[list[str]]) -> Iterator[DivisionRow]:
    for i, r in _dicts(table):
        word = (r.get("level") or "").strip()
        level = GENERIC_LEVELS.get(word.lower(), GENERIC_LEVELS.get(word, ""))
        row = DivisionRow(
            line=i,
            code=_code(r.get("code")),
            name=(r.get("name") or "").strip(),
            level=level,
            parent_code=_code(r.get("parent_code")) or None,
            national_id=_code(r.get("national_id")) or None,
        )
        row.lat = _number(row, "lat", r.get("lat"), float)
        row.lon = _number(row, "lon", r.get("lon"), float)
        row.population = _number(row, "population", r.get("population"), int)
        if not level:
            row.problems.append(("unknown_level", "level", word))
        yield row


_READERS = {"moi": _moi, "sci": _sci, "generic": _generic}


def read_rows(raw: bytes, fmt: str | None = None) -> tuple[str, list[DivisionRow]]:
    """Parse a list file; return its format and rows (not yet validated)."""
    table = read_table(raw)
    if not table:
        raise ValidationError("the file is empty", code="empty_file")
    fmt = fmt or detect_format(table[0])
    if fmt not in _READERS:
        raise ValidationError(
            f"unknown format {fmt!r}; one of {', '.join(FORMATS)}",
            code="unknown_format",
            field="format",
        )
    return fmt, list(_READERS[fmt](table))
