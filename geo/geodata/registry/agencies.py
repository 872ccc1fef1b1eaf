"""Agencies that code divisions: the ``agency`` table (moi, sci, hf and any an admin adds).

The one place that answers "is this an agency?"; an unknown one is ``unknown_agency``
(404) wherever it is named.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.errors import NotFound

__all__ = ["UnknownAgency", "agency_codes", "agency_known_sql", "require_agency", "unknown_agency"]


class UnknownAgency(NotFound):
    """No agency has this short name."""

    code = "unknown_agency"


def agency_codes(conn: Connection) -> list[str]:
    """Every agency's short name, in order."""
    return list(conn.execute(text("SELECT code FROM agency ORDER BY code")).scalars())


def require_agency(conn: Connection, agency: str, field: str = "agency") -> str:
    """``agency`` when the table has it, else :class:`UnknownAgency` naming ``field``."""
    known = conn.execute(text(f"SELECT {agency_known_sql(':a')}"), {"a": agency}).scalar_one()
    if not known:
        raise unknown_agency(agency, field)
    return agency


def agency_known_sql(agency: str) -> str:
    """A boolean SQL expression: whether the agency ``agency`` (an SQL expression) exists;
    for a statement that checks it on the way (raise :func:`unknown_agency` when false)."""
    return f"EXISTS (SELECT 1 FROM agency WHERE code = {agency})"


def unknown_agency(agency: str, field: str = "agency") -> UnknownAgency:
    return UnknownAgency(f"unknown agency {agency!r}", field=field)
