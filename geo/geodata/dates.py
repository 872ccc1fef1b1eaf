"""Dates as Iranian agencies write them: Jalali (۱۴۰۱/۰۸/۲۵, 1401-08-25) or Gregorian.

A year below 1700 is Jalali; otherwise Gregorian. Separators may be ``/``, ``-`` or ``.``;
digits may be Persian or Arabic-Indic.

Example:
    >>> parse_date("۱۴۰۱/۰۸/۲۵")
    datetime.date(2022, 11, 16)
    >>> jalali(parse_date("2022-11-16"))
    '1401-08-25'
"""

from __future__ import annotations

import re
from datetime import date

import jdatetime

from geo.errors import ValidationError
from geo.geodata.persian import ascii_digits

__all__ = ["DATE_PATTERN", "jalali", "parse_date"]

_DIGIT = "[0-9\u06f0-\u06f9\u0660-\u0669]"
# How a date is written (Jalali or Gregorian, any digits, - or /): what parse_date reads
# when the day exists.
DATE_PATTERN = rf"^{_DIGIT}{{4}}[-/]{_DIGIT}{{1,2}}[-/]{_DIGIT}{{1,2}}$"

_DATE = re.compile(r"^\s*(\d{4})[/\-.](\d{1,2})[/\-.](\d{1,2})\s*$")


def parse_date(text: str) -> date:
    """The Gregorian date of a Jalali or Gregorian date string."""
    m = _DATE.match(ascii_digits(text))
    if not m:
        raise ValidationError(
            f"not a date: {text!r} (use 1401-08-25, ۱۴۰۱/۰۸/۲۵ or 2022-11-16)",
            code="malformed_date",
            field="date",
        )
    y, mo, d = (int(g) for g in m.groups())
    try:
        if y < 1700:
            return jdatetime.date(y, mo, d).togregorian()
        return date(y, mo, d)
    except ValueError as exc:
        raise ValidationError(
            f"no such date: {text!r} ({exc})", code="malformed_date", field="date"
        ) from None


def jalali(day: date) -> str:
    """``YYYY-MM-DD`` in the Jalali calendar."""
    return jdatetime.date.fromgregorian(date=day).strftime("%Y-%m-%d")
