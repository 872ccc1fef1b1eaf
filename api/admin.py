"""Admin endpoints: API keys, the services' policies, and the audit trail (read only)."""

from __future__ import annotations

import functools

from flask import Blueprint, Response, g, jsonify
from sqlalchemy import text

from api.auth import journal
from api.database import get_conn
from api.endpoints import Int, ServiceName, Text, arg, declare, json_object, services
from api.parameters import AGENCY_SCHEMA
from api.params import json_body, str_field
from geo.access.control import create_key, list_keys, policy, revoke_key, set_policy
from geo.access.ownership import owners, set_owner
from geo.errors import InvalidParameter
from geo.models.access import OWNED_DATASETS, POLICY_MODES, ROLES

bp = Blueprint("admin", __name__)


ADMIN = functools.partial(declare, service="admin", role="admin")


@bp.get("/admin/keys")
@ADMIN()
def get_keys() -> Response:
    """Every API key (never the key itself)."""
    return jsonify({"keys": list_keys(get_conn())})


@bp.post("/admin/keys")
@ADMIN(
    success=201,
    body=json_object(
        "agency",
        "role",
        "name",
        agency=AGENCY_SCHEMA,
        role={"type": "string", "enum": list(ROLES)},
        name={"type": "string", "minLength": 1},
        expires_days={"type": "integer", "minimum": 1, "maximum": 36500},
    ),
)
def post_key() -> tuple[Response, int]:
    """``{"agency", "role", "name", "expires_days"?}`` → the key, shown this once."""
    body = json_body()
    agency, role, name = (str_field(body, n, required=True) for n in ("agency", "role", "name"))
    days = body.get("expires_days")
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500
    ):
        raise InvalidParameter("expires_days is 1 to 36500 days", field="expires_days")
    out = create_key(get_conn(), agency, role, name, days)  # type: ignore[arg-type]
    return jsonify(out), 201


@bp.delete("/admin/keys/<int:key_id>")
@ADMIN()
def delete_key(key_id: int) -> tuple[Response, int]:
    """Revoke a key: it stops working within seconds in every process."""
    revoke_key(get_conn(), key_id)
    return jsonify({"key_id": key_id, "revoked": True}), 200


@bp.get("/admin/policies")
@ADMIN()
def get_policies() -> Response:
    """Each service's policy."""
    return jsonify({"policies": [policy(get_conn(), s) for s in services()]})


@bp.put("/admin/policies/<service>")
@ADMIN(
    body=json_object(
        mode={"type": "string", "enum": list(POLICY_MODES)},
        agencies={"type": "array", "items": AGENCY_SCHEMA},
        public=bool,
    ),
    path=[ServiceName("service")],
)
def put_policy(service: str) -> Response:
    """``{"mode": all|all_except|allow_list, "agencies": [...], "public": bool}``"""
    known = services()
    if service not in known:
        raise InvalidParameter(f"service is one of {', '.join(known)}", field="service")
    body = json_body()
    agencies = body.get("agencies", [])
    if not isinstance(agencies, list) or not all(isinstance(a, str) for a in agencies):
        raise InvalidParameter("agencies is a list of agency codes", field="agencies")
    public = body.get("public", False)
    if not isinstance(public, bool):
        raise InvalidParameter("public is true or false", field="public")
    mode = body.get("mode", "all")  # (absent is all; an empty mode is no mode, refused)
    if not isinstance(mode, str):
        raise InvalidParameter("mode is text", field="mode")
    out = set_policy(get_conn(), service, mode, agencies, public, by=g.principal.name)
    return jsonify(out)


@bp.get("/admin/owners")
@ADMIN()
def get_owners() -> Response:
    """The owner agency of each writable dataset (only its keys write it)."""
    return jsonify({"owners": owners(get_conn())})


@bp.put("/admin/owners/<dataset>")
@ADMIN(
    body=json_object("agency", agency=AGENCY_SCHEMA),
    path=[Text("dataset", enum=tuple(OWNED_DATASETS))],
)
def put_owner(dataset: str) -> Response:
    """``{"agency": "hf"}``: hand ``dataset`` (parcels, plates, crosswalk) to an agency."""
    agency = str_field(json_body(), "agency") or ""
    return jsonify(set_owner(get_conn(), dataset, agency, by=g.principal.name))


@bp.get("/audit")
@ADMIN(
    query=[
        Text("agency"),
        Text("service"),
        Text("status"),
        Int("limit", default=100, low=1, high=1000),
        Int("offset", default=0),
    ],
)
def get_audit() -> Response:
    """The audit trail, newest first; filter by ``agency``, ``service``, ``status``."""
    params = {
        "agency": arg("agency"),
        "service": arg("service"),
        "status": arg("status"),
        "limit": arg("limit"),
        "offset": arg("offset"),
    }
    where = (
        "(CAST(:agency AS text) IS NULL OR agency = :agency) AND (CAST(:service AS text) IS"
        " NULL OR service = :service) AND (CAST(:status AS text) IS NULL OR status::text ="
        " :status)"
    )
    journal().flush()  # this process's latest rows first (others' follow within a tick)
    rows = (
        get_conn()
        .execute(
            text(
                f"SELECT id, at, principal_id, agency, service, endpoint, method, params,"
                f" row_count,"
                f" status, duration_ms FROM audit WHERE {where}"
                f" ORDER BY at DESC, id DESC LIMIT :limit OFFSET :offset"
            ),
            params,
        )
        .mappings()
        .all()
    )
    return jsonify({"entries": [dict(r) for r in rows]})


@bp.get("/admin/agencies")
@ADMIN()
def get_agencies() -> Response:
    """Every agency."""
    journal().flush()  # this process's latest rows first (others' follow within a tick)
    rows = (
        get_conn()
        .execute(text("SELECT code, name, name_fa, created_at FROM agency ORDER BY code"))
        .mappings()
        .all()
    )
    return jsonify({"agencies": [dict(r) for r in rows]})


@bp.post("/admin/agencies")
@ADMIN(
    success=201,
    body=json_object(
        "code",
        "name",
        "name_fa",
        code={"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]{0,31}$"},
        name={"type": "string", "minLength": 1},
        name_fa={"type": "string", "minLength": 1},
    ),
)
def post_agency() -> tuple[Response, int]:
    """``{"code", "name", "name_fa"}``: a new agency, to hold keys and be named in policies."""
    body = json_body()
    code = (str_field(body, "code") or "").strip().lower()
    if not (code.isascii() and code.isidentifier()) or len(code) > 32:
        raise InvalidParameter("code is a short lowercase word, e.g. 'mrud'", field="code")
    name = str_field(body, "name", required=True)
    name_fa = str_field(body, "name_fa", required=True)
    done = (
        get_conn()
        .execute(
            text(
                "INSERT INTO agency (code, name, name_fa) VALUES (:c, :n, :f)"
                " ON CONFLICT (code) DO NOTHING"
            ),
            {"c": code, "n": name, "f": name_fa},
        )
        .rowcount
    )
    if not done:
        from geo.errors import Conflict

        raise Conflict(f"agency {code!r} exists", code="agency_exists", field="code")
    return jsonify({"code": code, "name": name, "name_fa": name_fa}), 201
