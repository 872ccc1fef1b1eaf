"""Reading request bodies and forms: JSON objects of valid Unicode, text fields, no NUL.

Query parameters are declared with each endpoint and read by `api.endpoints.arg`."""

from __future__ import annotations

import re
from typing import Any

import orjson
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from geo.errors import InvalidParameter, ValidationError


def _nul(message: str, field: str) -> ValidationError:
    """Text with a NUL: well-formed for the document, but PostgreSQL text cannot hold it
    (422 ``nul_character``)."""
    return ValidationError(message, code="nul_character", field=field)


def _clean_json(value: Any, field: str) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                "the body holds text that is not valid Unicode", code="invalid_text", field=field
            ) from None
        if "\x00" in value:
            raise _nul("the body holds a NUL character", field)
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
    object of valid Unicode, nested at most ``MAX_DEPTH`` deep (400 ``too_deep``)."""
    read_body()  # (413 when the body passes the endpoint's limit, before any parsing)
    try:
        body = _parsed_json()
    except RecursionError:  # (the parser's own limit, far beyond ours)
        raise InvalidParameter(_TOO_DEEP, field="body", code="too_deep") from None
    if _depth(body) > MAX_DEPTH:
        raise InvalidParameter(_TOO_DEEP, field="body", code="too_deep")
    if body is None and not required and not request.get_data(cache=True).strip():
        return {}  # (absent; a body that is there but no JSON is refused below)
    if not isinstance(body, dict):
        raise InvalidParameter("send a JSON object", field="body")
    # The body decoded as UTF-8: only a \u escape can bring in a lone surrogate or a NUL
    if b"\\u" not in request.get_data(cache=True):
        return body
    return _clean_json(body, "body")


_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def _parsed_json() -> Any:
    """The body as Flask's ``get_json(silent=True)`` reads it (``None`` unless the request
    is JSON), parsed by orjson (~10× faster). What orjson refuses (non-UTF-8, NaN, a lone
    surrogate, deep nesting) or might read otherwise (an integer past 64 bits) is left to
    Flask's parser, so the answer is the same either way."""
    if not request.is_json:
        return None
    data = request.get_data(cache=True)
    if _LONG_NUMBER.search(data) is None:  # (orjson reads an integer past 64 bits as a float)
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
    return request.get_json(silent=True)


def form_flag(name: str) -> bool:
    """A form's yes/no field: ``true`` or ``false`` (any case); absent or empty is false."""
    value = request.form.get(name, "").strip().lower()
    if value not in {"", "true", "false"}:
        raise InvalidParameter(f"{name} is true or false, not {value[:20]!r}", field=name)
    return value == "true"


def read_body() -> bytes:
    """The request's body, whole. Werkzeug stops reading a streamed (chunked) body at the
    endpoint's limit and returns what it read; a body that reaches the limit is refused
    here (413) rather than parsed cut short."""
    data = request.get_data(cache=True)
    limit = request.max_content_length
    if limit is not None and len(data) >= limit:
        raise RequestEntityTooLarge(f"this endpoint reads at most {limit} bytes of body")
    return data


MAX_DEPTH = 32
_TOO_DEEP = f"the JSON body is nested more than {MAX_DEPTH} deep"


def _depth(value: Any) -> int:
    """How deep ``value`` nests (without recursion: a hostile body cannot exhaust the stack)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            todo.extend(
                (v, depth + 1)
                for v in (item.values() if isinstance(item, dict) else item)
                if isinstance(v, dict | list)  # (numbers and strings nest no deeper)
            )
    return deepest


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
    """Before every request: PostgreSQL text cannot hold NUL, so refuse it up front (the
    path and query only: a body is not read before the key is checked)."""
    if "\x00" in request.path or any(
        "\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)
    ):
        raise _nul("the request holds a NUL character", "query")


def reject_nul_in_form() -> None:
    """After authentication: a form's fields may not hold NUL either."""
    for k, v in (
        request.form.items(multi=True)
        if request.mimetype in {"multipart/form-data", "application/x-www-form-urlencoded"}
        else ()
    ):
        if "\x00" in str(k) or "\x00" in str(v):
            raise _nul("the form holds a NUL character", str(k))
