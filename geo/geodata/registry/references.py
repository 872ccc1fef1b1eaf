"""References to a unit as people type them: a code alone, or ``AGENCY:CODE``.

The one parser of both. Digits may be Persian (۰–۹) or Arabic-Indic (٠–٩); they are
stored and compared as ASCII. Whether the agency exists is the caller's question (its
lookup answers ``unknown_agency`` or ``not_found``): agencies are a table admins grow.
"""

from __future__ import annotations

from typing import NamedTuple

from geo.errors import InvalidParameter
from geo.geodata.persian import is_digits, normalize_code

__all__ = ["UnitRef", "clean_agency", "clean_code", "parse_unit_ref"]

MAX_AGENCY_LENGTH = 32


class UnitRef(NamedTuple):
    """A unit named by its agency and code (ASCII digits)."""

    agency: str
    code: str

    def __str__(self) -> str:
        return f"{self.agency}:{self.code}"


def clean_code(code: str, field: str = "code") -> str:
    """The ASCII digits of a typed code, or ``InvalidParameter`` naming ``field``."""
    cleaned = normalize_code(code or "")
    if not is_digits(cleaned):
        raise InvalidParameter(f"{code!r} is not a code (digits only)", field=field)
    return cleaned


def clean_agency(value: str, field: str = "agency") -> str:
    """An agency's short name as stored (lower case), or ``InvalidParameter``."""
    agency = (value or "").strip().lower()
    if not (agency.isascii() and agency.isidentifier()) or len(agency) > MAX_AGENCY_LENGTH:
        raise InvalidParameter(f"{value!r} is not an agency", field=field)
    return agency


def parse_unit_ref(value: str, field: str = "within") -> UnitRef:
    """``AGENCY:CODE`` → :class:`UnitRef`, or ``InvalidParameter`` naming ``field``.

    >>> parse_unit_ref("SCI:۲۳۰۱")
    UnitRef(agency='sci', code='2301')
    """
    agency, sep, code = (value or "").partition(":")
    cleaned = normalize_code(code)
    if not sep or not agency.strip() or not is_digits(cleaned):
        raise InvalidParameter(
            f"{field} is AGENCY:CODE, e.g. sci:2301010001000101 (got {value!r})", field=field
        )
    return UnitRef(clean_agency(agency, field), cleaned)
