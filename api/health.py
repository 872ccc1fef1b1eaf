"""`/healthz` (database, PostGIS, migration head) and `/version`."""

from __future__ import annotations

import platform
from importlib.metadata import version as package_version

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.database import get_conn
from api.endpoints import declare
from api.errors import problem
from geo.errors import GeoError
from geo.platform.migrate import head_revision

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@declare(public=True)
def healthz() -> Response | tuple[Response, int]:
    """200 when the database answers with PostGIS at the code's migration head."""
    head = head_revision()
    try:
        conn = get_conn()
        server = conn.execute(text("SHOW server_version")).scalar_one()
        postgis = conn.execute(text("SELECT postgis_lib_version()")).scalar_one()
        current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except GeoError as exc:  # e.g. the local cluster was never created
        return problem(503, exc.code, "Service Unavailable", exc.message)
    except SQLAlchemyError as exc:  # down, or not ours: say so, without internals
        return problem(
            503,
            "database_unreachable",
            "Service Unavailable",
            f"the database does not answer ({type(exc).__name__})",
        )
    body = {
        "status": "ok" if current == head else "migration_pending",
        "database": {"server_version": server, "postgis_version": postgis},
        "migration": {"current": current, "head": head},
    }
    return jsonify(body), 200 if current == head else 503


@bp.get("/version")
@declare(public=True)
def version() -> Response:
    """The code's version and schema head."""
    return jsonify(
        name="tagsim",
        version=package_version("tagsim"),
        schema=head_revision(),
        python=platform.python_version(),
    )
