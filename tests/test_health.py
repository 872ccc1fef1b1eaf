"""`/healthz`, `/version` and problem responses."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from api import create_app


@pytest.fixture
def client(db_url: str) -> FlaskClient:
    return create_app({"DATABASE_URL": db_url, "TESTING": True}).test_client()


def test_healthz_reports_postgis_and_the_migration_head(client: FlaskClient) -> None:
    from geo.platform.migrate import head_revision

    r = client.get("/healthz")
    assert r.status_code == 200
    body = r.get_json()
    assert body["status"] == "ok"
    assert body["database"] == {"postgis": True}  # no versions for anyone
    assert body["migration"] == {"current": head_revision(), "head": head_revision()}
    assert "python" not in client.get("/version").get_json()


def test_healthz_tells_an_admin_the_versions(db_url: str, client: FlaskClient) -> None:
    from geo.access.control import create_key
    from geo.platform.database import Database

    with Database(db_url).begin() as c:
        admin = create_key(c, "moi", "admin", "health")["key"]
        reader = create_key(c, "moi", "reader", "health")["key"]
    told = client.get("/healthz", headers={"Authorization": f"Bearer {admin}"}).get_json()
    assert told["database"]["postgis_version"].startswith("3.")
    kept = client.get("/healthz", headers={"Authorization": f"Bearer {reader}"}).get_json()
    assert "postgis_version" not in kept["database"]


def test_healthz_says_503_when_the_schema_is_behind(empty_db_url: str) -> None:
    client = create_app({"DATABASE_URL": empty_db_url}).test_client()
    from geo.platform import migrate

    migrate.upgrade(empty_db_url, "0001")
    r = client.get("/healthz")
    assert r.status_code == 503 and r.get_json()["status"] == "migration_pending"


def test_healthz_is_a_problem_when_the_database_is_down() -> None:
    client = create_app({"DATABASE_URL": "postgresql://x:y@127.0.0.1:1/none"}).test_client()
    r = client.get("/healthz")
    assert r.status_code == 503
    assert r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["code"] == "database_unreachable"
    assert "127.0.0.1" not in body["detail"] and "y@" not in r.get_data(as_text=True)


def test_version(client: FlaskClient) -> None:
    body = client.get("/version").get_json()
    assert body["name"] == "tagsim" and body["version"] and body["schema"]


def test_unknown_path_is_a_problem_with_a_stable_code(client: FlaskClient) -> None:
    r = client.get("/no/such/thing")
    assert r.status_code == 404 and r.mimetype == "application/problem+json"
    body = r.get_json()
    assert body["code"] == "not_found" and body["type"].endswith("not_found")
    assert body["instance"] == "/no/such/thing"
