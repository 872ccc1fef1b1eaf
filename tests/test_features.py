"""OGC API – Features on the sample: collections, items, paging, filters, CRS, versions,
downloads, on real PostGIS. Answers are checked against SQL and shapely, not constants."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
from flask.testing import FlaskClient
from shapely.geometry import box, shape
from sqlalchemy import text

from api import create_app
from geo.errors import GeoError
from geo.geodata.crs import transformer
from geo.platform.database import Database
from tests.helpers import client_for, republish_village


@pytest.fixture(scope="module")
def client(sample_url: str) -> FlaskClient:
    return client_for(sample_url, "reader", "sci")


def _scalar(url: str, sql: str, **params: Any) -> Any:
    with Database(url).connect() as c:
        return c.execute(text(sql), params).scalar_one()


def _busiest_village(url: str) -> tuple[str, str, int]:
    with Database(url).connect() as c:
        return tuple(  # type: ignore[return-value]
            c.execute(
                text(
                    "SELECT village_agency, village_code, count(*) FROM parcel"
                    " WHERE valid_to IS NULL GROUP BY 1, 2 ORDER BY 3 DESC, 2 LIMIT 1"
                )
            ).one()
        )


def test_landing_conformance_and_collections_need_no_key(sample_url: str) -> None:
    anonymous = create_app({"DATABASE_URL": sample_url}).test_client()
    landing = anonymous.get("/")
    assert landing.status_code == 200
    rels = {link["rel"]: link["href"] for link in landing.json["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    conf = anonymous.get("/conformance").json["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conf
    collections = anonymous.get("/collections").json["collections"]
    assert [c["id"] for c in collections] == ["parcels", "guide_plans", "plates", "divisions"]
    parcels = next(c for c in collections if c["id"] == "parcels")
    x0, y0, x1, y1 = parcels["extent"]["spatial"]["bbox"][0]
    real = _scalar(sample_url, "SELECT ST_Extent(geom)::text FROM parcel")
    rx0, ry0, rx1, ry1 = (float(v) for v in real[4:-1].replace(",", " ").split())
    assert x0 <= rx0 + 0.01 and y0 <= ry0 + 0.01 and x1 >= rx1 - 0.01 and y1 >= ry1 - 0.01
    assert any(link["rel"] == "items" for link in parcels["links"])
    # its time starts at the first publish: the earliest version's valid_from, to the µs
    (start, end), *_ = parcels["extent"]["temporal"]["interval"]
    first = _scalar(sample_url, "SELECT min(valid_from) FROM parcel")
    assert start == first.isoformat() and end is None
    # the data itself needs a key
    assert anonymous.get("/collections/parcels/items").status_code == 401


def test_paging_with_next_links_returns_each_feature_once(
    client: FlaskClient, sample_url: str
) -> None:
    agency, code, n = _busiest_village(sample_url)
    href = f"/collections/parcels/items?village={agency}:{code}&limit=37"
    seen: list[int] = []
    pages = 0
    while href:
        page = client.get(href.replace("http://localhost", ""))
        assert page.status_code == 200 and page.mimetype == "application/geo+json"
        assert page.json["numberMatched"] == n
        assert page.json["numberReturned"] == len(page.json["features"]) <= 37
        seen += [f["id"] for f in page.json["features"]]
        nxt = [link["href"] for link in page.json["links"] if link["rel"] == "next"]
        href = nxt[0] if nxt else ""
        pages += 1
    assert len(seen) == len(set(seen)) == n
    assert pages == -(-n // 37)
    assert seen == sorted(seen)


def test_number_matched_is_exact_up_to_the_cap_and_left_out_past_it(
    client: FlaskClient, sample_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numberMatched is exact or absent, never a guess: the count stops past the cap."""
    from geo.geodata.features import items

    agency, code, n = _busiest_village(sample_url)
    href = f"/collections/parcels/items?village={agency}:{code}&limit=5"
    monkeypatch.setattr(items, "COUNT_AT_MOST", n)
    assert client.get(href).json["numberMatched"] == n
    monkeypatch.setattr(items, "COUNT_AT_MOST", n - 1)
    past = client.get(href).json
    assert "numberMatched" not in past and past["numberReturned"] == 5
    assert any(link["rel"] == "next" for link in past["links"])
    doc = client.get("/api").json
    ok = doc["paths"]["/collections/parcels/items"]["get"]["responses"]["200"]
    said = ok["content"]["application/geo+json"]["schema"]["properties"]["numberMatched"]
    assert "left out" in said["description"]


