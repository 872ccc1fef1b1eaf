"""Real OGC API – Features clients against a real server on 127.0.0.1: GDAL's OAPIF driver
(ogrinfo, ogr2ogr into a GeoPackage) and OWSLib's ``ogcapi.features``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyogrio
import pytest
from sqlalchemy import text

from geo.access.control import create_key
from geo.platform.database import Database
from tests.live import live_server

needs_gdal = pytest.mark.skipif(
    shutil.which("ogr2ogr") is None, reason="GDAL's tools missing: apt-get install gdal-bin"
)


@pytest.fixture(scope="module")
def server(sample_url: str) -> Iterator[str]:
    with live_server(sample_url) as base:
        yield base


@pytest.fixture(scope="module")
def key(sample_url: str) -> str:
    with Database(sample_url).begin() as c:
        return create_key(c, "sci", "reader", "OGC client tests")["key"]


def _count(url: str, sql: str, **params: object) -> int:
    with Database(url).connect() as c:
        return c.execute(text(sql), params).scalar_one()


def _gdal(*args: str, key: str) -> str:
    done = subprocess.run(
        [args[0], "--config", "GDAL_HTTP_HEADERS", f"Authorization: Bearer {key}", *args[1:]],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_gdal
def test_ogrinfo_lists_the_collections_and_counts_a_layer(
    server: str, key: str, sample_url: str
) -> None:
    listing = _gdal("ogrinfo", "-ro", f"OAPIF:{server}", key=key)
    for name in ("parcels", "guide_plans", "plates", "divisions"):
        assert name in listing
    summary = _gdal("ogrinfo", "-ro", "-so", f"OAPIF:{server}", "plates", key=key)
    plates = _count(sample_url, "SELECT count(*) FROM plate WHERE valid_to IS NULL")
    assert f"Feature Count: {plates}" in summary
    assert "Multi Polygon" in summary


@needs_gdal
def test_ogr2ogr_copies_a_bbox_of_parcels_into_a_geopackage(
    server: str, key: str, sample_url: str, tmp_path: Path
) -> None:
    with Database(sample_url).connect() as c:
        lon, lat = c.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(geom) p FROM parcel"
                " ORDER BY id LIMIT 1 OFFSET 1000) x"
            )
        ).one()
    box = (lon - 0.004, lat - 0.004, lon + 0.004, lat + 0.004)
    out = tmp_path / "parcels.gpkg"
    _gdal(
        "ogr2ogr",
        "-f",
        "GPKG",
        str(out),
        f"OAPIF:{server}",
        "parcels",
        "-oo",
        "PAGE_SIZE=250",
        "-spat",
        *map(str, box),
        key=key,
    )
    copied = pyogrio.read_dataframe(out)
    expected = _count(
        sample_url,
        "SELECT count(*) FROM parcel WHERE valid_to IS NULL AND"
        " ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
        a=box[0],
        b=box[1],
        c=box[2],
        d=box[3],
    )
    assert len(copied) == expected > 250  # more than one page was followed
    uses = set(copied["land_use"])
    assert "مسکونی" in uses or "زراعی" in uses  # Persian intact through the driver
    assert copied.crs.to_epsg() == 4326


def test_owslib_reads_collections_and_items(server: str, key: str, sample_url: str) -> None:
    from owslib.ogcapi.features import Features

    client = Features(server, headers={"Authorization": f"Bearer {key}"})
    assert (
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
        in (client.conformance()["conformsTo"])
    )
    ids = [c["id"] for c in client.collections()["collections"]]
    assert ids == ["parcels", "guide_plans", "plates", "divisions"]
    assert client.collection("plates")["itemType"] == "feature"
    items = client.collection_items("divisions", agency="sci", level="county", limit=5)
    expected = _count(
        sample_url,
        "SELECT count(*) FROM division d JOIN edition e ON e.id = d.edition_id"
        " WHERE e.agency = 'sci' AND d.level = 'county'",
    )
    assert items["numberMatched"] == expected and items["numberReturned"] == 5
    assert all(f["properties"]["level"] == "county" for f in items["features"])
    plate = _count(sample_url, "SELECT min(id) FROM plate WHERE valid_to IS NULL")
    one = client.collection_item("plates", str(plate))
    assert one["type"] == "Feature" and one["properties"]["registration_unit"]


@needs_gdal
def test_ogr2ogr_where_runs_on_the_server(
    server: str, key: str, sample_url: str, tmp_path: Path
) -> None:
    """Issue 24: GDAL's OAPIF driver sends ``-where`` to the server as a filter (GDAL 3.6
    speaks the draft's ``cql-text``, with OGR_OAPIF_ALLOW_CQL_TEXT=YES; later GDALs CQL2):
    its requests carry ``filter=``, and the layer it writes holds what PostGIS answers."""
    out = tmp_path / "orchards.gpkg"
    done = subprocess.run(
        [
            "ogr2ogr",
            "--debug",
            "on",
            "--config",
            "GDAL_HTTP_HEADERS",
            f"Authorization: Bearer {key}",
            "--config",
            "OGR_OAPIF_ALLOW_CQL_TEXT",
            "YES",
            "-f",
            "GPKG",
            str(out),
            f"OAPIF:{server}",
            "parcels",
            "-where",
            "land_use = 'باغ' AND area_m2 > 300",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    asked = [line for line in done.stderr.splitlines() if "Fetch(" in line and "/items" in line]
    assert asked and all("filter=" in line for line in asked[1:]), asked[:3]
    copied = pyogrio.read_dataframe(out)
    expected = _count(
        sample_url,
        "SELECT count(*) FROM parcel WHERE valid_to IS NULL AND land_use = 'باغ'"
        " AND round(area_m2::numeric, 2) > 300",
    )
    assert len(copied) == expected > 0


def test_owslib_sends_a_cql2_filter(server: str, key: str, sample_url: str) -> None:
    from owslib.ogcapi.features import Features

    client = Features(server, headers={"Authorization": f"Bearer {key}"})
    items = client.collection_items(
        "parcels", filter="ACCENTI(land_use) = ACCENTI('مسكوني') AND area_m2 > 800", limit=5
    )
    expected = _count(
        sample_url,
        "SELECT count(*) FROM parcel WHERE valid_to IS NULL AND land_use = 'مسکونی'"
        " AND round(area_m2::numeric, 2) > 800",
    )
    assert items["numberMatched"] == expected > 0
    assert all(f["properties"]["land_use"] == "مسکونی" for f in items["features"])
    largest = client.collection_items(
        "parcels", filter="land_use = 'مسکونی'", sortby=("area_m2", "desc"), limit=5
    )
    areas = [f["properties"]["area_m2"] for f in largest["features"]]
    top = _count(
        sample_url,
        "SELECT max(round(area_m2::numeric, 2)) FROM parcel"
        " WHERE valid_to IS NULL AND land_use = 'مسکونی'",
    )
    assert areas == sorted(areas, reverse=True) and areas[0] == float(top)
