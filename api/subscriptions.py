"""Push subscriptions to the change feed: create, list, resume a parked one, delete, and
read the delivery log. An agency sees its own subscriptions; an admin sees all."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify

from api.database import get_conn
from api.endpoints import Int, arg, declare, json_object
from api.parameters import UNIT_REF_SCHEMA
from api.params import json_body, str_field
from geo.changes.feed import CURSOR_PATTERN
from geo.changes.webhooks import (
    create_subscription,
    delete_subscription,
    deliveries,
    get_subscription,
    list_subscriptions,
    resume_subscription,
)
from geo.errors import InvalidParameter
from geo.models.changes import ENTITY_KINDS

bp = Blueprint("subscriptions", __name__)


def _scope() -> str | None:
    """The agency whose subscriptions this key may touch (None: an admin, all)."""
    principal = g.get("principal")
    if principal is None:
        raise InvalidParameter("subscriptions need an API key", field="key")
    return None if principal.role == "admin" else principal.agency


def _list_of(body: dict[str, Any], name: str, kind: type) -> list[Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, str) and kind is str:
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(
        isinstance(v, kind) and not isinstance(v, bool) for v in value
    ):
        raise InvalidParameter(f"{name} is a list", field=name)
    return value


@bp.post("/subscriptions")
@declare(
    service="changes",
    success=201,
    body=json_object(
        "url",
        url={"type": "string", "pattern": r"^https?://[^\s/@]+(/\S*)?$"},
        kinds={"type": "array", "items": {"type": "string", "enum": list(ENTITY_KINDS)}},
        bbox={
            "type": "array",
            "items": {"type": "number", "minimum": -180, "maximum": 180},
            "minItems": 4,
            "maxItems": 4,
        },
        within=UNIT_REF_SCHEMA,
        secret=str,
        since={"type": "string", "pattern": CURSOR_PATTERN},
        batch_size={"type": "integer", "minimum": 1, "maximum": 5000},
    ),
)
def post_subscription() -> tuple[Response, int]:
    """``{"url", "kinds": [...], "bbox": [4 numbers], "within": "AGENCY:CODE",
    "secret", "since": CURSOR, "batch_size"}``: 201 with the secret (shown once)."""
    body = json_body()
    principal = g.principal
    conn = get_conn()
    bbox = _list_of(body, "bbox", float | int)  # type: ignore[arg-type]
    created = create_subscription(
        conn,
        agency=principal.agency,
        principal_id=principal.id,
        url=str_field(body, "url", required=True) or "",
        kinds=_list_of(body, "kinds", str),
        bbox=[float(v) for v in bbox] if bbox else None,
        within=str_field(body, "within"),
        secret=str_field(body, "secret"),
        since=str_field(body, "since"),
        batch_size=body.get("batch_size", 500),
    )
    return jsonify(created), 201


@bp.get("/subscriptions")
@declare(service="changes")
def get_subscriptions() -> Response:
    """The key's agency's subscriptions (all of them for an admin)."""
    return jsonify({"subscriptions": list_subscriptions(get_conn(), _scope())})


@bp.get("/subscriptions/<int:subscription_id>")
@declare(service="changes")
def get_one_subscription(subscription_id: int) -> Response:
    """One subscription: its cursor, failures, next attempt and status."""
    return jsonify(get_subscription(get_conn(), subscription_id, _scope()))


@bp.delete("/subscriptions/<int:subscription_id>")
@declare(service="changes")
def delete_one_subscription(subscription_id: int) -> Response:
    """Stop and remove a subscription (its delivery log stays)."""
    delete_subscription(get_conn(), subscription_id, _scope())
    return jsonify({"deleted": subscription_id})


@bp.post("/subscriptions/<int:subscription_id>/resume")
@declare(service="changes")
def post_resume(subscription_id: int) -> Response:
    """Make a parked subscription active again; it is tried at once."""
    return jsonify(resume_subscription(get_conn(), subscription_id, _scope()))


@bp.get("/subscriptions/<int:subscription_id>/deliveries")
@declare(service="changes", query=[Int("limit", default=100, low=1, high=1000)])
def get_deliveries(subscription_id: int) -> Response:
    """The delivery log, newest first: batch cursors, size, answer, error, duration."""
    found = deliveries(get_conn(), subscription_id, _scope(), arg("limit"))
    return jsonify({"deliveries": found})