def test_bbox_selects_exactly_the_features_that_intersect_it(
    client: FlaskClient, sample_url: str
) -> None:
    lon, lat = _scalar(
        sample_url,
        "SELECT ARRAY[ST_X(c), ST_Y(c)] FROM (SELECT ST_Centroid(geom) c FROM parcel"
        " ORDER BY id LIMIT 1 OFFSET 200) x",
    )
    bbox = (lon - 0.001, lat - 0.001, lon + 0.001, lat + 0.001)
    answer = client.get(f"/collections/parcels/items?bbox={','.join(map(str, bbox))}&limit=1000")
    features = answer.json["features"]
    expected = _scalar(
        sample_url,
        "SELECT count(*) FROM parcel WHERE valid_to IS NULL AND"
        " ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
        a=bbox[0],
        b=bbox[1],
        c=bbox[2],
        d=bbox[3],
    )
    assert 0 < len(features) == expected == answer.json["numberMatched"]
    assert all(shape(f["geometry"]).intersects(box(*bbox)) for f in features)


def test_land_use_filter_folds_persian_spelling(client: FlaskClient, sample_url: str) -> None:
    exact = client.get("/collections/parcels/items?land_use=مسکونی&limit=1").json
    arabic = client.get("/collections/parcels/items?land_use=مسكوني&limit=1").json  # ك ي
    expected = _scalar(
        sample_url, "SELECT count(*) FROM parcel WHERE valid_to IS NULL AND land_use = 'مسکونی'"
    )
    assert exact["numberMatched"] == arabic["numberMatched"] == expected > 0
    assert exact["features"][0]["properties"]["land_use"] == "مسکونی"


def test_output_crs_utm_and_epsg_4326_axis_order(client: FlaskClient) -> None:
    base = client.get("/collections/parcels/items?limit=1").json["features"][0]
    utm = client.get("/collections/parcels/items?limit=1&crs=EPSG:32639")
    assert utm.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/EPSG/0/32639>"
    lon, lat = base["geometry"]["coordinates"][0][0][0]
    x, y = utm.json["features"][0]["geometry"]["coordinates"][0][0][0]
    ex, ey = transformer(4326, 32639).transform(lon, lat)
    assert abs(x - ex) < 0.05 and abs(y - ey) < 0.05
    latlon = client.get(
        "/collections/parcels/items?limit=1&crs=http://www.opengis.net/def/crs/EPSG/0/4326"
    ).json["features"][0]
    assert latlon["geometry"]["coordinates"][0][0][0] == [lat, lon]
    bad = client.get("/collections/parcels/items?crs=EPSG:3395")
    assert bad.status_code == 400 and bad.json["code"] == "unsupported_crs"


