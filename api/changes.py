"""`GET /changes`: the change feed, in commit order, with an opaque cursor."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.database import get_conn
from api.endpoints import Bbox, Date, Int, Text, arg, declare
from api.parameters import UNIT_REF_PATTERN
from geo.changes.feed import CURSOR_PATTERN, daily_digest, read_changes_json
from geo.geodata.registry.agencies import require_agency
from geo.geodata.registry.references import parse_unit_ref
from geo.models.changes import ENTITY_KINDS

_KIND = "|".join(ENTITY_KINDS)
bp = Blueprint("changes", __name__)


@bp.get("/changes")
@declare(
    service="changes",
    replica=True,
    query=[
        Text("since", pattern=CURSOR_PATTERN),
        Text("kinds", pattern=rf"^({_KIND})(,({_KIND}))*$"),
        Bbox("bbox"),
        Text("within", pattern=UNIT_REF_PATTERN),
        Int("upload", low=1, high=2**62),
        Int("limit", default=100, low=1, high=10_000),
    ],
)
def get_changes() -> Response:
    """Changes after ``since`` (a cursor), of some ``kinds``, in a ``bbox`` or ``within`` a
    division (``AGENCY:CODE``); follow ``next``."""
    kinds = [k.strip() for k in (arg("kinds") or "").split(",") if k.strip()]
    body = read_changes_json(
        get_conn(),
        arg("since"),
        kinds=kinds or None,
        limit=arg("limit"),
        bbox=arg("bbox"),
        within=_within(),
        upload=arg("upload"),
    )
    return Response(body, mimetype="application/json")


def _within() -> tuple[str, str] | None:
    raw = arg("within")
    if not raw:
        return None
    unit = parse_unit_ref(raw, "within")
    require_agency(get_conn(), unit.agency, "within")
    return unit


@bp.get("/changes/daily/<day>")
@declare(
    service="changes",
    replica=True,
    path=[Date("day")],
    query=[Int("limit", default=1000, low=1, high=10_000), Int("offset", default=0)],
)
def get_daily(day: str) -> Response:
    """The changes of one Jalali day (Tehran time), counted by kind and operation."""
    return jsonify(
        daily_digest(
            get_conn(),
            day,
            limit=arg("limit"),
            offset=arg("offset"),
        )
    )
