"""Reading request parameters: typed, bounded, and a 400 naming the field when wrong."""

from __future__ import annotations

from datetime import date

from flask import request

from geo.dates import parse_date
from geo.errors import InvalidParameter, ValidationError


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be a whole number", field=name) from None
    if not low <= value <= high:
        raise InvalidParameter(f"{name} must be from {low} to {high}", field=name)
    return value


def float_arg(name: str) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        raise InvalidParameter(f"{name} is required", field=name)
    try:
        return float(raw)
    except ValueError:
        raise InvalidParameter(f"{name} must be a number", field=name) from None


def date_arg(name: str) -> date | None:
    raw = request.args.get(name) or request.form.get(name)
    if not raw:
        return None
    try:
        return parse_date(raw)
    except ValidationError as exc:
        raise InvalidParameter(exc.message, field=name) from None


def agency_arg(value: str) -> str:
    agency = (value or "").strip().lower()
    if not agency.isidentifier() or len(agency) > 32:
        raise InvalidParameter(f"{value!r} is not an agency", field="agency")
    return agency
