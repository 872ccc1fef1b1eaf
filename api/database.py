"""The request's unit of work: one connection per request, on ``g``, closed at teardown.

The app's :class:`~geo.platform.database.Database` (made once per app) owns the
connections. An endpoint declared ``replica=True`` (`api.endpoints`) may be served by a
read replica when ``TAGSIM_REPLICA_URLS`` names some (`geo.platform.routing`); everything
else, and anything that must read its own writes, goes to the primary. The answer says
which served it in ``X-Tagsim-Database: primary|replica``.

A GET's connection is in autocommit (each statement its own snapshot, no BEGIN/COMMIT round
trips). Any other method's connection holds one transaction, the request's unit of work:
committed after the view when the answer is a success, rolled back otherwise — whatever
the view wrote (an upload's row, its file and its job) commits together or not at all.
The key's ``last_used_at`` touch is committed right after authentication, so no row lock
on a key lasts a whole request.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, g, request
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from api.endpoints import endpoint_of
from api.errors import geo_problem, problem
from geo.platform.config import settings
from geo.platform.database import Database, database_url
from geo.platform.routing import Router


def app_db() -> Database:
    """The app's database (the primary): made once per app, the owner of its connections."""
    found = current_app.extensions.get("tagsim_db")
    if found is None:
        resolved = current_app.config.get("DATABASE_URL") or database_url()
        found = current_app.extensions["tagsim_db"] = Database(resolved)
    return found


def router() -> Router:
    """The app's router (primary + ``REPLICA_URLS``), made once."""
    found = current_app.extensions.get("tagsim_router")
    if found is None:
        replicas = current_app.config.get("REPLICA_URLS")
        if replicas is None:
            replicas = settings().replica_urls
        found = current_app.extensions["tagsim_router"] = Router(app_db().url, tuple(replicas))
    return found


def get_conn() -> Connection:
    """The request's connection (opened on first use; see the module's docstring)."""
    if "conn" not in g:
        declared = endpoint_of(current_app, request.endpoint)
        if declared is not None and declared.replica:
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


def end_authentication() -> None:
    """Commit what authenticating wrote (the key's use), before the view runs.

    Called from a ``finally``: when authentication failed because the server went away,
    the connection is invalid and its transaction is only rolled back, so the request ends
    with the clean 503 of :func:`_database_gone`, not a second error."""
    conn = g.get("conn")
    if conn is None or not conn.in_transaction():
        return
    transaction = conn.get_transaction()
    if conn.invalidated or transaction is None or not transaction.is_active:
        conn.rollback()
        return
    conn.commit()


def _finish(response: Response) -> Response:
    """End the request's unit of work: commit after a success, roll back otherwise. A commit
    that fails turns the answer into a 503: the client must not be told it was done."""
    conn = g.get("conn")
    if conn is None or served_by_replica() or not conn.in_transaction():
        return response
    if response.status_code >= 400:
        conn.rollback()
        return response
    try:
        conn.commit()
    except SQLAlchemyError:
        current_app.logger.exception("the request's unit of work could not be committed")
        conn.rollback()
        return problem(
            503, "commit_failed", "Service Unavailable", "the change could not be stored; retry"
        )
    return response


def _database_gone(exc: OperationalError) -> Response:
    """The server went away mid-request (restart, failover): retry later, not a bug."""
    current_app.logger.warning("database error on %s: %s", request.path, exc.orig)
    routes = router()
    if routes.replicas and g.get("db_role") == "primary":
        # the primary went away under a pooled connection: as when it refuses a new one,
        # writes wait for it, reads go to the replicas meanwhile
        routes.mark_down(routes.primary)
        return geo_problem(routes.primary_down())
    return problem(
        503,
        "database_unavailable",
        "Service Unavailable",
        "the database did not answer; try again shortly",
    )


def init_app(app: Flask) -> None:
    """The request's connection, its label and its end (register before the other hooks)."""
    app.after_request(_label)
    app.teardown_appcontext(close_conn)
    app.register_error_handler(OperationalError, _database_gone)


def init_unit_of_work(app: Flask) -> None:
    """Commit or roll back each request's unit of work. Registered after every other
    ``after_request`` hook, so it runs first: the audit and the headers see the final
    status."""
    app.after_request(_finish)
