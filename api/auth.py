"""Access control in one place: every endpoint's service and role, checked before each request,
audited after it, rate limited per key; security headers on every answer.

``ENDPOINTS`` names each endpoint's service and the least role it needs; ``PUBLIC`` ones need
no key. An endpoint missing from both is refused (and `tests/test_access.py` fails), so a new
endpoint cannot ship without a policy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from api import ratelimit
from api.database import get_conn, router, served_by_replica, url
from api.errors import problem
from geo.access import Forbidden, audit_entry, authenticate, check_policy, policy
from geo.audit_journal import AuditJournal, journal_for
from geo.config import settings
from geo.db import engine
from geo.features.collections import COLLECTIONS, get_collection

PUBLIC = {
    "health.healthz",
    "health.version",
    "openapi.api",
    "static",
    "features.landing",
    "features.conformance",
    "features.get_collections",
    "features.get_collection_doc",
    "tiles.get_tilejson",
    "web.static",
    "web.vendor",
}
KEY_ONLY = {"me.get_me"}  # any valid key, whatever its role and the policies
BY_COLLECTION = "by collection"  # the service is the collection's (geo.features.collections)
ENDPOINTS: dict[str, tuple[str, str]] = {
    "divisions.search_divisions": ("divisions", "reader"),
    "divisions.divisions_at": ("divisions", "reader"),
    "divisions.get_division": ("divisions", "reader"),
    "divisions.get_children": ("divisions", "reader"),
    "divisions.get_history": ("divisions", "reader"),
    "divisions.resolve_batch": ("divisions", "reader"),
    "editions.get_editions": ("divisions", "reader"),
    "editions.get_one_edition": ("divisions", "reader"),
    "editions.get_events": ("divisions", "reader"),
    "editions.post_edition": ("editions", "admin"),
    "crosswalk.get_runs": ("crosswalk", "reader"),
    "crosswalk.get_one_run": ("crosswalk", "reader"),
    "crosswalk.get_links": ("crosswalk", "reader"),
    "crosswalk.get_review": ("crosswalk", "reviewer"),
    "crosswalk.post_decision": ("crosswalk", "reviewer"),
    "crosswalk.get_releases": ("crosswalk", "reader"),
    "crosswalk.export_csv": ("crosswalk", "reader"),
    "crosswalk.export_xlsx": ("crosswalk", "reader"),
    "crosswalk.post_run": ("crosswalk", "admin"),
    "crosswalk.post_release": ("crosswalk", "admin"),
    "changes.get_changes": ("changes", "reader"),
    "features.get_items": (BY_COLLECTION, "reader"),
    "features.get_item": (BY_COLLECTION, "reader"),
    "features.get_versions": (BY_COLLECTION, "reader"),
    "tiles.get_tile": (BY_COLLECTION, "reader"),
    "coverage.post_coverage": ("coverage", "reader"),
    "plates.post_notice": ("plates", "uploader"),
    "subscriptions.post_subscription": ("changes", "reader"),
    "subscriptions.get_subscriptions": ("changes", "reader"),
    "subscriptions.get_one_subscription": ("changes", "reader"),
    "subscriptions.delete_one_subscription": ("changes", "reader"),
    "subscriptions.post_resume": ("changes", "reader"),
    "subscriptions.get_deliveries": ("changes", "reader"),
    "coverage.get_plate_coverage": ("coverage", "reader"),
    "coverage.get_plan_coverage": ("coverage", "reader"),
    "changes.get_daily": ("changes", "reader"),
    "uploads.post_upload": ("uploads", "uploader"),
    "uploads.get_one_upload": ("uploads", "uploader"),
    "uploads.get_finding_features": ("uploads", "uploader"),
    "uploads.publish": ("uploads", "uploader"),
    "admin.get_keys": ("admin", "admin"),
    "admin.post_key": ("admin", "admin"),
    "admin.delete_key": ("admin", "admin"),
    "admin.get_policies": ("admin", "admin"),
    "admin.put_policy": ("admin", "admin"),
    "admin.get_audit": ("admin", "admin"),
    "admin.get_agencies": ("admin", "admin"),
    "admin.post_agency": ("admin", "admin"),
}
SERVICES = sorted(
    {s for s, _ in ENDPOINTS.values() if s != BY_COLLECTION}
    | {c.service for c in COLLECTIONS.values()}
)
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
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.headers.get("X-API-Key")


def _before() -> Response | None:
    g.started = time.perf_counter()
    g.principal = None
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC or request.method == "OPTIONS":
        return None
    if request.url_rule is None:  # 404/405 are answered by Flask itself
        return None
    if endpoint in KEY_ONLY:
        conn = get_conn()
        g.principal = authenticate(conn, _key(), touch=not served_by_replica())
        return None
    rule = ENDPOINTS.get(endpoint)
    if rule is None:
        current_app.logger.error("endpoint %s has no access rule", endpoint)
        return problem(403, "no_policy", "Forbidden", "this endpoint has no access rule yet")
    service, role = rule
    if service == BY_COLLECTION:
        service = get_collection((request.view_args or {}).get("collection_id", "")).service
    g.service = service
    conn = get_conn()  # the request's one connection: auth, the view and the audit share it
    try:
        if request.method == "GET" and policy(conn, service)["public"] and not _key():
            return None
        principal = authenticate(conn, _key(), touch=not served_by_replica())
        g.principal = principal
        if not principal.can(role):
            raise Forbidden(
                f"this needs the {role} role; the key's role is {principal.role}",
                code="role_too_low",
            )
        check_policy(conn, service, principal)
    finally:
        conn.commit()
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


def _after(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Content-Security-Policy", "default-src 'self'")
    response.headers.setdefault("Cache-Control", "no-store")
    origins = current_app.config.get("CORS_ORIGINS") or []
    origin = request.headers.get("Origin")
    if origin and origin in origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    service = g.get("service")
    if service is None or request.endpoint in PUBLIC:
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
    # The request's own transaction (a write view's, when it left it open) ends here:
    # committed after a success, rolled back after a failure.
    conn = g.get("conn")
    if conn is not None and not served_by_replica() and conn.in_transaction():
        try:
            if response.status_code >= 400:
                conn.rollback()  # a failed request leaves nothing of its own behind
            else:
                conn.commit()
        except SQLAlchemyError:
            current_app.logger.exception("the request's transaction could not be ended")
    # The audit row goes through the journal (moved into the table in batches, by the
    # primary; kept on local disk while the primary is down): `geo.audit_journal`.
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
            db = make_url(url())
            folder = cfg.audit_folder / f"{db.host}-{db.port}-{db.database}"
        routes = router()

        def primary() -> Connection:
            # a pool of its own: a request holding its connection never waits on its own pool
            if routes.replicas and routes.is_down(routes.primary):
                raise routes.primary_down()
            return engine(routes.primary, autocommit=True).connect()

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
    ratelimit.init_app(app)
