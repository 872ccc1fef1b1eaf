"""A conformance walker of our own (issue 24): ``/conformance`` is read, and every class it
declares is walked through the requirements of that class a test can check — status codes,
media types, links, response schemas, and answers compared with PostGIS. A declared class
with no walk here fails, and so does a walk whose class is not declared: the document
says exactly what is implemented.

The classes' requirement numbers are in comments (``/req/...`` of the OGC documents:
Features Part 1 17-069r4, Part 2 18-058r1, Part 3 19-079r2, CQL2 21-065r2, Tiles 20-057).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyogrio
import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from api import create_app
from geo.platform.database import Database
from tests.helpers import client_for

FEATURES = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
CRS_PART = "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/"
FILTER_PART = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf/"
TILES = "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/"
ITEMS = "/collections/parcels/items"
WALKS: dict[str, Callable[[FlaskClient, str], None]] = {}


def walks(conformance_class: str) -> Callable[[Callable[[FlaskClient, str], None]], Any]:
    def record(check: Callable[[FlaskClient, str], None]) -> Callable[[FlaskClient, str], None]:
        WALKS[conformance_class] = check
        return check

    return record


@pytest.fixture(scope="module")
def client(sample_url: str) -> FlaskClient:
    return client_for(sample_url, "reader", "sci")


def _local(href: str) -> str:
    return href.removeprefix("http://localhost")


def _rel(links: list[dict[str, Any]], rel: str) -> list[dict[str, Any]]:
    return [lk for lk in links if lk["rel"] == rel]


def _count(url: str, where: str, table: str = "parcel", **params: Any) -> int:
    with Database(url).connect() as c:
        return c.execute(
            text(f"SELECT count(*) FROM {table} t WHERE valid_to IS NULL AND {where}"), params
        ).scalar_one()


def _matched(client: FlaskClient, cql: str, **args: str) -> int:
    got = client.get(ITEMS, query_string={"filter": cql, "limit": 1, **args})
    assert got.status_code == 200, (cql, got.json)
    return got.json["numberMatched"]


def _same(client: FlaskClient, url: str, cql: str, where: str, **params: Any) -> None:
    """The filter selects what the SQL selects (and something: the walk must see it work)."""
    expected = _count(url, where, **params)
    assert _matched(client, cql) == expected > 0, cql


def _feature_collection(doc: dict[str, Any]) -> None:
    assert doc["type"] == "FeatureCollection"
    assert doc["numberReturned"] == len(doc["features"])
    for f in doc["features"]:
        assert f["type"] == "Feature" and "id" in f
        assert f["geometry"]["type"] in {"Polygon", "MultiPolygon", "Point", "MultiPoint"}
        assert isinstance(f["properties"], dict)


# ------------------------------------------------------------------ Features Part 1


@walks(FEATURES + "core")
def _core(client: FlaskClient, url: str) -> None:
    anonymous = create_app({"DATABASE_URL": url}).test_client()
    landing = anonymous.get("/")  # /req/core/root-success
    assert landing.status_code == 200
    rels = {lk["rel"] for lk in landing.json["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= rels
    conformance = anonymous.get("/conformance")  # /req/core/conformance-success
    assert conformance.status_code == 200 and FEATURES + "core" in conformance.json["conformsTo"]
    listing = client.get("/collections").json  # /req/core/fc-md-success
    assert _rel(listing["links"], "self")
    for c in listing["collections"]:  # /req/core/fc-md-items, /req/core/fc-md-extent
        assert c["id"] and _rel(c["links"], "items") and c["extent"]["spatial"]["bbox"]
        one = client.get(f"/collections/{c['id']}")  # /req/core/sfc-md-success
        assert one.status_code == 200 and one.json["id"] == c["id"]
    assert client.get("/collections/nothing").status_code == 404
    # /req/core/fc-limit-response-1, /req/core/fc-response: a page and its links
    page = client.get(ITEMS, query_string={"limit": 3})
    assert page.status_code == 200 and page.json["numberReturned"] == 3
    assert _rel(page.json["links"], "self") and _rel(page.json["links"], "next")
    assert page.json["timeStamp"].endswith("Z")
    following = client.get(_local(_rel(page.json["links"], "next")[0]["href"]))
    first = {f["id"] for f in page.json["features"]}
    assert following.status_code == 200 and not first & {
        f["id"] for f in following.json["features"]
    }
    for bad in ({"limit": "0"}, {"limit": "x"}, {"bbox": "1,2,3"}, {"datetime": "yesterday"}):
        assert client.get(ITEMS, query_string=bad).status_code == 400, (
            bad
        )  # /req/core/query-param-invalid
    assert client.get(ITEMS, query_string={"no_such": "1"}).status_code == 400  # unknown-param
    # /req/core/fc-bbox-response, /req/core/fc-time-response
    with Database(url).connect() as c:
        lon, lat = c.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM parcel"
                " WHERE valid_to IS NULL ORDER BY id LIMIT 1 OFFSET 300) x"
            )
        ).one()
    box = (lon - 0.002, lat - 0.002, lon + 0.002, lat + 0.002)
    boxed = client.get(ITEMS, query_string={"bbox": ",".join(map(str, box)), "limit": 1})
    where = "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))"
    expected = _count(url, where, a=box[0], b=box[1], c=box[2], d=box[3])
    assert boxed.json["numberMatched"] == expected > 0
    fid = page.json["features"][0]["id"]
    item = client.get(f"{ITEMS}/{fid}")  # /req/core/f-success
    assert item.status_code == 200 and item.json["id"] == fid
    assert _rel(item.json["links"], "self") and _rel(item.json["links"], "collection")
    assert client.get(f"{ITEMS}/999999999").status_code == 404  # /req/core/f-op (unknown id)


@walks(FEATURES + "oas30")
def _oas30(client: FlaskClient, url: str) -> None:
    (desc,) = _rel(client.get("/").json["links"], "service-desc")
    assert desc["type"].startswith("application/vnd.oai.openapi+json")
    doc = client.get(_local(desc["href"]))
    assert doc.status_code == 200 and doc.json["openapi"].startswith("3.0")
    for path in ("/", "/conformance", "/collections", ITEMS, f"{ITEMS}/{{fid}}"):
        assert "get" in doc.json["paths"][path], path
    items = doc.json["paths"][ITEMS]["get"]
    assert {"bbox", "datetime", "limit", "filter", "sortby"} <= {
        p["name"] for p in items["parameters"]
    }


@walks(FEATURES + "geojson")
def _geojson(client: FlaskClient, url: str) -> None:
    page = client.get(ITEMS, query_string={"limit": 5})  # /req/geojson/content
    assert page.mimetype == "application/geo+json"
    _feature_collection(page.json)
    one = client.get(f"{ITEMS}/{page.json['features'][0]['id']}")
    assert one.mimetype == "application/geo+json" and one.json["type"] == "Feature"


# ------------------------------------------------------------------ Features Part 2


@walks(CRS_PART + "crs")
def _crs(client: FlaskClient, url: str) -> None:
    doc = client.get("/collections/parcels").json  # /req/crs/fc-md-crs-list, storageCrs
    assert "http://www.opengis.net/def/crs/OGC/1.3/CRS84" in doc["crs"] and doc["storageCrs"]
    mercator = "http://www.opengis.net/def/crs/EPSG/0/3857"
    assert mercator in doc["crs"]
    got = client.get(ITEMS, query_string={"limit": 1, "crs": mercator})  # /req/crs/ogc-crs-header
    assert got.headers["Content-Crs"] == f"<{mercator}>"
    x, y = _first_point(got.json["features"][0]["geometry"])
    assert 4e6 < x < 7e6 and 2.8e6 < y < 4.9e6  # metres in Web Mercator, inside Iran
    assert client.get(ITEMS, query_string={"crs": "EPSG:9999"}).status_code == 400
    # /req/crs/fc-bbox-crs-action: the same box in Web Mercator selects the same parcels
    plain = client.get(ITEMS, query_string={"bbox": "51.0,35.0,51.6,35.9", "limit": 1}).json
    x0, y0 = _mercator(51.0, 35.0)
    x1, y1 = _mercator(51.6, 35.9)
    projected = client.get(
        ITEMS, query_string={"bbox": f"{x0},{y0},{x1},{y1}", "bbox-crs": mercator, "limit": 1}
    ).json
    assert abs(projected["numberMatched"] - plain["numberMatched"]) <= plain["numberMatched"] * 0.01


def _first_point(geometry: dict[str, Any]) -> tuple[float, float]:
    coords: Any = geometry["coordinates"]
    while isinstance(coords[0], list):
        coords = coords[0]
    return coords[0], coords[1]


def _mercator(lon: float, lat: float) -> tuple[float, float]:
    r = 6378137.0
    return math.radians(lon) * r, math.log(math.tan(math.pi / 4 + math.radians(lat) / 2)) * r


# ------------------------------------------------------------------ Features Part 3


@walks(FILTER_PART + "queryables")
def _queryables(client: FlaskClient, url: str) -> None:
    for cid in ("parcels", "guide_plans", "plates", "divisions"):
        links = client.get(f"/collections/{cid}").json["links"]
        (rel,) = _rel(links, "http://www.opengis.net/def/rel/ogc/1.0/queryables")
        got = client.get(_local(rel["href"]))  # /req/queryables/get-queryables-response
        assert got.status_code == 200 and got.content_type.startswith("application/schema+json")
        schema = got.json
        assert schema["type"] == "object" and schema["$id"] == rel["href"]
        assert schema["$schema"].startswith("https://json-schema.org/")
        assert any(
            p.get("format", "").startswith("geometry-") for p in schema["properties"].values()
        )


@walks(FILTER_PART + "filter")
def _filter(client: FlaskClient, url: str) -> None:
    # /req/filter/filter-param, filter-lang-param, filter-crs-param, response
    assert _matched(client, "area_m2 > 0", **{"filter-lang": "cql2-text"}) > 0
    crs84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
    assert _matched(client, "area_m2 > 0", **{"filter-crs": crs84}) > 0
    bad = client.get(ITEMS, query_string={"filter": "area_m2 >", "limit": 1})
    assert bad.status_code == 400 and bad.json["code"] == "invalid_filter"
    unknown = client.get(ITEMS, query_string={"filter": "secret = 1"})
    assert unknown.status_code == 400 and unknown.json["code"] == "unknown_queryable"
    assert client.get(ITEMS, query_string={"filter-lang": "ecql"}).status_code == 400


@walks(FILTER_PART + "features-filter")
def _features_filter(client: FlaskClient, url: str) -> None:
    for cid, table, area in (
        ("parcels", "parcel", "area_m2"),
        ("plates", "plate", "ST_Area(geom::geography)"),
        ("guide_plans", "guide_plan", "ST_Area(zone::geography)"),
    ):
        cql = "area_m2 > 1000"  # each collection filters its own items
        got = client.get(f"/collections/{cid}/items", query_string={"filter": cql, "limit": 1})
        assert got.status_code == 200, got.json
        expected = _count(url, f"round({area}::numeric, 2) > 1000", table=table)
        assert got.json["numberMatched"] == expected > 0, cid


# ------------------------------------------------------------------ CQL2


@walks(CQL2 + "cql2-text")
def _cql2_text(client: FlaskClient, url: str) -> None:
    _same(
        client,
        url,
        "land_use = 'مسکونی' AND area_m2 > 500",
        "land_use = 'مسکونی' AND area_m2 > 500",
    )


@walks(CQL2 + "cql2-json")
def _cql2_json(client: FlaskClient, url: str) -> None:
    tree = {"op": "and", "args": [
        {"op": "=", "args": [{"property": "land_use"}, "مسکونی"]},
        {"op": ">", "args": [{"property": "area_m2"}, 500]},
    ]}  # fmt: skip
    as_json = _matched(client, json.dumps(tree), **{"filter-lang": "cql2-json"})
    assert as_json == _matched(client, "land_use = 'مسکونی' AND area_m2 > 500") > 0


@walks(CQL2 + "basic-cql2")
def _basic_cql2(client: FlaskClient, url: str) -> None:
    _same(client, url, "land_use <> 'مسکونی' OR NOT (area_m2 >= 400)",
          "(land_use <> 'مسکونی' OR NOT (round(area_m2::numeric, 2) >= 400))")  # fmt: skip
    _same(client, url, "NOT (area_declared IS NULL)", "area_declared IS NOT NULL")
    _same(client, url, "valid_from < TIMESTAMP('2100-01-01T00:00:00Z')", "TRUE")


@walks(CQL2 + "advanced-comparison-operators")
def _advanced(client: FlaskClient, url: str) -> None:
    _same(client, url, "parcel_no LIKE '1%'", "parcel_no LIKE '1%'")
    _same(
        client, url, "area_m2 BETWEEN 200 AND 300", "round(area_m2::numeric, 2) BETWEEN 200 AND 300"
    )
    _same(client, url, "land_use IN ('باغ', 'تجاری')", "land_use IN ('باغ', 'تجاری')")


@walks(CQL2 + "case-insensitive-comparison")
def _casei(client: FlaskClient, url: str) -> None:
    got = client.get("/collections/divisions/items", query_string={
        "filter": "CASEI(agency) = CASEI('SCI') AND level = 'county'", "limit": 1})  # fmt: skip
    with Database(url).connect() as c:
        expected = c.execute(
            text(
                "SELECT count(*) FROM division d JOIN edition e ON e.id = d.edition_id"
                " WHERE e.agency = 'sci' AND d.level = 'county'"
            )
        ).scalar_one()
    assert got.status_code == 200 and got.json["numberMatched"] == expected > 0


@walks(CQL2 + "accent-insensitive-comparison")
def _accenti(client: FlaskClient, url: str) -> None:
    # Arabic kaf and yeh, as many keyboards type them, find the Persian spelling
    _same(client, url, "ACCENTI(land_use) = ACCENTI('مسكوني')", "land_use = 'مسکونی'")


@walks(CQL2 + "basic-spatial-functions")
def _basic_spatial(client: FlaskClient, url: str) -> None:
    _same(client, url, "S_INTERSECTS(geometry, BBOX(51.0, 35.0, 51.6, 35.9))",
          "ST_Intersects(geom, ST_MakeEnvelope(51.0, 35.0, 51.6, 35.9, 4326))")  # fmt: skip
    lon, lat = _a_point(url)
    _same(client, url, f"S_INTERSECTS(geometry, POINT({lon} {lat}))",
          f"ST_Intersects(geom, ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326))")  # fmt: skip


@walks(CQL2 + "basic-spatial-functions-plus")
def _basic_spatial_plus(client: FlaskClient, url: str) -> None:
    lon, lat = _a_point(url)
    ring = f"{lon - 0.001} {lat - 0.001}, {lon + 0.001} {lat - 0.001}, {lon} {lat + 0.001}"
    polygon = f"POLYGON(({ring}, {lon - 0.001} {lat - 0.001}))"
    _same(client, url, f"S_INTERSECTS(geometry, {polygon})",
          f"ST_Intersects(geom, ST_GeomFromText('{polygon}', 4326))")  # fmt: skip
    line = f"LINESTRING({lon - 0.002} {lat}, {lon + 0.002} {lat})"
    _same(client, url, f"S_INTERSECTS(geometry, {line})",
          f"ST_Intersects(geom, ST_GeomFromText('{line}', 4326))")  # fmt: skip


@walks(CQL2 + "spatial-functions")
def _spatial(client: FlaskClient, url: str) -> None:
    lon, lat = _a_point(url)
    box = f"BBOX({lon - 0.003}, {lat - 0.003}, {lon + 0.003}, {lat + 0.003})"
    envelope = f"ST_MakeEnvelope({lon - 0.003}, {lat - 0.003}, {lon + 0.003}, {lat + 0.003}, 4326)"
    _same(client, url, f"S_WITHIN(geometry, {box})", f"ST_Within(geom, {envelope})")
    point = f"POINT({lon} {lat})"
    _same(client, url, f"S_CONTAINS(geometry, {point})",
          f"ST_Contains(geom, ST_GeomFromText('{point}', 4326))")  # fmt: skip
    _same(client, url, f"S_DISJOINT(geometry, {box})", f"ST_Disjoint(geom, {envelope})")


@walks(CQL2 + "temporal-functions")
def _temporal(client: FlaskClient, url: str) -> None:
    _same(client, url, "T_AFTER(valid_from, TIMESTAMP('2000-01-01T00:00:00Z'))",
          "valid_from > '2000-01-01'")  # fmt: skip
    _same(client, url, "T_INTERSECTS(valid_from, INTERVAL('2000-01-01T00:00:00Z', '..'))",
          "valid_from >= '2000-01-01'")  # fmt: skip
    assert _matched(client, "T_BEFORE(valid_from, TIMESTAMP('2000-01-01T00:00:00Z'))") == 0


@walks(CQL2 + "arithmetic")
def _arithmetic(client: FlaskClient, url: str) -> None:
    _same(client, url, "area_m2 * 2 - 100 > 900", "round(area_m2::numeric, 2) * 2 - 100 > 900")
    _same(client, url, "area_m2 / 10 < 30", "round(area_m2::numeric, 2) / 10 < 30")


@walks(CQL2 + "property-property")
def _property_property(client: FlaskClient, url: str) -> None:
    _same(client, url, "area_declared > area_m2", "area_declared > round(area_m2::numeric, 2)")


def _a_point(url: str) -> tuple[float, float]:
    with Database(url).connect() as c:
        return tuple(  # type: ignore[return-value]
            c.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM parcel"
                    " WHERE valid_to IS NULL ORDER BY id LIMIT 1 OFFSET 700) x"
                )
            ).one()
        )


# ------------------------------------------------------------------ Tiles


def _tilesets(client: FlaskClient) -> list[dict[str, Any]]:
    links = client.get("/collections/parcels").json["links"]
    (rel,) = _rel(links, "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector")
    got = client.get(_local(rel["href"]))
    assert got.status_code == 200
    return got.json["tilesets"]


def _tileset_doc(client: FlaskClient) -> dict[str, Any]:
    """The parcels' one tileset, by its own link."""
    (tileset,) = _tilesets(client)
    (self_link,) = _rel(tileset["links"], "self")
    return client.get(_local(self_link["href"])).json