def test_divisions_collection_is_the_editions_in_force(
    client: FlaskClient, sample_url: str
) -> None:
    counties = client.get("/collections/divisions/items?agency=sci&level=county&limit=100").json
    expected = _scalar(
        sample_url,
        "SELECT count(*) FROM division d JOIN edition e ON e.id = d.edition_id"
        " WHERE e.agency = 'sci' AND d.level = 'county'",
    )
    assert counties["numberMatched"] == expected > 0
    with_boundary = [f for f in counties["features"] if f["geometry"]]
    assert with_boundary and all(f["geometry"]["type"] == "MultiPolygon" for f in with_boundary)
    named = client.get("/collections/divisions/items?agency=sci&name=قم").json
    assert named["numberMatched"] >= 1
    assert all(f["properties"]["name"].replace("ي", "ی") for f in named["features"])


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("/collections/nowhere/items", 404, "unknown_collection"),
        ("/collections/parcels/items?bbox=1,2,3", 400, "invalid_parameter"),
        ("/collections/parcels/items?limit=0", 400, "invalid_parameter"),
        ("/collections/parcels/items?limit=100001", 400, "invalid_parameter"),
        ("/collections/parcels/items?datetime=yesterday", 400, "invalid_parameter"),
        ("/collections/parcels/items?datetime=2024-02-01/2023-01-01", 422, "invalid_datetime"),
        ("/collections/parcels/items?village=xyz:12", 404, "unknown_agency"),
        (  # a projected box off its projection's domain: PostGIS's transform made it a 500
            "/collections/parcels/items?bbox-crs=http://www.opengis.net/def/crs/EPSG/0/32639"
            "&bbox=-1e300,-1e300,1e300,1e300",
            422,
            "invalid_bbox",
        ),
        ("/collections/parcels/items?colour=red", 400, "unknown_parameter"),
        ("/collections/parcels/items?f=pdf", 400, "unknown_format"),
        ("/collections/parcels/items/999999999", 404, "unknown_feature"),
        ("/collections/divisions/items?f=shp", 400, "format_unsupported"),
    ],
)
def test_bad_requests_get_clear_codes(
    client: FlaskClient, query: str, status: int, code: str
) -> None:
    answer = client.get(query)
    assert answer.status_code == status, answer.json
    assert answer.json["code"] == code


def _read(data: bytes, suffix: str) -> gpd.GeoDataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"download.{suffix}"
        path.write_bytes(data)
        return pyogrio.read_dataframe(path, fid_as_index=suffix == "gpkg")  # GPKG keeps fid


def test_downloads_in_every_format_keep_persian_and_the_selection(
    client: FlaskClient, sample_url: str
) -> None:
    agency, code, n = _busiest_village(sample_url)
    query = f"/collections/parcels/items?village={agency}:{code}"
    truth = client.get(f"{query}&limit=10000").json["features"]
    uses = sorted(f["properties"]["land_use"] for f in truth)
    for fmt, suffix, column in (
        ("gpkg", "gpkg", "land_use"),
        ("fgb", "fgb", "land_use"),
        ("shp", "zip", "land_use"),
    ):
        answer = client.get(f"{query}&f={fmt}")
        assert answer.status_code == 200, (fmt, answer.data[:200])
        assert f'filename="parcels.{suffix}"' in answer.headers["Content-Disposition"]
        frame = _read(answer.data, suffix)
        assert len(frame) == n == int(answer.headers["X-Feature-Count"]), fmt
        assert sorted(frame[column]) == uses, fmt
        assert frame.crs.to_epsg() == 4326
        fid = int(frame.iloc[0]["fid"]) if "fid" in frame else int(frame.index[0])
        first = next(f for f in truth if f["id"] == fid)
        assert frame.geometry.iloc[0].hausdorff_distance(shape(first["geometry"])) < 1e-6
        if fmt == "shp":
            names = zipfile.ZipFile(io.BytesIO(answer.data)).namelist()
            assert {
                "parcels.shp",
                "parcels.shx",
                "parcels.dbf",
                "parcels.prj",
                "parcels.cpg",
            } <= set(names)
    csv_answer = client.get(f"{query}&f=csv")
    text_body = csv_answer.data.decode("utf-8")
    assert text_body.startswith("\ufefffid,")
    lines = text_body.strip().splitlines()
    assert len(lines) == n + 1 and "مسکونی" in text_body
    assert "MULTIPOLYGON" in lines[1]


