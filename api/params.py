"""Reading request parameters: typed, bounded, and a 400 naming the field when wrong."""

from __future__ import annotations

from datetime import date
from typing import Any

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


def _clean_json(value: Any, field: str) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidParameter(
                "the body holds text that is not valid Unicode", field=field
            ) from None
        if "\x00" in value:
            raise InvalidParameter("the body holds a NUL character", field=field)
    elif isinstance(value, dict):
        for k, v in value.items():
            _clean_json(k, field)
            _clean_json(v, f"{field}.{k}" if field != "body" else str(k))
    elif isinstance(value, list):
        for v in value:
            _clean_json(v, field)
    return value


def json_body(*, required: bool = True) -> dict[str, Any]:
    """The request's JSON object (``{}`` when absent and not required), checked to be an
    object of valid Unicode."""
    body = request.get_json(silent=True)
    if body is None and not required:
        return {}
    if not isinstance(body, dict):
        raise InvalidParameter("send a JSON object", field="body")
    # The body decoded as UTF-8: only a \u escape can bring in a lone surrogate or a NUL
    if b"\\u" not in request.get_data(cache=True):
        return body
    return _clean_json(body, "body")


def str_field(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    """``body[name]`` as text (numbers accepted), or ``InvalidParameter`` naming the field."""
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise InvalidParameter(f"{name} is required", field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidParameter(f"{name} must be text", field=name)
    return str(value)


def reject_nul() -> None:
    """Before every request: PostgreSQL text cannot hold NUL, so refuse it up front."""
    if "\x00" in request.path or any(
        "\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)
    ):
        raise InvalidParameter("the request holds a NUL character", field="query")
    for k, v in (
        request.form.items(multi=True)
        if request.mimetype in {"multipart/form-data", "application/x-www-form-urlencoded"}
        else ()
    ):
        if "\x00" in str(k) or "\x00" in str(v):
            raise InvalidParameter("the form holds a NUL character", field=str(k))


def bbox_arg(name: str = "bbox") -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` in WGS 84, or None when absent."""
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        box = tuple(float(v) for v in raw.split(","))
    except ValueError:
        raise InvalidParameter(f"{name} is minlon,minlat,maxlon,maxlat", field=name) from None
    if len(box) != 4 or not (-180 <= box[0] <= box[2] <= 180 and -90 <= box[1] <= box[3] <= 90):
        raise InvalidParameter(f"{name} is minlon,minlat,maxlon,maxlat", field=name)
    return box  # type: ignore[return-value]
