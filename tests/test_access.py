"""Access control: every endpoint × (no key, wrong key, revoked key, each role of each
agency — so every write route meets its owner and every other agency —, an agency excluded
by all_except, an agency outside an allow_list), generated from the app's routes and their
declarations."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from api import create_app
from api.endpoints import Endpoint, check_declared, declare, endpoint_of, services
from geo.access.control import RANK, create_key, revoke_key, set_policy
from geo.models.access import OWNED_DATASETS as OWNERS
from geo.platform.database import Database

ROLES = ("reader", "uploader", "reviewer", "admin")
AGENCIES = ("moi", "sci", "hf", "registration")


@pytest.fixture(scope="module")
def app(module_db_url: str) -> Flask:
    return create_app(
        {
            "DATABASE_URL": module_db_url,
            "RATE_LIMIT": "100000 per minute",
            "AUTH_FAILURE_LIMIT": "100000 per minute",  # the matrix fails on purpose
        }
    )


@pytest.fixture(scope="module")
def keys(module_db_url: str) -> dict[str, str]:
    out = {}
    with Database(module_db_url).begin() as conn:
        for role in ROLES:
            out[role] = create_key(conn, "sci", role, f"matrix {role}")["key"]
            for agency in AGENCIES:
                out[f"{agency} {role}"] = create_key(conn, agency, role, "matrix")["key"]
        out["hf_reader"] = create_key(conn, "hf", "reader", "excluded")["key"]
        out["registration_reader"] = create_key(conn, "registration", "reader", "outside")["key"]
        revoked = create_key(conn, "sci", "admin", "revoked")
        revoke_key(conn, revoked["key_id"])
        out["revoked"] = revoked["key"]
        expired = create_key(conn, "sci", "admin", "expired", expires_days=1)
        conn.execute(
            text("UPDATE api_key SET expires_at = now() - interval '1 day' WHERE id = :k"),
            {"k": expired["key_id"]},
        )
        out["expired"] = expired["key"]
    return out


def _routes(app: Flask) -> list[tuple[str, str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        args = {
            a: 999999 if rule._converters[a].__class__.__name__ == "IntegerConverter" else "23"
            for a in rule.arguments
        }
        if "collection_id" in args:  # guarded by the collection's own service
            args["collection_id"] = "parcels"
        path = rule.build(args, append_unknown=False)[1]
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, path))
    return out


def _call(client: FlaskClient, method: str, path: str, key: str | None) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.open(path, method=method, headers=headers, json={}).status_code


def _declared(app: Flask, endpoint: str) -> Endpoint:
    found = endpoint_of(app, endpoint)
    assert found is not None, endpoint
    return found


def test_every_endpoint_has_an_access_rule(app: Flask) -> None:
    missing = [e for e, _, _ in _routes(app) if endpoint_of(app, e) is None]
    assert missing == []
    kinds = {_declared(app, e).access for e, _, _ in _routes(app)}
    assert kinds == {"public", "key", "service"}


def test_a_route_without_a_declaration_is_refused(module_db_url: str) -> None:
    app = create_app({"DATABASE_URL": module_db_url})
    app.add_url_rule("/forgotten", "forgotten", lambda: "open to all?")
    with pytest.raises(RuntimeError, match="forgotten"):
        check_declared(app)
    app.view_functions["forgotten"] = declare(service="admin", role="admin")(lambda: "guarded")
    check_declared(app)


def test_a_declaration_is_exactly_one_kind_of_access() -> None:
    with pytest.raises(ValueError):
        declare(public=True, service="admin")
    with pytest.raises(ValueError):
        declare()


@pytest.mark.parametrize(
    ("mode", "agencies", "outsider"),
    [
        ("all_except", ["hf"], "hf_reader"),
        ("allow_list", ["sci", "moi"], "registration_reader"),
        # the owners admitted: their writes pass, every other agency's are refused
        ("allow_list", ["hf", "registration", "moi"], "sci reader"),
    ],
)
def test_the_matrix(
    app: Flask,
    keys: dict[str, str],
    module_db_url: str,
    mode: str,
    agencies: list[str],
    outsider: str,
) -> None:
    client = app.test_client()
    with Database(module_db_url).begin() as conn:
        for service in services(app):
            set_policy(conn, service, mode, agencies, public=False)
    failures = []
    try:
        for endpoint, method, path in _routes(app):
            declared = _declared(app, endpoint)
            if declared.access == "public":
                assert _call(client, method, path, None) not in (401, 403), endpoint
                continue
            if declared.access == "key":
                assert _call(client, method, path, None) == 401, endpoint
                assert _call(client, method, path, keys[outsider]) == 200, endpoint
                continue
            needed = declared.role
            expect = {
                "no key": (None, 401),
                "wrong key": ("tgs_0000_nope", 401),
                "not a key": ("hello", 401),
                "revoked": (keys["revoked"], 401),
                "expired": (keys["expired"], 401),
            }
            for agency in AGENCIES:
                for role in ROLES:
                    admitted = role == "admin" or (
                        RANK[role] >= RANK[needed]
                        and (agency not in agencies if mode == "all_except" else agency in agencies)
                        and (declared.owner is None or OWNERS[declared.owner] == agency)
                    )
                    expect[f"{agency} {role}"] = (
                        keys[f"{agency} {role}"],
                        None if admitted else 403,
                    )
            for case, (key, status) in expect.items():
                got = _call(client, method, path, key)
                if status is None and got in (401, 403):
                    failures.append((endpoint, method, case, got))
                if status is not None and got != status:
                    failures.append((endpoint, method, case, got, "expected", status))
    finally:
        with Database(module_db_url).begin() as conn:
            for service in services(app):
                set_policy(conn, service, "all", [], public=False)
    assert failures == []


def test_allow_list_shuts_out_other_agencies(
    app: Flask, keys: dict[str, str], module_db_url: str
) -> None:
    client = app.test_client()
    with Database(module_db_url).begin() as conn:
        set_policy(conn, "divisions", "allow_list", ["sci", "moi"], public=False)
    assert _call(client, "GET", "/editions", keys["registration_reader"]) == 403
    assert _call(client, "GET", "/editions", keys["reader"]) == 200
    body = client.get(
        "/editions", headers={"Authorization": f"Bearer {keys['registration_reader']}"}
    ).get_json()
    with Database(module_db_url).begin() as conn:
        set_policy(conn, "divisions", "all", [], public=False)
    assert body["code"] == "agency_not_allowed" and "sci" in body["detail"]


def test_public_division_reads_need_no_key_but_writes_do(
    app: Flask, keys: dict[str, str], module_db_url: str
) -> None:
    client = app.test_client()
    assert client.get("/editions").status_code == 401
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    r = client.put(
        "/admin/policies/divisions",
        headers=admin,
        json={"mode": "all", "agencies": [], "public": True},
    )
    assert r.status_code == 200 and r.get_json()["public"] is True
    assert client.get("/editions").status_code == 200
    assert client.post("/resolve", json={"agency": "sci", "codes": ["23"]}).status_code == 401
    client.put("/admin/policies/divisions", headers=admin, json={"mode": "all"})
    assert client.get("/editions").status_code == 401


def test_every_protected_request_is_audited(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    reader = {"Authorization": f"Bearer {keys['reader']}"}
    client.get("/editions?agency=sci", headers=reader)
    client.get("/editions", headers={"Authorization": "Bearer tgs_0000_wrong"})
    entries = client.get(
        "/audit?service=divisions&limit=50", headers={"Authorization": f"Bearer {keys['admin']}"}
    ).get_json()["entries"]
    ok = next(e for e in entries if e["params"].get("agency") == "sci" and e["status"] == 200)
    assert ok["agency"] == "sci" and ok["endpoint"] == "editions.get_editions"
    assert ok["row_count"] is not None and ok["duration_ms"] >= 0
    assert client.get("/audit", headers=reader).status_code == 403


def test_failed_authentications_are_limited_per_address_and_audited_as_counts(
    module_db_url: str, keys: dict[str, str]
) -> None:
    """Issue 22, finding 13: 2,000 bad keys in 5 s each cost a lookup and an audit row."""
    app = create_app(
        {
            "DATABASE_URL": module_db_url,
            "AUTH_FAILURE_LIMIT": "20 per minute",
            "CLOCK": lambda: 1_800_000_030.0,  # mid-minute, always: no window ends mid-test
        }
    )
    client = app.test_client()
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    with Database(module_db_url).connect() as c:
        before = c.execute(text("SELECT coalesce(max(id), 0) FROM audit")).scalar_one()
    wrong = {"Authorization": "Bearer tgs_0000_wrong", "X-Forwarded-For": "ignored"}
    statuses = [client.get("/editions", headers=wrong).status_code for _ in range(200)]
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    refused = client.get("/editions", headers=wrong)
    assert refused.get_json()["code"] == "too_many_failures" and refused.headers["Retry-After"]
    from api.auth import journal

    with app.app_context():
        assert app.extensions["tagsim_auth_failures"].flush() == 1  # one row: this minute
        journal().flush()
    with Database(module_db_url).connect() as c:
        rows = c.execute(
            text(
                "SELECT params->>'address', row_count FROM audit WHERE id > :n"
                " AND endpoint = 'authentication_failures'"
            ),
            {"n": before},
        ).all()
        added = c.execute(
            text("SELECT count(*) FROM audit WHERE id > :n"), {"n": before}
        ).scalar_one()
    assert [tuple(r) for r in rows] == [("127.0.0.1", 20)] and added == 1
    # another address is not held back by this one's failures
    other = client.get("/editions", headers=admin, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200


def test_keys_over_http_are_shown_once_and_revocable(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    made = client.post(
        "/admin/keys", headers=admin, json={"agency": "hf", "role": "uploader", "name": "HF GIS"}
    ).get_json()
    assert made["key"].startswith("tgs_")
    listed = client.get("/admin/keys", headers=admin).get_json()["keys"]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    theirs = {"Authorization": f"Bearer {made['key']}"}
    assert client.get("/uploads/999999", headers=theirs).status_code == 404
    assert client.delete(f"/admin/keys/{made['key_id']}", headers=admin).status_code == 200
    assert client.get("/uploads/999999", headers=theirs).status_code == 401
    bad = client.post(
        "/admin/keys", headers=admin, json={"agency": "hf", "role": "king", "name": "x"}
    )
    assert bad.status_code == 400 and bad.get_json()["field"] == "role"


def test_rate_limit_headers_and_cors(module_db_url: str, keys: dict[str, str]) -> None:
    app = create_app(
        {
            "DATABASE_URL": module_db_url,
            "RATE_LIMIT": "2 per minute",
            "CORS_ORIGINS": ["https://portal.example"],
            "CLOCK": lambda: 1_800_000_030.0,  # mid-minute: the window cannot end mid-test
        }
    )
    client = app.test_client()
    reader = {"Authorization": f"Bearer {keys['reader']}"}
    statuses = [client.get("/editions", headers=reader).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = client.get("/editions", headers=reader)
    assert limited.headers["Retry-After"] and limited.get_json()["code"] == "too_many_requests"
    r = client.get("/healthz", headers={"Origin": "https://portal.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://portal.example"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    other = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_errors_leak_nothing(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    r = client.get("/divisions/sci/23", headers={"Authorization": "Bearer tgs_x_' OR 1=1 --"})
    body = r.get_data(as_text=True)
    assert r.status_code == 401 and "SELECT" not in body and "Traceback" not in body


def test_admins_add_agencies_that_then_hold_keys(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    admin = {"Authorization": f"Bearer {keys['admin']}"}
    r = client.post(
        "/admin/agencies",
        headers=admin,
        json={
            "code": "mrud",
            "name": "Ministry of Roads and Urban Development",
            "name_fa": "وزارت راه و شهرسازی",
        },
    )
    assert r.status_code == 201
    again = client.post(
        "/admin/agencies", headers=admin, json={"code": "mrud", "name": "x", "name_fa": "x"}
    )
    assert again.status_code == 409 and again.get_json()["code"] == "agency_exists"
    made = client.post(
        "/admin/keys", headers=admin, json={"agency": "mrud", "role": "reader", "name": "MRUD"}
    )
    assert made.status_code == 201
    codes = [a["code"] for a in client.get("/admin/agencies", headers=admin).get_json()["agencies"]]
    assert "mrud" in codes


def test_oversized_requests_are_refused(module_db_url: str, keys: dict[str, str]) -> None:
    app = create_app({"DATABASE_URL": module_db_url, "MAX_CONTENT_LENGTH": 1024})
    r = app.test_client().post(
        "/resolve",
        data=b"x" * 4096,
        content_type="application/json",
        headers={"Authorization": f"Bearer {keys['reader']}"},
    )
    assert r.status_code == 413 and r.get_json()["code"] == "request_entity_too_large"


def test_me_tells_a_key_what_it_may_do(module_db_url: str, keys: dict[str, str]) -> None:
    client = create_app({"DATABASE_URL": module_db_url}).test_client()
    with Database(module_db_url).begin() as conn:
        set_policy(conn, "uploads", "allow_list", ["hf"], public=False)
    try:
        me = client.get("/me", headers={"Authorization": f"Bearer {keys['uploader']}"}).get_json()
        assert (me["agency"], me["role"]) == ("sci", "uploader")
        assert me["services"]["uploads"] == {"open": False, "can": []}
        assert me["services"]["parcels"]["can"] == ["reader"]
        assert "reviewer" not in me["services"]["crosswalk"]["can"]
        admin = client.get("/me", headers={"Authorization": f"Bearer {keys['admin']}"})
        assert "uploader" in admin.get_json()["services"]["uploads"]["can"]
        assert client.get("/me").status_code == 401
    finally:
        with Database(module_db_url).begin() as conn:
            set_policy(conn, "uploads", "all", [], public=False)


def test_http_basic_carries_the_key_as_its_password(app: Flask, keys: dict[str, str]) -> None:
    """Desktop GIS (QGIS 3.22) can send Basic auth but no header of its own."""
    import base64

    client = app.test_client()

    def basic(pair: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    me = client.get("/me", headers=basic(f"anyone:{keys['reader']}"))
    assert me.status_code == 200 and me.get_json()["agency"] == "sci"
    assert client.get("/me", headers=basic(f"sci:{keys['revoked']}")).status_code == 401
    assert client.get("/me", headers=basic("sci:tgs_not_a_key")).status_code == 401
    assert client.get("/me", headers=basic("no colon")).status_code == 401
    assert client.get("/me", headers={"Authorization": "Basic %%%"}).status_code == 401