def _a_tile(client: FlaskClient, url: str) -> tuple[Any, int, int]:
    (template,) = _rel(_tileset_doc(client)["links"], "item")
    lon, lat = _a_point(url)
    n = 1 << 16
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    href = template["href"].format(tileMatrix=16, tileCol=x, tileRow=y)
    return client.get(_local(href)), x, y


@walks(TILES + "core")
def _tiles_core(client: FlaskClient, url: str) -> None:
    tile, _, _ = _a_tile(client, url)  # /req/core/tc-success
    assert tile.status_code == 200 and len(tile.data) > 0
    (template,) = _rel(_tileset_doc(client)["links"], "item")
    outside = template["href"].format(tileMatrix=3, tileCol=99, tileRow=0)
    assert client.get(_local(outside)).status_code in {400, 404}  # /req/core/tc-error


@walks(TILES + "tileset")
def _tileset(client: FlaskClient, url: str) -> None:
    doc = _tileset_doc(client)  # /req/tileset/tileset-response
    assert doc["dataType"] == "vector" and doc["crs"]
    assert _rel(doc["links"], "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme")
    assert [lk for lk in doc["links"] if lk["rel"] == "item" and lk.get("templated")]


@walks(TILES + "tilesets-list")
def _tilesets_list(client: FlaskClient, url: str) -> None:
    listed = _tilesets(client)  # /req/tilesets-list/tilesets-list-success
    assert listed and all(t["tileMatrixSetURI"] and _rel(t["links"], "self") for t in listed)


