"""One database connection per request, on ``g``, closed at teardown (Flask tutorial style).

Read-only endpoints (``READS``) are served by a read replica when ``TAGSIM_REPLICA_URLS``
names some (`geo.routing`); everything else, and anything that must read its own writes
(uploads, review, subscriptions, keys), goes to the primary. The answer says which served
it in ``X-Tagsim-Database: primary|replica``.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Connection

from geo.config import settings
from geo.db import database_url
from geo.routing import Router

# Endpoints that only read (POST /coverage too: its body is a question, not a change).
READS = frozenset(
    {
        "features.get_collections",
        "features.get_collection_doc",
        "features.get_items",
        "features.get_item",
        "features.get_versions",
        "tiles.get_tile",
        "tiles.get_tilejson",
        "coverage.post_coverage",
        "coverage.get_plate_coverage",
        "coverage.get_plan_coverage",
        "divisions.search_divisions",
        "divisions.divisions_at",
        "divisions.get_division",
        "divisions.get_children",
        "divisions.get_history",
        "divisions.resolve_batch",
        "editions.get_editions",
        "editions.get_one_edition",
        "editions.get_events",
        "changes.get_changes",
        "changes.get_daily",
        "crosswalk.get_links",
        "crosswalk.get_releases",
        "crosswalk.export_csv",
        "crosswalk.export_xlsx",
    }
)


def url() -> str:
    """The primary's database URL of the running app, resolved once."""
    resolved = current_app.config.get("DATABASE_URL")
    if not resolved:
        resolved = current_app.config["DATABASE_URL"] = database_url()
    return resolved


def router() -> Router:
    """The app's router (primary + ``REPLICA_URLS``), made once."""
    found = current_app.extensions.get("tagsim_router")
    if found is None:
        replicas = current_app.config.get("REPLICA_URLS")
        if replicas is None:
            replicas = settings().replica_urls
        found = current_app.extensions["tagsim_router"] = Router(url(), tuple(replicas))
    return found


def get_conn() -> Connection:
    """The request's connection (opened on first use).

    A GET's connection is in autocommit: its reads need no BEGIN/COMMIT round trips (each
    statement sees its own snapshot, as under READ COMMITTED anyway) and its audit row is
    one statement. Reads in ``READS`` may go to a replica. Other methods get a transaction
    on the primary, committed by the view."""
    if "conn" not in g:
        if request.endpoint in READS:
            route = router().read()
        else:
            route = router().write(autocommit=request.method in {"GET", "HEAD"})
        g.conn, g.db_role = route.conn, route.role
    return g.conn


def served_by_replica() -> bool:
    return g.get("db_role") == "replica"


def close_conn(_exc: BaseException | None = None) -> None:
    conn = g.pop("conn", None)
    if conn is not None:
        conn.close()


def _label(response: Response) -> Response:
    role = g.get("db_role")
    if role is not None:
        response.headers["X-Tagsim-Database"] = role
    return response


def init_app(app: Flask) -> None:
    app.after_request(_label)
    app.teardown_appcontext(close_conn)
