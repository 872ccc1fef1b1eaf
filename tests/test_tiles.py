"""Vector tiles on the sample: decoded with GDAL's MVT driver (pyogrio) and checked against
the parcels under the tile; ETags revalidate and change when the data does."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from api.auth import journal
from geo.platform.config import settings
from geo.platform.database import Database
from tests.helpers import client_for, republish_village


@pytest.fixture(scope="module")
def client(sample_url: str) -> FlaskClient:
    return client_for(sample_url, "reader", "sci")


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def _decode(data: bytes, layer: str, z: int, x: int, y: int):  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{y}.mvt"
        path.write_bytes(data)
        return pyogrio.read_dataframe(path, layer=layer, X=x, Y=y, Z=z)


def _some_parcel(url: str) -> tuple[int, float, float]:
    with Database(url).connect() as c:
        return tuple(  # type: ignore[return-value]
            c.execute(
                text(
                    "SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom))"
                    " FROM parcel WHERE valid_to IS NULL ORDER BY id LIMIT 1 OFFSET 500"
                )
            ).one()
        )


def _ids(url: str, sql: str, z: int, x: int, y: int) -> set[int]:
    with Database(url).connect() as c:
        return set(c.execute(text(sql), {"z": z, "x": x, "y": y}).scalars())


def test_a_parcel_tile_holds_the_parcels_under_it(client: FlaskClient, sample_url: str) -> None:
    _, lon, lat = _some_parcel(sample_url)
    z = 16
    x, y = _tile_of(lon, lat, z)
    answer = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt")
    assert answer.status_code == 200
    assert answer.mimetype == "application/vnd.mapbox-vector-tile"
    frame = _decode(answer.data, "parcels", z, x, y)
    got = set(frame["mvt_id"].astype(int))
    inside = _ids(
        sample_url,
        "SELECT id FROM parcel WHERE valid_to IS NULL AND ST_Within(ST_PointOnSurface(geom),"
        " ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326))",
        z,
        x,
        y,
    )
    near = _ids(
        sample_url,
        "SELECT id FROM parcel WHERE valid_to IS NULL AND ST_Intersects(geom,"
        " ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => 0.02), 4326))",
        z,
        x,
        y,
    )
    assert inside and inside <= got <= near
    assert set(frame["land_use"]) <= {
        r
        for (r,) in Database(sample_url)
        .connect()
        .execute(text("SELECT DISTINCT land_use FROM parcel"))
        .all()
    }


def test_tiles_below_the_minimum_zoom_are_empty_and_divisions_show_early(
    client: FlaskClient, sample_url: str
) -> None:
    _, lon, lat = _some_parcel(sample_url)
    x, y = _tile_of(lon, lat, 9)
    empty = client.get(f"/tiles/parcels/9/{x}/{y}.mvt")
    assert empty.status_code == 200 and empty.data == b""
    x, y = _tile_of(lon, lat, 6)
    divisions = client.get(f"/tiles/divisions/6/{x}/{y}.mvt?agency=sci&level=county")
    frame = _decode(divisions.data, "divisions", 6, x, y)
    assert len(frame) > 0 and set(frame["level"]) == {"county"}
    # every zoom shows them, the world's halves too: at zoom 1 the east tile's margin
    # crosses the antimeridian, and once wrapped to -177° it missed Iran (an empty tile)
    for z in range(0, 6):
        x, y = _tile_of(lon, lat, z)
        whole = client.get(f"/tiles/divisions/{z}/{x}/{y}.mvt?agency=sci&level=province")
        assert len(_decode(whole.data, "divisions", z, x, y)) > 0, z
    tilejson = client.get("/tiles/divisions.json").json
    assert tilejson["tiles"][0].endswith("/tiles/divisions/{z}/{x}/{y}.mvt")
    assert tilejson["vector_layers"][0]["id"] == "divisions"


def test_etag_revalidates_and_a_new_upload_refreshes_the_tile(
    client: FlaskClient, sample_url: str
) -> None:
    with Database(sample_url).connect() as c:
        code = c.execute(
            text("SELECT village_code FROM parcel GROUP BY 1 ORDER BY count(*), 1 LIMIT 1")
        ).scalar_one()
    truth = gpd.read_file(settings().sample_dir / "truth" / "parcels.gpkg", layer="parcels")
    first = str(truth[truth["CODE_HF"] == code].iloc[0]["SHOMARE"])
    with Database(sample_url).connect() as c:
        lon, lat = c.execute(
            text(
                "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM parcel"
                " WHERE village_code = :c AND parcel_no = :n AND valid_to IS NULL"
            ),
            {"c": code, "n": first},
        ).one()
    z = 17
    x, y = _tile_of(lon, lat, z)
    path = f"/tiles/parcels/{z}/{x}/{y}.mvt"
    before = client.get(path)
    etag = before.headers["ETag"]
    assert before.headers["Cache-Control"] == "private, no-cache"
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    old_use = _uses(before.data, z, x, y)[first]
    republish_village(sample_url, code)  # the real upload path: parcel `first` changes use
    after = client.get(path, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    assert _uses(after.data, z, x, y)[first] != old_use


def _uses(data: bytes, z: int, x: int, y: int) -> dict[str, str]:
    frame = _decode(data, "parcels", z, x, y)
    return dict(zip(frame["parcel_no"], frame["land_use"], strict=True))


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/tiles/parcels/23/0/0.mvt", 400, "bad_tile"),  # no such zoom: a bad request
        ("/tiles/parcels/3/8/0.mvt", 404, "no_such_tile"),  # a zoom, but no such tile in it
    ],
)
def test_tiles_outside_the_grid_are_refused(
    client: FlaskClient, path: str, status: int, code: str
) -> None:
    answer = client.get(path)
    assert answer.status_code == status and answer.json["code"] == code


def test_tiles_follow_the_collection_policy(sample_url: str) -> None:
    admin = client_for(sample_url, "admin", "moi")
    assert (
        admin.put("/admin/policies/parcels", json={"mode": "allow_list", "agencies": ["moi"]})
    ).status_code == 200
    try:
        sci = client_for(sample_url, "reader", "sci")
        assert sci.get("/tiles/parcels/16/42000/25000.mvt").status_code == 403
        assert sci.get("/collections/parcels/items").status_code == 403
        assert sci.get("/collections/divisions/items?limit=1").status_code == 200
        assert (
            client_for(sample_url, "reader", "moi")
            .get("/tiles/parcels/16/42000/25000.mvt")
            .status_code
            == 200
        )
        with sci.application.app_context():
            journal().flush()  # audit rows move in batches (one journal per process and database)
        with Database(sample_url).connect() as c:
            audited = c.execute(
                text(
                    "SELECT service, status FROM audit WHERE endpoint = 'tiles.get_tile'"
                    " ORDER BY id DESC LIMIT 2"
                )
            ).all()
        assert [tuple(a) for a in audited] == [("parcels", 200), ("parcels", 403)]
    finally:
        admin.put("/admin/policies/parcels", json={"mode": "all", "agencies": []})


def test_plain_tiles_are_kept_until_a_change_touches_them(sample_url: str) -> None:
    """The process keeps plain parcel tiles by the data's version: a second request is
    served from memory; a publish re-makes the tiles over its village (never stale) and
    keeps the others; a filtered tile is made each time."""
    client = client_for(sample_url, "reader", "sci")
    cache = client.application.config["TILE_CACHE"]
    with Database(sample_url).connect() as c:
        changed, other = c.execute(
            text("SELECT village_code FROM parcel GROUP BY 1 ORDER BY count(*), 1 LIMIT 2")
        ).scalars()
    truth = gpd.read_file(settings().sample_dir / "truth" / "parcels.gpkg", layer="parcels")
    mine = str(truth[truth["CODE_HF"] == changed].iloc[0]["SHOMARE"])  # its use changes
    with Database(sample_url).connect() as c:
        where = (
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM parcel"
            " WHERE village_code = :c AND valid_to IS NULL ORDER BY parcel_no = :n DESC LIMIT 1"
        )
        lon, lat = c.execute(text(where), {"c": changed, "n": mine}).one()
        lon2, lat2 = c.execute(text(where), {"c": other, "n": ""}).one()
    z = 17
    here = "/tiles/parcels/{}/{}/{}.mvt".format(z, *_tile_of(lon, lat, z))
    there = "/tiles/parcels/{}/{}/{}.mvt".format(z, *_tile_of(lon2, lat2, z))
    assert here != there
    first = client.get(here)
    hits = cache.hits
    again = client.get(here)
    assert again.data == first.data and cache.hits == hits + 1  # from memory
    kept = client.get(there)
    hits = cache.hits
    filtered = client.get(here + "?land_use=" + "مسکونی")
    assert filtered.status_code == 200 and cache.hits == hits  # made, not kept
    republish_village(sample_url, changed)
    after = client.get(here)
    assert after.headers["ETag"] != first.headers["ETag"]  # the change shows at once
    assert (
        _uses(after.data, z, *_tile_of(lon, lat, z))[mine]
        != _uses(first.data, z, *_tile_of(lon, lat, z))[mine]
    )
    assert cache.hits == hits
    still = client.get(there)
    assert still.data == kept.data and cache.hits == hits + 1  # elsewhere: still kept


def test_a_cache_too_far_behind_starts_afresh(sample_url: str) -> None:
    from geo.geodata.features.tiles import parcel_tile_cache

    cache = parcel_tile_cache(1)
    made = []

    def make() -> bytes:
        made.append(1)
        return b"tile"

    with Database(sample_url).begin() as c:
        assert cache.get(c, ("parcels", 1, 0, 0), make, bytes) == b"tile"
        assert cache.get(c, ("parcels", 1, 0, 0), make, bytes) == b"tile" and len(made) == 1
        # a version whose area was forgotten (as after 10,000 publishes): all dropped
        c.execute(text("UPDATE data_version SET version = version + 2 WHERE dataset = 'parcels'"))
        cache.get(c, ("parcels", 1, 0, 0), make, bytes)
        assert len(made) == 2
        c.rollback()


def test_a_filtered_tile_holds_the_features_the_filter_selects(
    client: FlaskClient, sample_url: str
) -> None:
    """Issue 24: the CQL2 filter items take, on tiles too: a map shows what a download
    holds."""
    _, lon, lat = _some_parcel(sample_url)
    z = 15
    x, y = _tile_of(lon, lat, z)
    cql = "land_use = 'مسکونی' AND area_m2 > 300"
    got = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt", query_string={"filter": cql})
    assert got.status_code == 200, got.data[:300]
    shown = _decode(got.data, "parcels", z, x, y)
    everything = _decode(client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt").data, "parcels", z, x, y)
    expected = _ids(
        sample_url,
        "SELECT id FROM parcel WHERE valid_to IS NULL AND land_use = 'مسکونی'"
        " AND round(area_m2::numeric, 2) > 300"
        " AND geom && ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326)",
        z,
        x,
        y,
    )
    assert 0 < len(shown) < len(everything)
    assert set(shown["land_use"]) == {"مسکونی"}
    assert len(shown) <= len(expected)  # (a tile clips to its envelope and margin)
    bad = client.get(f"/tiles/parcels/{z}/{x}/{y}.mvt", query_string={"filter": "nope = 1"})
    assert bad.status_code == 400 and bad.json["code"] == "unknown_queryable"


def test_ogc_api_tiles_leads_a_client_to_the_tiles(client: FlaskClient, sample_url: str) -> None:
    """Issue 24: from a collection to its tileset and the tile matrix set, then a tile by
    the templated link, as an OGC API – Tiles client walks it (no custom URL known)."""
    links = client.get("/collections/parcels").json["links"]
    (sets,) = [lk["href"] for lk in links if lk["rel"].endswith("/tilesets-vector")]
    listed = client.get(sets.removeprefix("http://localhost")).json["tilesets"]
    assert [t["tileMatrixSetURI"] for t in listed] == [
        "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
    ]
    (own,) = [lk["href"] for lk in listed[0]["links"] if lk["rel"] == "self"]
    tileset = client.get(own.removeprefix("http://localhost")).json
    assert tileset["dataType"] == "vector" and tileset["layers"][0]["id"] == "parcels"
    (scheme,) = [lk["href"] for lk in tileset["links"] if lk["rel"].endswith("/tiling-scheme")]
    tms = client.get(scheme.removeprefix("http://localhost")).json
    z16 = next(m for m in tms["tileMatrices"] if m["id"] == "16")
    assert z16["matrixWidth"] == 65536 and abs(z16["cellSize"] - 2.388657133911758) < 1e-9
    (item,) = [lk for lk in tileset["links"] if lk["rel"] == "item"]
    assert item["templated"] and item["type"] == "application/vnd.mapbox-vector-tile"
    _, lon, lat = _some_parcel(sample_url)
    x, y = _tile_of(lon, lat, 16)
    href = item["href"].format(tileMatrix=16, tileCol=x, tileRow=y)
    got = client.get(href.removeprefix("http://localhost"))
    assert got.status_code == 200 and len(_decode(got.data, "parcels", 16, x, y)) > 0
    assert client.get("/tileMatrixSets/WorldCRS84Quad").status_code == 404
    classes = client.get("/conformance").json["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset" in classes


def test_a_tile_clips_each_feature_once(sample_url: str) -> None:
    """ST_AsMVTGeom is the tile's cost: a filter on its result is pushed into the scan and
    runs it a second time for every feature (it did, until "WHERE geom IS NOT NULL" went)."""
    from geo.geodata.features.collections import COLLECTIONS
    from geo.geodata.features.tiles import BUFFER, EXTENT, tile_sql

    _, lon, lat = _some_parcel(sample_url)
    x, y = _tile_of(lon, lat, 14)
    for collection in ("parcels", "divisions"):
        c = COLLECTIONS[collection]
        sql = tile_sql(c, "t.valid_to IS NULL" if c.versioned else "TRUE", 14)
        params = {"z": 14, "x": x, "y": y, "margin": BUFFER / EXTENT, "layer": c.id}
        with Database(sample_url).connect() as conn:
            plan = [r[0] for r in conn.execute(text(f"EXPLAIN (VERBOSE) {sql}"), params).all()]
            data = bytes(conn.execute(text(sql), params).scalar_one())
        clipping = [line for line in plan if "st_asmvtgeom" in line.lower()]
        assert clipping, plan  # (the plan names the clipping where it computes it)
        assert not [line for line in clipping if line.strip().startswith("Filter:")], plan
        if collection == "parcels":
            assert _decode(data, "parcels", 14, x, y).shape[0] > 0
