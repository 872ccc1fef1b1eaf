"""Admin endpoints: API keys, the services' policies, and the audit trail (read only)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import text

from api.auth import journal
from api.database import get_conn, url
from api.params import int_arg, json_body, str_field
from geo.access import create_key, list_keys, policy, revoke_key, set_policy
from geo.db import engine
from geo.errors import InvalidParameter

bp = Blueprint("admin", __name__)


@bp.get("/admin/keys")
def get_keys() -> Response:
    return jsonify({"keys": list_keys(get_conn())})


@bp.post("/admin/keys")
def post_key() -> tuple[Response, int]:
    """``{"agency", "role", "name", "expires_days"?}`` → the key, shown this once."""
    body = json_body()
    agency, role, name = (str_field(body, n, required=True) for n in ("agency", "role", "name"))
    days = body.get("expires_days")
    if days is not None and (
        isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 36500
    ):
        raise InvalidParameter("expires_days is 1 to 36500 days", field="expires_days")
    with engine(url()).begin() as conn:
        out = create_key(conn, agency, role, name, days)  # type: ignore[arg-type]
    return jsonify(out), 201


@bp.delete("/admin/keys/<int:key_id>")
def delete_key(key_id: int) -> tuple[Response, int]:
    with engine(url()).begin() as conn:
        revoke_key(conn, key_id)
    return jsonify({"key_id": key_id, "revoked": True}), 200


@bp.get("/admin/policies")
def get_policies() -> Response:
    from api.auth import SERVICES

    return jsonify({"policies": [policy(get_conn(), s) for s in SERVICES]})


@bp.put("/admin/policies/<service>")
def put_policy(service: str) -> Response:
    """``{"mode": all|all_except|allow_list, "agencies": [...], "public": bool}``"""
    from api.auth import SERVICES

    if service not in SERVICES:
        raise InvalidParameter(f"service is one of {', '.join(SERVICES)}", field="service")
    body = json_body()
    agencies = body.get("agencies", [])
    if not isinstance(agencies, list) or not all(isinstance(a, str) for a in agencies):
        raise InvalidParameter("agencies is a list of agency codes", field="agencies")
    public = body.get("public", False)
    if not isinstance(public, bool):
        raise InvalidParameter("public is true or false", field="public")
    with engine(url()).begin() as conn:
        out = set_policy(
            conn, service, str_field(body, "mode") or "all", agencies, public, by=g.principal.name
        )
    return jsonify(out)


@bp.get("/audit")
def get_audit() -> Response:
    """The audit trail, newest first; filter by ``agency``, ``service``, ``status``."""
    args = request.args
    params = {
        "a": args.get("agency"),
        "s": args.get("service"),
        "st": args.get("status"),
        "l": int_arg("limit", 100, 1, 1000),
        "o": int_arg("offset", 0, 0, 10**9),
    }
    where = (
        "(CAST(:a AS text) IS NULL OR agency = :a) AND (CAST(:s AS text) IS NULL OR"
        " service = :s) AND (CAST(:st AS text) IS NULL OR status::text = :st)"
    )
    journal().flush()  # this process's latest rows first (others' follow within a tick)
    rows = (
        get_conn()
        .execute(
            text(
                f"SELECT id, at, principal_id, agency, service, endpoint, method, params,"
                f" row_count,"
                f" status, duration_ms FROM audit WHERE {where}"
                f" ORDER BY at DESC, id DESC LIMIT :l OFFSET :o"
            ),
            params,
        )
        .mappings()
        .all()
    )
    return jsonify({"entries": [dict(r) for r in rows]})


@bp.get("/admin/agencies")
def get_agencies() -> Response:
    journal().flush()  # this process's latest rows first (others' follow within a tick)
    rows = (
        get_conn()
        .execute(text("SELECT code, name, name_fa, created_at FROM agency ORDER BY code"))
        .mappings()
        .all()
    )
    return jsonify({"agencies": [dict(r) for r in rows]})


@bp.post("/admin/agencies")
def post_agency() -> tuple[Response, int]:
    """``{"code", "name", "name_fa"}``: a new agency, to hold keys and be named in policies."""
    body = json_body()
    code = (str_field(body, "code") or "").strip().lower()
    if not code.isidentifier() or len(code) > 32:
        raise InvalidParameter("code is a short lowercase word, e.g. 'mrud'", field="code")
    name = str_field(body, "name", required=True)
    name_fa = str_field(body, "name_fa", required=True)
    with engine(url()).begin() as conn:
        done = conn.execute(
            text(
                "INSERT INTO agency (code, name, name_fa) VALUES (:c, :n, :f)"
                " ON CONFLICT (code) DO NOTHING"
            ),
            {"c": code, "n": name, "f": name_fa},
        ).rowcount
    if not done:
        from geo.errors import ValidationError

        raise ValidationError(f"agency {code!r} exists", code="agency_exists", field="code")
    return jsonify({"code": code, "name": name, "name_fa": name_fa}), 201
