"""`/healthz` (database, PostGIS, migration head) and `/version`."""

from __future__ import annotations

from importlib.metadata import version as package_version

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from api.database import get_conn
from api.endpoints import declare
from api.errors import problem
from geo.access.control import authenticate
from geo.errors import GeoError
from geo.platform.migrate import head_revision

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@declare(public=True)
def healthz() -> Response | tuple[Response, int]:
    """200 when the database answers with PostGIS at the code's migration head. The
    PostgreSQL and PostGIS versions are told to an admin's key only: to anyone else they
    are a map of what to attack."""
    head = head_revision()
    try:
        conn = get_conn()
        server = conn.execute(text("SHOW server_version")).scalar_one()
        postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        admin = _is_admin(conn)
    except GeoError as exc:  # e.g. the local cluster was never created
        return problem(503, exc.code, "Service Unavailable", exc.message)
    except SQLAlchemyError as exc:  # down, or not ours: say so, without internals
        return problem(
            503,
            "database_unreachable",
            "Service Unavailable",
            f"the database does not answer ({type(exc).__name__})",
        )
    body: dict[str, object] = {
        "status": "ok" if current == head else "migration_pending",
        "database": {"postgis": True},
        "migration": {"current": current, "head": head},
    }
    if admin:
        body["database"] = {"postgis": True, "server_version": server, "postgis_version": postgis}
    return jsonify(body), 200 if current == head else 503


def _is_admin(conn: Connection) -> bool:
    """Whether the request carries a valid admin key (a bad key is no error here)."""
    key = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not key:
        return False
    try:
        return authenticate(conn, key, touch=False).role == "admin"
    except GeoError:
        return False


@bp.get("/version")
@declare(public=True)
def version() -> Response:
    """The code's version and schema head."""
    return jsonify(
        name="tagsim",
        version=package_version("tagsim"),
        schema=head_revision(),
    )
