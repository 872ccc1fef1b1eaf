"""`GET /me`: who this key is and what it may do — the web page shows only that."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from api.database import get_conn
from geo.access import RANK, Forbidden, check_policy

bp = Blueprint("me", __name__)


@bp.get("/me")
def get_me() -> Response:
    """The key's agency, name and role, and per service: readable and the roles it holds."""
    from api.auth import BY_COLLECTION, ENDPOINTS, SERVICES
    from geo.features.collections import COLLECTIONS

    by_collection = {c.service for c in COLLECTIONS.values()}

    conn = get_conn()
    principal = g.principal  # authenticated before the view (auth.KEY_ONLY)
    services = {}
    for service in SERVICES:
        try:
            check_policy(conn, service, principal)
            open_to_agency = True
        except Forbidden:
            open_to_agency = False
        needed = sorted(
            {
                role
                for s, role in ENDPOINTS.values()
                if s == service or (s == BY_COLLECTION and service in by_collection)
            },
            key=RANK.__getitem__,
        )
        services[service] = {
            "open": open_to_agency,
            "can": [r for r in needed if open_to_agency and principal.can(r)],
        }
    return jsonify(
        {
            "agency": principal.agency,
            "name": principal.name,
            "role": principal.role,
            "services": services,
        }
    )
