"""Reading request bodies and forms: JSON objects of valid Unicode, text fields, no NUL.

Query parameters are declared with each endpoint and read by `api.endpoints.arg`."""

from __future__ import annotations

from typing import Any

from flask import request

from geo.errors import InvalidParameter


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
