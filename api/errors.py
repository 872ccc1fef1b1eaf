"""Every error becomes an RFC 9457 problem (``application/problem+json``) with a ``code``.

The one place where `geo` and `crosswalk` errors meet HTTP. Nothing internal (SQL,
paths, stack traces) reaches the client: unexpected errors are logged and answered
with a bare ``internal_error``.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, json, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from geo.errors import GeoError

PROBLEM_TYPE = "urn:tagsim:problem:"


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


def _from_geo(exc: GeoError) -> Response:
    details = {
        k: v
        for k, v in exc.details.items()
        if isinstance(v, str | int | float | bool | list | dict)
    }
    title = exc.code.replace("_", " ").capitalize()
    return problem(exc.http_status, exc.code, title, exc.message, **details)


def _from_http(exc: HTTPException) -> Response:
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    return problem(status, code, exc.name or "Error", exc.description)


def _database_gone(exc: OperationalError) -> Response:
    """The server went away mid-request (restart, failover): retry later, not a bug."""
    from flask import current_app

    from api.database import router

    current_app.logger.warning("database error on %s: %s", request.path, exc.orig)
    routes = router()
    if routes.replicas and g.get("db_role") == "primary":
        # the primary went away under a pooled connection: as when it refuses a new one,
        # writes wait for it, reads go to the replicas meanwhile
        routes.mark_down(routes.primary)
        return _from_geo(routes.primary_down())
    return problem(
        503,
        "database_unavailable",
        "Service Unavailable",
        "the database did not answer; try again shortly",
    )


def _unexpected(exc: Exception) -> Response:
    from flask import current_app

    current_app.logger.exception("unexpected error on %s", request.path)
    return problem(500, "internal_error", "Internal Server Error", "see the service log")


def init_app(app: Flask) -> None:
    app.register_error_handler(GeoError, _from_geo)
    app.register_error_handler(HTTPException, _from_http)
    app.register_error_handler(OperationalError, _database_gone)
    app.register_error_handler(Exception, _unexpected)
