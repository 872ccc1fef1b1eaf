"""Access control: each endpoint's declaration (`api.endpoints`) says who may call it; it is
checked before each request, audited after it, rate limited per key; security headers on
every answer.

A route without a declaration cannot be registered (`api.endpoints.check_declared`), so a
new endpoint cannot ship without its access rule.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from api import auth_failures, ratelimit
from api.database import app_db, end_authentication, get_conn, router, served_by_replica
from api.endpoints import BY_COLLECTION, endpoint_of
from api.errors import problem
from geo.access.control import Forbidden, audit_entry, authenticate, check_policy, policy
from geo.access.journal import AuditJournal, journal_for
from geo.access.ownership import check_owner
from geo.geodata.features.collections import get_collection
from geo.platform.config import settings
from geo.platform.database import Database

_LIST_KEYS = (
    "results",
    "links",
    "events",
    "editions",
    "runs",
    "releases",
    "items",
    "entries",
    "keys",
)


def _key() -> str | None:
    """The API key a request carries: ``Authorization: Bearer KEY``, ``X-API-Key: KEY``, or
    HTTP Basic with the key as the password (any user name), which every desktop GIS can
    send (QGIS 3.22 has no way to add a header of its own)."""
    header = request.headers.get("Authorization", "")
    scheme = header[:7].lower()
    if scheme == "bearer ":
        return header[7:].strip()
    if scheme[:6] == "basic ":
        return _basic_password(header[6:].strip())
    return request.headers.get("X-API-Key")


def _basic_password(token: str) -> str | None:
    try:
        pair = base64.b64decode(token, validate=True).decode()
    except (ValueError, UnicodeDecodeError):  # (binascii.Error is a ValueError)
        return None
    _, colon, password = pair.partition(":")
    if not colon:
        return None
    return password.strip() or None


def _before() -> Response | None:
    g.started = time.perf_counter()
    g.principal = None
    if request.url_rule is None or request.method == "OPTIONS":
        return None  # 404/405 are answered by Flask itself
    declared = endpoint_of(current_app, request.endpoint)
    if declared is None:  # (create_app refuses such routes; a guard all the same)
        current_app.logger.error("endpoint %s has no declaration", request.endpoint)
        return problem(403, "no_policy", "Forbidden", "this endpoint has no access rule yet")
    # before anything reads the body: no more than the endpoint takes, chunked or not
    request.max_content_length = declared.body_limit(current_app.config["MAX_CONTENT_LENGTH"])
    if declared.access != "public" or _key():
        refused = auth_failures.refuse_if_failing()  # before any key lookup
        if refused is not None:
            return refused
    if declared.access == "public":
        return None
    if declared.access == "key":
        g.principal = authenticate(get_conn(), _key(), touch=not served_by_replica())
        end_authentication()
        return None
    service = declared.service or ""
    if service == BY_COLLECTION:
        service = get_collection((request.view_args or {}).get("collection_id", "")).service
    g.service = service
    conn = get_conn()  # the request's one connection: auth, the view and the audit share it
    try:
        if request.method == "GET" and policy(conn, service)["public"] and not _key():
            return None
        principal = authenticate(conn, _key(), touch=not served_by_replica())
        g.principal = principal
        if not principal.can(declared.role):
            raise Forbidden(
                f"this needs the {declared.role} role; the key's role is {principal.role}",
                code="role_too_low",
            )
        check_policy(conn, service, principal)
        if declared.owner:
            check_owner(conn, declared.owner, principal)
    finally:
        end_authentication()
    return None


def _rows(response: Response) -> int | None:
    """Rows answered: set by the view (``g.audit_rows``), else read from a small JSON body."""
    if g.get("audit_rows") is not None:
        return g.audit_rows
    if not response.is_json or response.is_streamed:
        return None
    if (response.content_length or 0) > 256 * 1024:
        return None
    body = response.get_json(silent=True)
    if not isinstance(body, dict):
        return None
    for name in ("count", "total"):
        if isinstance(body.get(name), int):
            return body[name]
    for name in _LIST_KEYS:
        if isinstance(body.get(name), list):
            return len(body[name])
    return 1


# On every answer, unless its view set its own (e.g. a tile's Cache-Control).
_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'self'"),
    ("Cache-Control", "no-store"),
)


def _after(response: Response) -> Response:
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    for name, value in _SECURITY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    origins = current_app.config.get("CORS_ORIGINS") or []
    origin = request.headers.get("Origin")
    if origin and origin in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    if response.status_code == 401:  # counted per address, audited as counts per minute
        auth_failures.note_failure()
        return response
    service = g.get("service")
    if service is None:  # public endpoints and static files are not audited
        return response
    entry = audit_entry(
        g.get("principal"),
        service,
        request.endpoint or "",
        request.method,
        _params(),
        _rows(response),
        response.status_code,
        round((time.perf_counter() - g.started) * 1000, 2),
    )
    # The audit row goes through the journal (moved into the table in batches, by the
    # primary; kept on local disk while the primary is down): `geo.access.journal`.
    try:
        journal().append(entry)
    except OSError:
        current_app.logger.exception("audit journal: the row could not be kept")
    return response


def _params() -> dict[str, Any]:
    params: dict[str, Any] = {k: v for k, v in request.args.items()}
    params.update({f"path:{k}": str(v) for k, v in (request.view_args or {}).items()})
    return params


def journal() -> AuditJournal:
    """The app's audit journal: folder ``AUDIT_JOURNAL``, else ``<audit_folder>/<database>``
    (one folder per database: rows never reach another database's table); moved every
    ``AUDIT_FLUSH_S`` seconds (default ``TAGSIM_AUDIT_FLUSH_S``; 0: at once)."""
    found = current_app.extensions.get("tagsim_audit_journal")
    if found is None:
        cfg = settings()
        folder = current_app.config.get("AUDIT_JOURNAL")
        if not folder:
            db = make_url(app_db().url)
            folder = cfg.audit_folder / f"{db.host}-{db.port}-{db.database}"
        routes = router()

        def primary() -> Connection:
            # a pool of its own: a request holding its connection never waits on its own pool
            if routes.replicas and routes.is_down(routes.primary):
                raise routes.primary_down()
            return Database(routes.primary).autocommit()

        found = current_app.extensions["tagsim_audit_journal"] = journal_for(
            Path(folder),
            primary,
            float(current_app.config.get("AUDIT_FLUSH_S", cfg.audit_flush_s)),
        )
    return found


def init_app(app: Flask) -> None:
    """Authenticate before the rate limiter runs, so that limits are per key."""
    app.before_request(_before)
    app.after_request(_after)
    auth_failures.init_app(app, lambda entry: journal().append(entry))
    ratelimit.init_app(app)