def test_versions_datetime_and_gone(sample_url: str) -> None:
    client = client_for(sample_url, "reader", "sci")
    code, changed, removed, before = republish_village(sample_url)
    with Database(sample_url).connect() as c:
        ids = dict(
            c.execute(
                text(
                    "SELECT parcel_no, min(id) FROM parcel WHERE village_code = :c"
                    " AND parcel_no IN (:a, :b) GROUP BY 1"
                ),
                {"c": code, "a": changed, "b": removed},
            ).all()
        )
    old_changed, gone = ids[changed], ids[removed]
    versions = client.get(f"/collections/parcels/items/{old_changed}/versions").json
    assert versions["numberReturned"] == 2
    first, second = versions["features"]
    assert first["properties"]["valid_to"] is not None and second["properties"]["valid_to"] is None
    assert first["properties"]["land_use"] != second["properties"]["land_use"]
    historic = client.get(f"/collections/parcels/items/{old_changed}")
    assert historic.status_code == 200
    latest = [link for link in historic.json["links"] if link["rel"] == "latest-version"]
    assert latest and latest[0]["href"].endswith(f"/items/{second['id']}")
    removed_answer = client.get(f"/collections/parcels/items/{gone}")
    assert removed_answer.status_code == 410
    assert removed_answer.json["code"] == "feature_removed" and removed_answer.json["removed_at"]
    then = client.get(
        f"/collections/parcels/items?village=hf:{code}&datetime={before}&limit=1000"
    ).json
    now = client.get(f"/collections/parcels/items?village=hf:{code}&limit=1000").json
    assert then["numberMatched"] == now["numberMatched"] + 1
    then_uses = {
        f["properties"]["parcel_no"]: f["properties"]["land_use"] for f in then["features"]
    }
    now_uses = {f["properties"]["parcel_no"]: f["properties"]["land_use"] for f in now["features"]}
    assert removed in then_uses and removed not in now_uses
    assert then_uses[changed] != now_uses[changed]
    interval = client.get(
        f"/collections/parcels/items?village=hf:{code}&datetime={before}/..&limit=1000"
    ).json
    assert interval["numberMatched"] == then["numberMatched"] + 1  # both versions of A


def test_village_filter_by_another_agencys_code(fresh_url: str) -> None:
    """An SCI code finds parcels stored under the HF code through MOI, the crosswalk's hub."""
    with Database(fresh_url).begin() as c:
        c.execute(
            text(
                "INSERT INTO parcel (village_agency, village_code, parcel_no, area_m2, geom)"
                " VALUES ('hf', '777', '1', 1, ST_Multi(ST_Buffer(ST_Point(51, 35, 4326), 0.001))),"
                " ('hf', '888', '1', 1, ST_Multi(ST_Buffer(ST_Point(51.1, 35, 4326), 0.001)))"
            )
        )
        run = c.execute(
            text(
                "INSERT INTO crosswalk_run (status, moi_edition_id, sci_edition_id, hf_edition_id)"
                " VALUES ('finished', NULL, NULL, NULL) RETURNING id"
            )
        ).scalar_one()
        c.execute(
            text(
                "INSERT INTO crosswalk_link (run_id, level, moi_code, sci_code, hf_code, relation,"
                " confidence, method, status, evidence) VALUES"
                " (:r, 'village', '10010101001', '2301010001000101', NULL, 'same', 1, 'name',"
                "  'auto', '{}'),"
                " (:r, 'village', '10010101001', NULL, '777', 'same', 1, 'name', 'auto', '{}'),"
                " (:r, 'village', '10010101002', NULL, '888', 'same', 0.8, 'fuzzy',"
                "  'needs_review', '{}')"
            ),
            {"r": run},
        )
    client = client_for(fresh_url, "reader", "sci")
    by_sci = client.get("/collections/parcels/items?village=sci:۲۳۰۱۰۱۰۰۰۱۰۰۰۱۰۱").json
    assert [f["properties"]["village_code"] for f in by_sci["features"]] == ["777"]
    by_moi = client.get("/collections/parcels/items?village=moi:10010101002").json
    assert by_moi["numberMatched"] == 0  # a link waiting for review decides nothing


