"""Admin endpoints: API keys, the services' policies, and the audit trail (read only)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import text

from api.database import get_conn, url
from api.params import int_arg
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
    body = request.get_json(silent=True) or {}
    for name in ("agency", "role", "name"):
        if not body.get(name):
            raise InvalidParameter(f"{name} is required", field=name)
    with engine(url()).begin() as conn:
        out = create_key(conn, body["agency"], body["role"], body["name"], body.get("expires_days"))
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
    body = request.get_json(silent=True) or {}
    agencies = body.get("agencies", [])
    if not isinstance(agencies, list):
        raise InvalidParameter("agencies is a list", field="agencies")
    with engine(url()).begin() as conn:
        out = set_policy(
            conn,
            service,
            body.get("mode", "all"),
            [str(a) for a in agencies],
            bool(body.get("public", False)),
            by=g.principal.name,
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
    rows = (
        get_conn()
        .execute(
            text(
                f"SELECT id, at, principal_id, agency, service, endpoint, method, params,"
                f" row_count,"
                f" status, duration_ms FROM audit WHERE {where} ORDER BY id DESC LIMIT :l OFFSET :o"
            ),
            params,
        )
        .mappings()
        .all()
    )
    return jsonify({"entries": [dict(r) for r in rows]})


@bp.get("/admin/agencies")
def get_agencies() -> Response:
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
    body = request.get_json(silent=True) or {}
    code = str(body.get("code", "")).strip().lower()
    if not code.isidentifier() or len(code) > 32:
        raise InvalidParameter("code is a short lowercase word, e.g. 'mrud'", field="code")
    for name in ("name", "name_fa"):
        if not str(body.get(name, "")).strip():
            raise InvalidParameter(f"{name} is required", field=name)
    with engine(url()).begin() as conn:
        done = conn.execute(
            text(
                "INSERT INTO agency (code, name, name_fa) VALUES (:c, :n, :f)"
                " ON CONFLICT (code) DO NOTHING"
            ),
            {"c": code, "n": body["name"], "f": body["name_fa"]},
        ).rowcount
    if not done:
        from geo.errors import ValidationError

        raise ValidationError(f"agency {code!r} exists", code="agency_exists", field="code")
    return jsonify({"code": code, "name": body["name"], "name_fa": body["name_fa"]}), 201
