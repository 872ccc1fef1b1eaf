"""The OpenAPI document and the server agree on what each input may be: every case below
was a schemathesis failure (issue 22, finding 15) — a request the document allowed and the
server refused as malformed, one the document forbade and the server took, or an answer
not as documented."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from api import create_app
from geo.access.control import create_key
from geo.geodata.features.query import MAX_WHOLE
from geo.platform.database import Database


@pytest.fixture(scope="module")
def app(module_db_url: str) -> Flask:
    return create_app({"DATABASE_URL": module_db_url, "RATE_LIMIT": "100000 per minute"})


@pytest.fixture(scope="module")
def keys(module_db_url: str) -> dict[str, str]:
    with Database(module_db_url).begin() as conn:
        return {
            "admin": create_key(conn, "moi", "admin", "declared inputs")["key"],
            "hf": create_key(conn, "hf", "uploader", "declared inputs")["key"],
            "registration": create_key(conn, "registration", "uploader", "declared")["key"],
        }


def _as(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _operation(client: FlaskClient, path: str, method: str = "get") -> dict[str, Any]:
    return client.get("/api").get_json()["paths"][path][method]


def test_a_policy_names_only_agencies_that_exist(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    before = client.get("/admin/policies", headers=_as(keys["admin"])).get_json()
    for mode, agencies, status, code in (
        ("allow_list", ["sci", "BYFypVdfGP*"], 400, "invalid_parameter"),  # not a short name
        ("allow_list", ["sci", "nosuchagency"], 404, "unknown_agency"),
        ("", [], 400, "invalid_parameter"),  # an empty mode is not the default mode
    ):
        answer = client.put(
            "/admin/policies/editions",
            headers=_as(keys["admin"]),
            json={"mode": mode, "agencies": agencies},
        )
        assert (answer.status_code, answer.get_json()["code"]) == (status, code), answer.json
    assert client.get("/admin/policies", headers=_as(keys["admin"])).get_json() == before
    fine = client.put(
        "/admin/policies/editions",
        headers=_as(keys["admin"]),
        json={"mode": "allow_list", "agencies": ["SCI", "moi"]},
    )
    assert fine.status_code == 200 and fine.get_json()["agencies"] == ["sci", "moi"]
    client.put("/admin/policies/editions", headers=_as(keys["admin"]), json={"mode": "all"})


def test_an_empty_notice_file_is_422_and_no_file_at_all_400(
    app: Flask, keys: dict[str, str]
) -> None:
    client = app.test_client()
    empty = client.post(
        "/plates/notices",
        headers=_as(keys["registration"]),
        data={"file": (io.BytesIO(b""), "file")},
        content_type="multipart/form-data",
    )
    assert empty.status_code == 422 and empty.get_json()["code"] == "invalid_notice"
    missing = client.post(
        "/plates/notices",
        headers=_as(keys["registration"]),
        data={"name": "x"},
        content_type="multipart/form-data",
    )
    assert missing.status_code == 400 and missing.get_json()["field"] == "file"


def test_form_flags_are_true_or_false_and_empty_fields_are_absent(
    app: Flask, keys: dict[str, str], module_db_url: str
) -> None:
    client = app.test_client()
    schema = _operation(client, "/uploads", "post")["requestBody"]["content"]
    fields = schema["multipart/form-data"]["schema"]["properties"]
    assert fields["dry_run"]["enum"] == ["true", "false", ""]
    assert fields["crs"]["pattern"].startswith("^$|")

    def upload(**form: str) -> Any:
        data: dict[str, Any] = {"file": (io.BytesIO(b'{"type": "FeatureCollection"}'), "m.json")}
        return client.post(
            "/uploads",
            headers=_as(keys["hf"]),
            data={**data, **form},
            content_type="multipart/form-data",
        )

    with Database(module_db_url).connect() as conn:
        before = conn.execute(text("SELECT count(*) FROM upload")).scalar_one()
    refused = upload(dry_run="1")
    assert refused.status_code == 400 and refused.get_json()["field"] == "dry_run"
    with Database(module_db_url).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM upload")).scalar_one() == before
    taken = upload(dry_run="TRUE", repair="", crs="", village="", mapping="")
    assert taken.status_code == 202, taken.get_json()
    with Database(module_db_url).connect() as conn:
        options = conn.execute(
            text("SELECT options FROM upload WHERE id = :u"), {"u": taken.get_json()["upload_id"]}
        ).scalar_one()
    assert options["dry_run"] is True and options["repair"] is False
    features = client.get(
        f"/uploads/{taken.get_json()['upload_id']}/features", headers=_as(keys["hf"])
    )
    assert features.status_code == 200 and features.mimetype == "application/geo+json"


def test_within_another_agency_is_content_not_shape(app: Flask, keys: dict[str, str]) -> None:
    answer = app.test_client().get(
        "/divisions/search?q=tehran&agency=moi&within=sci:23", headers=_as(keys["admin"])
    )
    assert answer.status_code == 422 and answer.get_json()["code"] == "within_other_agency"


def test_each_collection_lists_the_formats_it_can_be_written_in(
    app: Flask, keys: dict[str, str]
) -> None:
    client = app.test_client()

    def formats(collection: str) -> list[str]:
        params = _operation(client, f"/collections/{collection}/items")["parameters"]
        return next(p["schema"]["enum"] for p in params if p["name"] == "f")

    assert "shp" in formats("parcels") and "gpkg" in formats("parcels")
    assert "shp" not in formats("divisions") and "gpkg" in formats("divisions")
    mixed = client.get("/collections/divisions/items?f=shp", headers=_as(keys["admin"]))
    assert mixed.status_code == 400 and mixed.get_json()["code"] == "format_unsupported"


def test_whole_number_filters_take_what_the_document_declares(
    app: Flask, keys: dict[str, str]
) -> None:
    client = app.test_client()
    params = _operation(client, "/collections/parcels/items")["parameters"]
    declared = next(p["schema"] for p in params if p["name"] == "upload_id")
    assert declared["maximum"] == MAX_WHOLE
    path = "/collections/parcels/items?upload_id="
    assert client.get(f"{path}{MAX_WHOLE}", headers=_as(keys["admin"])).status_code == 200
    over = client.get(f"{path}{MAX_WHOLE + 1}", headers=_as(keys["admin"]))
    assert over.status_code == 400 and over.get_json()["field"] == "upload_id"


def test_crs_digits_of_other_scripts(app: Flask, keys: dict[str, str]) -> None:
    client = app.test_client()
    superscript = client.get("/collections/parcels/items?crs=%C2%B2", headers=_as(keys["admin"]))
    assert superscript.status_code == 400 and superscript.get_json()["code"] == "unsupported_crs"
    persian = client.get(
        "/collections/parcels/items?crs=EPSG:۳۲۶۳۹&limit=1", headers=_as(keys["admin"])
    )
    assert persian.status_code == 200, persian.get_json()


def test_the_old_geojson_crs_member_names_the_plot_crs(app: Flask, keys: dict[str, str]) -> None:
    ring = [[500000, 3950000], [500100, 3950000], [500100, 3950100], [500000, 3950000]]
    member = {"type": "name", "properties": {"name": "EPSG:32639"}}
    answer = app.test_client().post(
        "/coverage",
        headers=_as(keys["admin"]),
        json={
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "crs": member,
        },
    )
    assert answer.status_code == 200, answer.get_json()