@walks(TILES + "geodata-tilesets")
def _geodata_tilesets(client: FlaskClient, url: str) -> None:
    for cid in ("parcels", "guide_plans", "plates", "divisions"):  # every collection has them
        links = client.get(f"/collections/{cid}").json["links"]
        assert _rel(links, "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"), cid


@walks(TILES + "mvt")
def _mvt(client: FlaskClient, url: str) -> None:
    tile, x, y = _a_tile(client, url)
    assert tile.mimetype == "application/vnd.mapbox-vector-tile"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{y}.mvt"
        path.write_bytes(tile.data)
        decoded = pyogrio.read_dataframe(path, layer="parcels", X=x, Y=y, Z=16)
    assert len(decoded) > 0 and "land_use" in decoded.columns


# ------------------------------------------------------------------ the walk itself


def test_every_declared_class_has_a_walk_and_every_walk_is_declared(client: FlaskClient) -> None:
    declared = set(client.get("/conformance").json["conformsTo"])
    assert declared - set(WALKS) == set(), "declared but never walked"
    assert set(WALKS) - declared == set(), "walked but not declared"


@pytest.mark.parametrize("conformance_class", sorted(WALKS))
def test_a_declared_class_meets_its_requirements(
    client: FlaskClient, sample_url: str, conformance_class: str
) -> None:
    WALKS[conformance_class](client, sample_url)
