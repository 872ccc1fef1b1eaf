"""`GET /changes`: the change feed, in commit order, with an opaque cursor."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from api.database import get_conn
from api.params import bbox_arg, int_arg
from geo.changes import daily_digest, read_changes_json
from geo.registry.equivalents import parse_agency_code

bp = Blueprint("changes", __name__)


@bp.get("/changes")
def get_changes() -> Response:
    """Changes after ``since`` (a cursor), of some ``kinds``, in a ``bbox`` or ``within`` a
    division (``AGENCY:CODE``); follow ``next``."""
    kinds = [k.strip() for k in request.args.get("kinds", "").split(",") if k.strip()]
    body = read_changes_json(
        get_conn(),
        request.args.get("since") or None,
        kinds=kinds or None,
        limit=int_arg("limit", 100, 1, 10_000),
        bbox=bbox_arg(),
        within=_within(),
        upload=int_arg("upload", 0, 1, 2**62) if request.args.get("upload") else None,
    )
    return Response(body, mimetype="application/json")


def _within() -> tuple[str, str] | None:
    raw = request.args.get("within")
    return parse_agency_code(raw, "within") if raw else None


@bp.get("/changes/daily/<day>")
def get_daily(day: str) -> Response:
    """The changes of one Jalali day (Tehran time), counted by kind and operation."""
    return jsonify(
        daily_digest(
            get_conn(),
            day,
            limit=int_arg("limit", 1000, 1, 10_000),
            offset=int_arg("offset", 0, 0, 10**9),
        )
    )
