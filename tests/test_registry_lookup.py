"""Resolve, search, point lookup and batch resolve, in Python and over HTTP."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Connection, text

from data.sample import ensure_sample_files, load_sample
from geo.errors import InvalidParameter, NotFound
from geo.geodata.registry import import_edition
from geo.geodata.registry.lookup import batch_resolve, resolve
from geo.geodata.registry.search import at_point, search
from geo.platform.config import settings
from geo.platform.database import Database
from tests.helpers import client_for

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def sample_url(module_db_url: str) -> str:
    load_sample(
        Database(module_db_url),
        ensure_sample_files(settings().sample_dir, echo=lambda _m: None),
        echo=lambda _m: None,
    )
    return module_db_url


@pytest.fixture
def c(sample_url: str):  # type: ignore[no-untyped-def]
    with Database(sample_url).connect() as conn:
        yield conn


@pytest.fixture
def client(sample_url: str) -> FlaskClient:
    return client_for(sample_url)


def test_resolve_gives_parents_children_and_identifiers(c: Connection) -> None:
    unit = resolve(c, "sci", "2301")
    assert unit["name"] == "تهران" and unit["level"] == "county"
    assert [p["code"] for p in unit["parents"]] == ["23"]
    assert unit["children"]["total"] >= 3 and all(
        ch["code"].startswith("2301") for ch in unit["children"]["items"]
    )
    tabriz = resolve(c, "moi", "101010500")
    assert [p["level"] for p in tabriz["parents"]] == ["province", "county", "district"]
    assert tabriz["identifiers"] == {"code": "101010500", "national_id": "1000041093"}
    assert resolve(c, "moi", "1000041093")["code"] == "101010500"  # by national id


@pytest.mark.parametrize("typed", ["۱۰۱۰۱۰۵۰۰", "١٠١٠١٠٥٠٠", "1010 10 500", "1010-10-500"])
def test_codes_typed_any_way_resolve_the_same(c: Connection, typed: str) -> None:
    assert resolve(c, "moi", typed)["code"] == "101010500"


def test_unknown_code_suggests_the_nearest(c: Connection) -> None:
    with pytest.raises(NotFound) as info:
        resolve(c, "moi", "101010599")
    assert info.value.code == "unknown_code"
    assert "101010500" in info.value.details["suggestions"]


def test_malformed_code_names_its_field(c: Connection) -> None:
    with pytest.raises(InvalidParameter) as info:
        resolve(c, "moi", "10a10")
    assert info.value.details["field"] == "code"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("گیلانغرب", "گیالنغرب"),  # lam-alef reversed by the PDF extraction of the MOI list
        ("گيلان غرب", "گیالنغرب"),  # Arabic ye and a space
        ("الیگودرز", "لایگودرز"),
        ("اسلام‌شهر", "اسلامشهر"),  # ZWNJ
        ("سيستان وبلوچستان", "سیستان و بلوچستان"),  # the connector «و» joined
    ],
)
def test_search_survives_persian_variants(c: Connection, query: str, expected: str) -> None:
    names = [r["name"] for r in search(c, query, limit=5)["results"]]
    assert expected in names


def test_search_is_ranked_and_scoped(c: Connection) -> None:
    everywhere = search(c, "حسین آباد", agency="sci", level="village", limit=50)["results"]
    assert len(everywhere) > 10 and everywhere[0]["score"] == 1.0
    scores = [r["score"] for r in everywhere]
    assert scores == sorted(scores, reverse=True)
    county = everywhere[0]["code"][:4]
    scoped = search(c, "حسین آباد", within=f"sci:{county}", limit=50)["results"]
    assert scoped and all(r["code"].startswith(county) for r in scoped)
    assert len(scoped) < len(everywhere)
    assert search(c, "۲۳۰۱", agency="sci")["results"][0]["code"] == "2301"


def test_search_refuses_bad_parameters(c: Connection) -> None:
    for kwargs, field in [({"level": "planet"}, "level"), ({"within": "2301"}, "within")]:
        with pytest.raises(InvalidParameter) as info:
            search(c, "قم", **kwargs)
        assert info.value.details["field"] == field


def test_point_lookup_uses_the_boundaries(c: Connection) -> None:
    found = {(r["agency"], r["level"], r["name"]) for r in at_point(c, 50.88, 34.64)["results"]}
    assert ("moi", "province", "قم") in found and ("sci", "province", "قم") in found
    assert at_point(c, 60.0, 27.0)["results"] == []  # Sistan: no boundary loaded


def test_batch_resolve_keeps_order_and_says_what_failed(c: Connection) -> None:
    codes = [
        r
        for r in c.execute(
            text(
                "SELECT code FROM division d JOIN edition e ON e.id = d.edition_id"
                " WHERE e.agency = 'sci' ORDER BY code DESC LIMIT 1000"
            )
        ).scalars()
    ]
    asked = ["x12", *codes, "2399999", "۲۳"]
    out = batch_resolve(c, "sci", asked)
    assert out["count"] == 1003 and out["found"] == 1001
    statuses = [r["status"] for r in out["results"]]
    assert statuses[0] == "malformed" and statuses[-2] == "not_found"
    assert [r["code"] for r in out["results"][1:-2]] == codes
    assert out["results"][-1]["name"] == "تهران"


def test_batch_takes_moi_national_ids_and_repeats(c: Connection) -> None:
    """An MOI unit answers to its national id in a batch too; a code asked twice is
    answered twice, each in its place."""
    code, national_id = c.execute(
        text(
            "SELECT d.code, d.national_id FROM division d JOIN edition e ON e.id = d.edition_id"
            " WHERE e.agency = 'moi' AND d.national_id IS NOT NULL ORDER BY d.code LIMIT 1"
        )
    ).one()
    out = batch_resolve(c, "moi", [national_id, "1", code, national_id])
    assert [r["status"] for r in out["results"]] == ["found", "not_found", "found", "found"]
    assert [r.get("code") for r in out["results"]] == [code, None, code, code]
    assert [r["input"] for r in out["results"]] == [national_id, "1", code, national_id]
    assert out["found"] == 3


def test_batch_of_100000_codes_answers_in_seconds(c: Connection) -> None:
    codes = list(
        c.execute(
            text(
                "SELECT code FROM division d JOIN edition e ON e.id = d.edition_id"
                " WHERE e.agency = 'moi'"
            )
        ).scalars()
    )
    asked = (codes * (100_000 // len(codes) + 1))[:100_000]
    out = batch_resolve(c, "moi", asked, with_partners=True)
    assert out["found"] == 100_000  # (its speed is bench/'s to measure, not a test's)


def test_http_resolve_search_and_errors(client: FlaskClient) -> None:
    r = client.get("/divisions/moi/۱۰۱۰۱۰۵۰۰")
    assert r.status_code == 200 and r.get_json()["edition"]["published_on"] == "2022-11-16"
    r = client.get("/divisions/moi/101010599")
    assert r.status_code == 404 and r.get_json()["code"] == "unknown_code"
    assert "101010500" in r.get_json()["suggestions"]
    r = client.get("/divisions/moi/12ab")
    assert r.status_code == 400 and r.get_json()["field"] == "code"
    r = client.get("/divisions/search", query_string={"q": "گیلانغرب", "limit": 3})
    assert r.get_json()["results"][0]["name"] == "گیالنغرب"
    r = client.get("/divisions/at", query_string={"lon": "x", "lat": 1})
    assert r.status_code == 400 and r.get_json()["field"] == "lon"
    r = client.get("/divisions/sci/2301/children", query_string={"limit": 2})
    assert r.status_code == 200 and len(r.get_json()["items"]) == 2
    r = client.get("/divisions/sci/2301/history")
    assert r.status_code == 200 and r.get_json()["editions"][0]["present"]
    r = client.get("/divisions/nosuch/23")
    assert r.status_code == 404 and r.get_json()["code"] == "unknown_agency"


def test_http_batch_resolve_json_and_csv(client: FlaskClient) -> None:
    r = client.post("/resolve", json={"agency": "sci", "codes": ["23", "۲۵", "9"]})
    assert [x["status"] for x in r.get_json()["results"]] == ["found", "found", "not_found"]
    csv_body = io.BytesIO(b"code\n2301\n2501\n")
    r = client.post(
        "/resolve",
        data={"agency": "sci", "file": (csv_body, "codes.csv")},
        content_type="multipart/form-data",
    )
    assert r.status_code == 200 and r.get_json()["found"] == 2
    r = client.post("/resolve", json={"agency": "sci", "codes": "23"})
    assert r.status_code == 400 and r.get_json()["field"] == "codes"


def test_http_edition_import_and_events(client: FlaskClient) -> None:
    body = "code,name,level,parent_code\n91,آزمایش,province,\n9101,نمونه,county,91\n"
    send = {
        "agency": "hf",
        "edition": "test-1",
        "published": "۱۴۰۳/۰۱/۰۱",
        "file": (io.BytesIO(body.encode()), "hf.csv"),
    }
    r = client.post("/editions", data=send, content_type="multipart/form-data")
    assert r.status_code == 201, r.get_json()
    edition_id = r.get_json()["edition_id"]
    send["file"] = (io.BytesIO(body.encode()), "hf.csv")
    again = client.post("/editions", data=send, content_type="multipart/form-data")
    assert again.status_code == 200 and again.get_json()["created"] is False
    bad = {
        "agency": "hf",
        "edition": "test-2",
        "file": (io.BytesIO(b"code,name,level,parent_code\n1,,province,\n"), "bad.csv"),
    }
    r = client.post("/editions", data=bad, content_type="multipart/form-data")
    assert r.status_code == 422 and r.get_json()["code"] == "invalid_rows"
    assert r.get_json()["report"]["errors"][0]["code"] == "empty_name"
    r = client.get(f"/editions/{edition_id}")
    assert r.get_json()["published_jalali"] == "1403-01-01"
    r = client.get(f"/editions/{edition_id}/events")
    assert r.status_code == 200 and r.get_json()["total"] > 0  # against HF's sample edition


@pytest.mark.skipif(
    not (SHARED / "sci").exists(), reason="needs ../shared/data (the full SCI file)"
)
def test_the_full_sci_geography_file_imports(fresh_url: str) -> None:
    raw = (SHARED / "sci" / "sci_geography_1399.csv").read_bytes()
    result = import_edition(Database(fresh_url), "sci", "1399", raw)
    assert sum(result.counts.values()) == 103_869
    assert result.counts == {
        "province": 31,
        "county": 448,
        "district": 1099,
        "rural": 2637,
        "city": 1554,
        "village": 98_100,
    }
    assert os.environ.get("CI") is None or result.created


def test_batch_resolve_by_names_says_found_ambiguous_or_not(client: FlaskClient) -> None:
    body = {"agency": "sci", "names": ["اسلام‌شهر", "حسین آباد", "نام بی‌نشان"], "level": "county"}
    results = client.post("/resolve", json=body).get_json()["results"]
    assert results[0]["status"] == "found" and results[0]["code"] == "2310"
    assert results[2]["status"] == "not_found"
    homonyms = client.post(
        "/resolve", json={"agency": "sci", "names": ["حسین آباد"], "level": "village"}
    ).get_json()["results"][0]
    assert homonyms["status"] == "ambiguous" and len(homonyms["candidates"]) > 3
    csv_body = io.BytesIO("name\nقم\n".encode())
    r = client.post(
        "/resolve",
        data={"agency": "sci", "level": "province", "file": (csv_body, "names.csv")},
        content_type="multipart/form-data",
    )
    assert r.get_json()["results"][0]["code"] == "25"
