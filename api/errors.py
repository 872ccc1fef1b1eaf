"""Every error becomes an RFC 9457 problem (``application/problem+json``) with a ``code``.

The one place where `geo` and `crosswalk` errors meet HTTP. Nothing internal (SQL,
paths, stack traces) reaches the client: unexpected errors are logged and answered
with a bare ``internal_error``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from crosswalk.errors import NoRun
from geo.access.control import Forbidden, Unauthenticated
from geo.errors import (
    Conflict,
    DatabaseUnreachable,
    GeoError,
    Gone,
    InvalidParameter,
    NotFound,
    PostGISMissing,
    ValidationError,
)

PROBLEM_TYPE = "urn:tagsim:problem:"
# The HTTP status of each kind of error (its most specific class listed here wins); every
# code a kind raises shares its status.
STATUS: dict[type[GeoError], int] = {
    InvalidParameter: 400,
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    NoRun: 404,
    Conflict: 409,
    Gone: 410,
    ValidationError: 422,
    DatabaseUnreachable: 503,
    PostGISMissing: 503,
}


def status_of(exc: GeoError) -> int:
    """The HTTP status of a domain error (500 for a kind not listed: a bug, not input)."""
    for kind in type(exc).__mro__:
        if kind in STATUS:
            return STATUS[kind]  # type: ignore[index]
    return 500


def problem(
    status: int, code: str, title: str, detail: str | None = None, **extra: Any
) -> Response:
    """A problem response; ``code`` is the stable machine word clients match on."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body["instance"] = request.path
    body.update(extra)
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/problem+json"
    )


def geo_problem(exc: GeoError) -> Response:
    details = {
        k: v
        for k, v in exc.details.items()
        if isinstance(v, str | int | float | bool | list | dict)
    }
    title = exc.code.replace("_", " ").capitalize()
    return problem(status_of(exc), exc.code, title, exc.message, **details)


def _from_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    return problem(status, code, exc.name or "Error", exc.description)


def _unexpected(exc: Exception) -> Response:
    from flask import current_app

    current_app.logger.exception("unexpected error on %s", request.path)
    return problem(500, "internal_error", "Internal Server Error", "see the service log")


def init_app(app: Flask) -> None:
    app.register_error_handler(GeoError, geo_problem)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(Exception, _unexpected)
