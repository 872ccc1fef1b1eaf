"""Ownership (DESIGN.md §11): each writable dataset has an owner agency; only its keys (and
admins) write it; an upload is seen by its own agency alone."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from api import create_app
from geo.access.control import create_key
from geo.platform.database import Database


@pytest.fixture(scope="module")
def app(module_db_url: str) -> Flask:
    return create_app({"DATABASE_URL": module_db_url, "RATE_LIMIT": "100000 per minute"})


@pytest.fixture(scope="module")
def keys(module_db_url: str) -> dict[str, str]:
    with Database(module_db_url).begin() as conn:
        return {
            name: create_key(conn, agency, role, name)["key"]
            for name, agency, role in (
                ("hf", "hf", "uploader"),
                ("hf2", "hf", "uploader"),
                ("sci", "sci", "uploader"),
                ("registration", "registration", "uploader"),
                ("admin", "sci", "admin"),
            )
        }


def _as(client: FlaskClient, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _upload(client: FlaskClient, key: str) -> Any:
    return client.post(
        "/uploads",
        headers=_as(client, key),
        data={"file": (io.BytesIO(b'{"type": "FeatureCollection", "features": []}'), "m.geojson")},
        content_type="multipart/form-data",
    )


def test_an_upload_is_seen_by_its_agency_alone(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    made = _upload(client, keys["hf"])
    assert made.status_code == 202, made.get_data(as_text=True)
    upload = made.get_json()["upload_id"]
    for path in (f"/uploads/{upload}", f"/uploads/{upload}/features"):
        for who in ("hf", "hf2", "admin"):  # the uploader, a colleague, an admin
            assert client.get(path, headers=_as(client, keys[who])).status_code == 200, (path, who)
        for who in ("sci", "registration"):  # as if it did not exist
            answer = client.get(path, headers=_as(client, keys[who]))
            assert answer.status_code == 404 and answer.get_json()["code"] == "unknown_upload"
    refused = client.post(f"/uploads/{upload}/publish", headers=_as(client, keys["sci"]))
    assert refused.status_code == 403 and refused.get_json()["code"] == "not_owner"
    # (HF's own key reaches the publish rule: the upload is not validated yet)
    mine = client.post(f"/uploads/{upload}/publish", headers=_as(client, keys["hf2"]))
    assert mine.get_json()["code"] == "not_validated", mine.get_json()


def test_writes_need_the_owner(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    upload = _upload(client, keys["sci"])
    assert upload.status_code == 403 and upload.get_json()["code"] == "not_owner"
    assert "hf" in upload.get_json()["detail"]
    notice = client.post(
        "/plates/notices",
        headers=_as(client, keys["sci"]),
        data={"file": (io.BytesIO(b"unit,main,sub,wkt\n"), "n.csv")},
        content_type="multipart/form-data",
    )
    assert notice.status_code == 403 and notice.get_json()["code"] == "not_owner"
    allowed = client.post(
        "/plates/notices",
        headers=_as(client, keys["registration"]),
        data={"file": (io.BytesIO(b"unit,main,sub,wkt\n"), "n.csv")},
        content_type="multipart/form-data",
    )
    assert allowed.status_code not in (401, 403), allowed.get_data(as_text=True)


def test_an_admin_hands_a_dataset_over_and_collections_show_the_owner(
    app: Flask, keys: dict[str, str]
) -> None:
    client = app.test_client()
    admin = _as(client, keys["admin"])
    assert client.get("/admin/owners", headers=admin).get_json()["owners"] == {
        "parcels": "hf",
        "plates": "registration",
        "crosswalk": "moi",
    }
    shown = {
        c["id"]: c["owner"]
        for c in client.get("/collections", headers=admin).get_json()["collections"]
    }
    assert shown["parcels"]["agency"] == shown["guide_plans"]["agency"] == "hf"
    assert shown["plates"]["agency"] == "registration" and shown["divisions"]["agency"] is None
    bad = client.put("/admin/owners/parcels", headers=admin, json={"agency": "nobody"})
    assert bad.status_code == 404 and bad.get_json()["code"] == "unknown_agency"
    unknown = client.put("/admin/owners/roads", headers=admin, json={"agency": "sci"})
    assert unknown.status_code == 400 and unknown.get_json()["field"] == "dataset"
    try:
        moved = client.put("/admin/owners/parcels", headers=admin, json={"agency": "sci"})
        assert moved.status_code == 200
        assert _upload(client, keys["sci"]).status_code == 202
        assert _upload(client, keys["hf"]).get_json()["code"] == "not_owner"
    finally:
        client.put("/admin/owners/parcels", headers=admin, json={"agency": "hf"})