def test_the_ogc_core_answers_without_flask(sample_url: str) -> None:
    """The same core the routes call, driven with a plain request and a plain connection."""
    import json

    from api.ogc import features as ogc
    from api.ogc.request import OgcRequest

    db = Database(sample_url)
    with db.connect() as conn:
        req = OgcRequest(
            root="http://core.test/",
            url="http://core.test/collections/parcels/items",
            args={"limit": "2"},
            conn=lambda: conn,
            db=db,
        )
        answer = ogc.items(req, "parcels")
        body = json.loads(answer.body)  # type: ignore[arg-type]
        assert answer.status == 200 and answer.media_type == "application/geo+json"
        assert body["numberReturned"] == 2 == answer.audit_rows
        nexts = [x["href"] for x in body["links"] if x["rel"] == "next"]
        assert nexts and nexts[0].startswith("http://core.test/collections/parcels/items?")
        with pytest.raises(GeoError) as bad:
            ogc.items(OgcRequest(req.root, req.url, {"colour": "red"}, lambda: conn, db), "parcels")
        assert bad.value.code == "unknown_parameter"


def test_divisions_download_as_flatgeobuf_with_units_that_have_no_geometry(
    client: FlaskClient, sample_url: str
) -> None:
    """Units with neither polygon nor point are features too: FlatGeobuf's spatial index
    refused them (found by the daily snapshot), so mixed collections are written without."""
    got = client.get("/collections/divisions/items", query_string={"f": "fgb", "agency": "moi"})
    assert got.status_code == 200, got.data[:300]
    shapeless = _scalar(
        sample_url,
        "SELECT count(*) FROM division d JOIN edition e ON e.id = d.edition_id"
        " WHERE e.agency = 'moi' AND d.polygon IS NULL AND d.point IS NULL",
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "divisions.fgb"
        path.write_bytes(got.data)
        read = pyogrio.read_dataframe(path)
    assert len(read) == int(got.headers["X-Feature-Count"])
    assert int(read.geometry.isna().sum()) >= min(shapeless, 1)


def test_within_a_county_takes_the_parcels_of_its_villages(
    client: FlaskClient, sample_url: str
) -> None:
    """``within=AGENCY:CODE``: the villages inside a division (codes nest), e.g. a county's
    parcels as one file (the web page's downloads of a county)."""
    village = _scalar(sample_url, "SELECT min(village_code) FROM parcel WHERE valid_to IS NULL")
    counties = _scalar(
        sample_url,
        "SELECT count(DISTINCT left(village_code, 5)) FROM parcel WHERE valid_to IS NULL",
    )
    county = village[:5]  # (an HF code: 2 digits of province, 3 of county, then the rest)
    expected = _scalar(
        sample_url,
        "SELECT count(*) FROM parcel WHERE valid_to IS NULL AND village_code LIKE :p",
        p=county + "%",
    )
    page = client.get(f"/collections/parcels/items?within=hf:{county}&limit=1").json
    assert page["numberMatched"] == expected > 0
    file = client.get(f"/collections/parcels/items?within=hf:{county}&f=gpkg")
    assert file.status_code == 200
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "county.gpkg"
        path.write_bytes(file.data)
        codes = set(pyogrio.read_dataframe(path)["village_code"])
    assert len(codes) > 0 and all(c.startswith(county) for c in codes)
    if counties > 1:  # another county's villages stay out
        total = client.get("/collections/parcels/items?limit=1").json["numberMatched"]
        assert expected < total
    province = client.get(f"/collections/parcels/items?within=hf:{county[:2]}&limit=1").json
    assert province["numberMatched"] >= expected
    nothing = client.get("/collections/guide_plans/items?within=hf:99999&limit=1").json
    assert nothing["numberMatched"] == 0
