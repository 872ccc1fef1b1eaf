"""`GET /me`: who this key is and what it may do — the web page shows only that."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify

from api.database import get_conn
from api.endpoints import BY_COLLECTION, declare, endpoint_of, services
from geo.access.control import RANK, Forbidden, check_policy

bp = Blueprint("me", __name__)


@bp.get("/me")
@declare(key_only=True)
def get_me() -> Response:
    """The key's agency, name and role, and per service: readable and the roles it holds."""
    from geo.geodata.features.collections import COLLECTIONS

    by_collection = {c.service for c in COLLECTIONS.values()}

    conn = get_conn()
    principal = g.principal  # authenticated before the view (declared key_only)
    declared = [
        (spec.service, spec.role)
        for name in current_app.view_functions
        if (spec := endpoint_of(current_app, name)) is not None and spec.access == "service"
    ]
    answer = {}
    for service in services():
        try:
            check_policy(conn, service, principal)
            open_to_agency = True
        except Forbidden:
            open_to_agency = False
        needed = sorted(
            {
                role
                for s, role in declared
                if s == service or (s == BY_COLLECTION and service in by_collection)
            },
            key=RANK.__getitem__,
        )
        answer[service] = {
            "open": open_to_agency,
            "can": [r for r in needed if open_to_agency and principal.can(r)],
        }
    return jsonify(
        {
            "agency": principal.agency,
            "name": principal.name,
            "role": principal.role,
            "services": answer,
        }
    )
