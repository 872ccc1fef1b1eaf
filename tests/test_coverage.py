"""Coverage of plots, plates and plan zones on the sample, held to 0.1% against areas
computed independently with shapely and pyproj's geodesic; bad plots refused with codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import shapely
from flask.testing import FlaskClient
from shapely.geometry import MultiPolygon, Point, box, mapping
from shapely.ops import unary_union
from sqlalchemy import text

from crosswalk.build import build, start_run
from geo.geodata.crs import transformer, utm_epsg
from geo.geodata.features.plot_input import geodesic_area
from geo.geodata.registry.partners import partners
from geo.platform.database import Database
from tests.helpers import client_for


@pytest.fixture(scope="module")
def client(sample_url: str) -> FlaskClient:
    return client_for(sample_url, "reader", "sci")


def _parcels(url: str, where: str = "TRUE", **params: Any) -> dict[int, Any]:
    with Database(url).connect() as c:
        rows = c.execute(
            text(f"SELECT id, ST_AsBinary(geom) FROM parcel WHERE valid_to IS NULL AND {where}"),
            params,
        ).all()
    return {i: shapely.from_wkb(bytes(g)) for i, g in rows}


def _circle(lon: float, lat: float, radius_m: float) -> MultiPolygon:
    """A round plot drawn in the local UTM zone, brought to lon/lat."""
    epsg = utm_epsg(lon)
    x, y = transformer(4326, epsg).transform(lon, lat)
    utm = Point(x, y).buffer(radius_m, 64)
    back = transformer(epsg)
    return MultiPolygon([shapely.transform(utm, lambda xy: _xy(back, xy))])


def _xy(t: Any, xy: Any) -> Any:
    import numpy as np

    x, y = t.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


def _close(a: float, b: float, tolerance: float = 0.001) -> bool:
    return abs(a - b) <= tolerance * max(abs(b), 1e-9)


def _a_plot(url: str) -> MultiPolygon:
    with Database(url).connect() as c:
        lon, lat = c.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(geom) p FROM parcel"
                " ORDER BY id LIMIT 1 OFFSET 300) x"
            )
        ).one()
    return _circle(lon, lat, 40)


def test_plot_coverage_matches_an_independent_geodesic_reference(
    client: FlaskClient, sample_url: str
) -> None:
    plot = _a_plot(sample_url)
    answer = client.post("/coverage", json=mapping(plot))
    assert answer.status_code == 200, answer.json
    body = answer.json
    plot_m2 = geodesic_area(plot)
    assert _close(body["plot"]["area_m2"], plot_m2)
    minx, miny, maxx, maxy = plot.bounds
    parcels = _parcels(
        sample_url,
        "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
        a=minx,
        b=miny,
        c=maxx,
        d=maxy,
    )
    reference = {
        i: geodesic_area(g.intersection(plot)) for i, g in parcels.items() if g.intersects(plot)
    }
    reference = {i: a for i, a in reference.items() if a > 0.001}
    got = {p["id"]: p for p in body["parcels"]}
    assert set(got) == set(reference) and len(got) >= 2
    for i, area in reference.items():
        assert _close(got[i]["overlap_m2"], area), (i, got[i], area)
        assert _close(got[i]["share_of_plot"], area / plot_m2)
        assert _close(got[i]["share_of_parcel"], area / geodesic_area(parcels[i]))
    covered = geodesic_area(unary_union([parcels[i] for i in reference]).intersection(plot))
    assert _close(body["totals"]["parcels_m2"], covered)
    assert body["totals"]["parcel_count"] == len(reference)
    assert body["guide_plans"] and 0 < body["totals"]["share_by_guide_plans"] <= 1
    assert {d["agency"] for d in body["divisions"]} >= {"moi", "sci"}  # OSM boundaries
    assert body["villages"] and body["area_method"].startswith("geodesic")

    _villages_have_their_crosswalk_codes(sample_url, body)


def _villages_have_their_crosswalk_codes(url: str, body: dict[str, Any]) -> None:
    with Database(url).connect() as c:
        for village in body["villages"]:
            unit = (village["agency"], village["code"])
            expected = partners().equivalent_codes(c, *unit)
            assert {(a, x) for a, xs in village["codes"].items() for x in xs} == expected


def test_villages_come_with_their_codes_in_every_agency(
    client: FlaskClient, sample_url: str
) -> None:
    """Each village of a coverage answer carries its codes in the three agencies through
    the newest finished crosswalk run: the links accepted (by the matcher or a person),
    reaching SCI through MOI; a link waiting for review adds nothing."""
    plot = mapping(_a_plot(sample_url))
    village = client.post("/coverage", json=plot).json["villages"][0]
    # (the sample's MOI list stops at rural districts, so its villages link by hand here)
    build(Database(sample_url), start_run(Database(sample_url)))
    with Database(sample_url).begin() as c:
        run = c.execute(text("SELECT max(id) FROM crosswalk_run WHERE status = 'finished'"))
        c.execute(
            text(
                "INSERT INTO crosswalk_link (run_id, level, moi_code, sci_code, hf_code,"
                " confidence, method, status) VALUES"
                " (:r, 'village', 'M1', NULL, :hf, 1, 'manual', 'confirmed'),"
                " (:r, 'village', 'M1', 'S1', NULL, 1, 'name', 'auto'),"
                " (:r, 'village', 'M1', 'S2', NULL, 0.5, 'fuzzy', 'needs_review')"
            ),
            {"r": run.scalar_one(), "hf": village["code"]},
        )
    answer = client.post("/coverage", json=plot)
    assert answer.status_code == 200, answer.json
    linked = next(v for v in answer.json["villages"] if v["code"] == village["code"])
    assert linked["codes"] == {"hf": [village["code"]], "moi": ["M1"], "sci": ["S1"]}
    _villages_have_their_crosswalk_codes(sample_url, answer.json)


@pytest.mark.parametrize("epsg", [32639, 2059])
def test_the_same_plot_in_utm_or_ed77_gives_the_same_answer(
    client: FlaskClient, sample_url: str, epsg: int
) -> None:
    plot = _a_plot(sample_url)
    in_lonlat = client.post("/coverage", json=mapping(plot)).json
    to_projected = transformer(4326, epsg)
    projected = shapely.transform(plot, lambda xy: _xy(to_projected, xy))
    answer = client.post(
        "/coverage", json={"geometry": mapping(projected), "crs": f"EPSG:{epsg}"}
    ).json
    assert _close(answer["plot"]["area_m2"], in_lonlat["plot"]["area_m2"])
    assert [p["id"] for p in answer["parcels"]] == [p["id"] for p in in_lonlat["parcels"]]
    for a, b in zip(answer["parcels"], in_lonlat["parcels"], strict=True):
        assert _close(a["overlap_m2"], b["overlap_m2"])


def test_a_plate_by_its_numbers_with_persian_digits(client: FlaskClient, sample_url: str) -> None:
    with Database(sample_url).connect() as c:
        unit, main, sub, wkb = c.execute(
            text(
                "SELECT registration_unit, main_plate, sub_plate, ST_AsBinary(geom) FROM plate"
                " ORDER BY id LIMIT 1 OFFSET 7"
            )
        ).one()
    persian = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
    answer = client.get(
        f"/plates/{unit.translate(persian)}/{main}/{sub.translate(persian)}/coverage"
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["plate"]["main_plate"] == main
    posted = client.post("/coverage", json=mapping(shapely.from_wkb(bytes(wkb)))).json
    assert answer.json["totals"] == posted["totals"]
    missing = client.get("/plates/999/999/999/coverage")
    assert missing.status_code == 404 and missing.json["code"] == "unknown_plate"


def test_plan_coverage_share_gaps_and_parcels_outside(client: FlaskClient, sample_url: str) -> None:
    with Database(sample_url).connect() as c:
        code, zone_wkb = c.execute(
            text(
                "SELECT village_code, ST_AsBinary(zone) FROM guide_plan WHERE valid_to IS NULL"
                " ORDER BY id LIMIT 1 OFFSET 3"
            )
        ).one()
    zone = shapely.from_wkb(bytes(zone_wkb))
    parcels = _parcels(sample_url, "village_code = :c", c=code)
    answer = client.get(f"/villages/hf/{code}/plan-coverage")
    assert answer.status_code == 200, answer.json
    body = answer.json
    union = unary_union(list(parcels.values()))
    covered = geodesic_area(union.intersection(zone))
    assert _close(body["zone_m2"], geodesic_area(zone))
    assert _close(body["covered_m2"], covered)
    assert _close(body["share_covered"], covered / geodesic_area(zone))
    gaps = shapely.geometry.shape(body["gaps"]["geometry"])
    assert _close(geodesic_area(gaps), geodesic_area(zone.difference(union)), 0.002)
    assert body["parcel_count"] == len(parcels)
    outside = {i for i, g in parcels.items() if geodesic_area(g.difference(zone)) > 0.01}
    assert {p["id"] for p in body["parcels_outside"]} == outside
    unknown = client.get("/villages/hf/123/plan-coverage")
    assert unknown.status_code == 404 and unknown.json["code"] == "no_guide_plan"


def _square(lon: float, lat: float, size: float) -> list[list[float]]:
    return [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]


# Off the declared shape: 400 (the first group); the right shape with wrong content: 422
BAD_PLOTS = {
    "point": ({"type": "Point", "coordinates": [51.4, 35.7]}, "wrong_geometry_type"),
    "garbage": ({"type": "Polygon", "coordinates": [["a", "b"]]}, "invalid_geojson"),
    "too shallow": ({"type": "Polygon", "coordinates": [[51.4, 35.7]]}, "invalid_geojson"),
    "no type": ({"coordinates": [[[51.4, 35.7]]]}, "invalid_geojson"),
    "geometry not a feature's": (
        {"type": "Polygon", "geometry": {"type": "Polygon", "coordinates": []}},
        "invalid_geojson",
    ),
    "null crs": (
        {"type": "Polygon", "coordinates": [_square(51.4, 35.7, 0.01)], "crs": None},
        "unsupported_crs",
    ),
    "unknown crs": (
        {
            "geometry": {"type": "Polygon", "coordinates": [_square(51.4, 35.7, 0.01)]},
            "crs": "EPSG:3395",
        },
        "unsupported_crs",
    ),
    "empty": ({"type": "Polygon", "coordinates": []}, "empty_geometry"),
    "short ring": (
        {"type": "Polygon", "coordinates": [[[51.4, 35.7], [51.5, 35.7], [51.4, 35.7]]]},
        "invalid_geometry",
    ),
    "bowtie": (
        {
            "type": "Polygon",
            "coordinates": [[[51.4, 35.7], [51.5, 35.8], [51.5, 35.7], [51.4, 35.8], [51.4, 35.7]]],
        },
        "invalid_geometry",
    ),
    "swapped": (
        {"type": "Polygon", "coordinates": [[[y, x] for x, y in _square(51.4, 35.7, 0.01)]]},
        "outside_iran",
    ),
    "huge": ({"type": "Polygon", "coordinates": [_square(51.0, 35.0, 1.0)]}, "plot_too_large"),
    "many vertices": (
        mapping(Point(51.4, 35.7).buffer(0.001, 30000)),
        "geometry_too_large",
    ),
    "utm without crs": (
        {"type": "Polygon", "coordinates": [_square(500000, 3950000, 100)]},
        "outside_iran",
    ),
}


OFF_SHAPE = {"point", "garbage", "too shallow", "no type", "geometry not a feature's"}
OFF_SHAPE |= {"null crs", "unknown crs"}


@pytest.mark.parametrize("name", BAD_PLOTS)
def test_bad_plots_get_a_400_or_422_with_a_code(client: FlaskClient, name: str) -> None:
    body, code = BAD_PLOTS[name]
    answer = client.post("/coverage", json=body)
    assert answer.status_code == (400 if name in OFF_SHAPE else 422), (name, answer.json)
    assert answer.json["code"] == code, answer.json
    if name == "swapped":
        assert answer.json["swapped_axes"] is True


def test_not_json_nan_and_oversized_bodies(client: FlaskClient) -> None:
    not_json = client.post("/coverage", data="POLYGON((1 2))", content_type="application/json")
    assert not_json.status_code == 400
    nan = client.post(
        "/coverage",
        data='{"type": "Polygon", "coordinates": [[[NaN, 35], [51, 35], [51, 36], [NaN, 35]]]}',
        content_type="application/json",
    )
    assert nan.status_code == 400 and nan.json["code"] in {"invalid_geojson", "invalid_parameter"}
    big = client.post(
        "/coverage",
        data=json.dumps({"type": "Polygon", "pad": "x" * (9 * 1024 * 1024)}),
        content_type="application/json",
    )
    assert big.status_code in {400, 413} and big.json["code"] in {
        "request_too_large",
        "request_entity_too_large",
    }


def test_coverage_as_of_a_date_before_any_parcel(client: FlaskClient, sample_url: str) -> None:
    plot = _a_plot(sample_url)
    answer = client.post("/coverage?datetime=2001-01-01", json=mapping(plot)).json
    assert (answer["parcels"] == [] and answer["totals"]["share_by_parcels"] is None) or (
        answer["totals"]["parcels_m2"] == 0
    )
    assert answer["as_of"].startswith("2001-01-01")
    assert box(*plot.bounds).area > 0
