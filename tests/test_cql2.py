"""CQL2 filters on the sample's parcels and divisions: each answer equals the same question
asked of PostGIS directly; bad filters are 400s that say what and where; values are bound,
never written into the SQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from geo.geodata.persian import match_key, match_key_sql
from geo.platform.database import Database
from tests.helpers import client_for


@pytest.fixture(scope="module")
def client(sample_url: str) -> FlaskClient:
    return client_for(sample_url, "reader", "sci")


def _ids(client: FlaskClient, cql: str, **args: str) -> list[int]:
    """Every id the filter selects (pages of 10,000 followed by their ``after`` key)."""
    found: list[int] = []
    after: dict[str, Any] = {}
    while True:
        got = client.get(
            "/collections/parcels/items",
            query_string={"filter": cql, "limit": 10000, **args, **after},
        )
        assert got.status_code == 200, got.json
        found += [f["id"] for f in got.json["features"]]
        following = [lk for lk in got.json["links"] if lk["rel"] == "next"]
        if not following:
            return sorted(found)
        after = {"after": following[0]["href"].split("after=")[1].split("&")[0]}


def _sql(url: str, where: str, **params: Any) -> list[int]:
    with Database(url).connect() as c:
        return sorted(
            c.execute(
                text(f"SELECT id FROM parcel t WHERE valid_to IS NULL AND {where}"), params
            ).scalars()
        )


@pytest.mark.parametrize(
    ("cql", "where"),
    [
        ("land_use = 'مسکونی' AND area_m2 > 500", "land_use = 'مسکونی' AND area_m2 > 500"),
        (
            "land_use IN ('باغ', 'تجاری') OR area_declared IS NULL",
            "(land_use IN ('باغ', 'تجاری') OR area_declared IS NULL)",
        ),
        ("area_m2 BETWEEN 200 AND 300", "round(area_m2::numeric, 2) BETWEEN 200 AND 300"),
        ("NOT (area_m2 < 1000)", "NOT (round(area_m2::numeric, 2) < 1000)"),
        ("parcel_no LIKE '1_'", "parcel_no LIKE '1_'"),
        (
            "area_m2 * 2 > area_declared + 100",
            "round(area_m2::numeric, 2) * 2 > area_declared + 100",
        ),
        (
            "S_INTERSECTS(geometry, BBOX(51.0, 35.0, 51.5, 35.8))",
            "ST_Intersects(geom, ST_MakeEnvelope(51.0, 35.0, 51.5, 35.8, 4326))",
        ),
        ("T_AFTER(valid_from, TIMESTAMP('2000-01-01T00:00:00Z'))", "valid_from > '2000-01-01'"),
        (
            "T_INTERSECTS(valid_from, INTERVAL('2000-01-01T00:00:00Z', '..'))",
            "valid_from >= '2000-01-01'",
        ),
        ("T_BEFORE(valid_from, TIMESTAMP('2000-01-01T00:00:00Z'))", "FALSE"),
    ],
)
def test_a_filter_answers_what_postgis_answers(
    client: FlaskClient, sample_url: str, cql: str, where: str
) -> None:
    expected = _sql(sample_url, where)
    assert _ids(client, cql) == expected
    if "T_" not in cql and "S_" not in cql:
        assert expected, "the case should select something"


def test_cql2_json_is_the_same_filter(client: FlaskClient) -> None:
    as_json = {
        "op": "and",
        "args": [
            {"op": "=", "args": [{"property": "land_use"}, "مسکونی"]},
            {"op": ">", "args": [{"property": "area_m2"}, 500]},
        ],
    }
    assert _ids(client, json.dumps(as_json), **{"filter-lang": "cql2-json"}) == _ids(
        client, "land_use = 'مسکونی' AND area_m2 > 500"
    )


def test_accenti_is_the_persian_match_key(client: FlaskClient, sample_url: str) -> None:
    """Typed with Arabic kaf and yeh, a ZWNJ and a space: still «مسکونی»."""
    residential = _sql(sample_url, "land_use = 'مسکونی'")
    assert residential
    assert _ids(client, "ACCENTI(land_use) = ACCENTI('مسكوني')") == residential
    assert _ids(client, "land_use = 'مسكوني'") == []  # (without ACCENTI: as written)
    assert _ids(client, "CASEI(land_use) = CASEI('مسکونی')") == residential


def test_the_sql_match_key_folds_as_the_python_one(sample_url: str) -> None:
    """`match_key_sql` is written from the same tables as `match_key`: on every name of the
    sample's lists, and on names typed with Arabic letters, marks, joiners and digits."""
    typed = [
        "گيلان‌غرب",
        "علي آباد",
        "كرمانشاه",
        "آذربايجان شرقي",
        "ده ۱۲",
        "قلعه\u200cنو",
        "مسجدسليمان",
        "أبوموسى",
        "كُلاله",
        "تـهران",
        "٣ راه",
    ]
    with Database(sample_url).connect() as c:
        names = list(c.execute(text("SELECT DISTINCT name FROM division")).scalars()) + typed
        folded = c.execute(
            text(f"SELECT {match_key_sql('n')} FROM unnest(CAST(:n AS text[])) AS u(n)"),
            {"n": names},
        ).scalars()
        differ = [(n, f) for n, f in zip(names, folded, strict=True) if f != match_key(n)]
    assert len(names) > 1000
    assert differ == []


def test_a_geometry_in_another_crs(client: FlaskClient, sample_url: str) -> None:
    """The same box given in UTM 39N (``filter-crs``) selects the same parcels."""
    with Database(sample_url).connect() as c:
        x0, y0, x1, y1 = c.execute(
            text(
                "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT"
                " ST_Transform(ST_MakeEnvelope(51.2, 35.6, 51.3, 35.7, 4326), 32639) b) x"
            )
        ).one()
    wkt = f"POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"
    in_utm = _ids(
        client,
        f"S_WITHIN(geometry, {wkt})",
        **{"filter-crs": "http://www.opengis.net/def/crs/EPSG/0/32639"},
    )
    expected = _sql(
        sample_url,
        "ST_Within(geom, ST_Transform(ST_SetSRID(ST_GeomFromText(:w), 32639), 4326))",
        w=wkt,
    )
    assert in_utm == expected


def test_divisions_filter_their_own_queryables(client: FlaskClient) -> None:
    got = client.get(
        "/collections/divisions/items",
        query_string={"filter": "agency = 'moi' AND level = 'county' AND code LIKE '23%'"},
    )
    assert got.status_code == 200, got.json
    codes = {f["properties"]["code"] for f in got.json["features"]}
    assert codes and all(c.startswith("23") and len(c) == 4 for c in codes)


@pytest.mark.parametrize(
    ("cql", "code", "said"),
    [
        ("land_use = ", "invalid_filter", "column 10"),
        ("secret_column = 1", "unknown_queryable", "land_use"),
        ("land_use > 5", "invalid_filter", "different kinds"),
        ("area_m2 LIKE '1%'", "invalid_filter", "LIKE compares text"),
        ("S_INTERSECTS(land_use, BBOX(1,2,3,4))", "invalid_filter", "geometries"),
        ("land_use", "invalid_filter", ""),
    ],
)
def test_a_bad_filter_says_what_and_where(
    client: FlaskClient, cql: str, code: str, said: str
) -> None:
    got = client.get("/collections/parcels/items", query_string={"filter": cql})
    assert got.status_code == 400, got.json
    assert got.json["code"] == code
    assert said in got.json["detail"]


def test_values_are_bound_not_written(client: FlaskClient, sample_url: str) -> None:
    assert _ids(client, "land_use = 'x; DROP TABLE parcel; --'") == []
    for sneaky in ("x' OR '1'='1", "x'); DROP TABLE parcel; --"):  # (quotes: CQL2 JSON)
        as_json = {"op": "=", "args": [{"property": "land_use"}, sneaky]}
        assert _ids(client, json.dumps(as_json), **{"filter-lang": "cql2-json"}) == []
    assert _sql(sample_url, "TRUE")  # the table is still there


def test_queryables_and_conformance(client: FlaskClient) -> None:
    got = client.get("/collections/parcels/queryables")
    assert got.status_code == 200
    assert got.content_type.startswith("application/schema+json")
    props = got.json["properties"]
    assert props["land_use"] == {"title": "کاربری", "type": "string"}
    assert props["valid_from"]["format"] == "date-time"
    assert props["geometry"] == {"title": "هندسه", "format": "geometry-multipolygon"}
    links = client.get("/collections/parcels").json["links"]
    assert any(lk["rel"].endswith("/queryables") for lk in links)
    classes = client.get("/conformance").json["conformsTo"]
    for needed in ("conf/filter", "conf/features-filter", "conf/cql2-text", "conf/basic-cql2"):
        assert any(c.endswith(needed) for c in classes)


def test_a_download_holds_exactly_the_filtered_features(client: FlaskClient) -> None:
    cql = "land_use = 'باغ' AND area_m2 > 300"
    got = client.get("/collections/parcels/items", query_string={"filter": cql, "f": "csv"})
    assert got.status_code == 200
    rows = got.data.decode("utf-8-sig").splitlines()[1:]
    assert len(rows) == len(_ids(client, cql)) > 0
    gpkg = client.get("/collections/parcels/items", query_string={"filter": cql, "f": "gpkg"})
    assert int(gpkg.headers["X-Feature-Count"]) == len(rows)


def test_properties_answers_only_those_asked(client: FlaskClient) -> None:
    got = client.get(
        "/collections/parcels/items",
        query_string={"properties": "parcel_no,land_use", "filter": "area_m2 > 500", "limit": 5},
    )
    assert got.status_code == 200, got.json
    assert all(set(f["properties"]) == {"parcel_no", "land_use"} for f in got.json["features"])
    assert got.json["features"][0]["geometry"]["type"] == "MultiPolygon"
    bad = client.get("/collections/parcels/items", query_string={"properties": "land_use,secret"})
    assert bad.status_code == 400 and bad.json["code"] == "unknown_property"


def test_filter_words_are_checked_even_without_a_filter(client: FlaskClient) -> None:
    for args in ({"filter-lang": "sql"}, {"filter-crs": "EPSG:9999"}):
        got = client.get("/collections/parcels/items", query_string=args)
        assert got.status_code == 400, (args, got.json)


def _walk_sorted(client: FlaskClient, **args: str) -> list[int]:
    """Every page of a sorted selection, followed by its next links."""
    found: list[int] = []
    matched: set[int] = set()
    url, query = "/collections/parcels/items", {**args}
    for _ in range(1000):
        got = client.get(url, query_string=query) if query else client.get(url)
        assert got.status_code == 200, got.json
        found += [f["id"] for f in got.json["features"]]
        matched.add(got.json["numberMatched"])
        following = [lk["href"] for lk in got.json["links"] if lk["rel"] == "next"]
        if not following:
            assert matched == {len(found)}  # every page, the last one too, counts them all
            return found
        url, query = following[0].removeprefix("http://localhost"), {}
    raise AssertionError("the pages never ended")


@pytest.mark.parametrize(
    ("sortby", "order"),
    [
        ("-area_declared,parcel_no", "area_declared DESC NULLS LAST, parcel_no, id"),
        ("land_use,-area_m2", "land_use NULLS LAST, round(area_m2::numeric, 2) DESC, id"),
        ("+valid_from,-upload_id", "valid_from, upload_id DESC NULLS LAST, id"),
    ],
)
def test_sorted_pages_follow_the_sort_to_the_end(
    client: FlaskClient, sample_url: str, sortby: str, order: str
) -> None:
    """Keyset paging on the sort keys and id: every feature once, in the sort's order,
    NULLs last, whatever the page size cuts through ties."""
    cql = "village_code LIKE '%1'"
    walked = _walk_sorted(client, sortby=sortby, filter=cql, limit="37")
    with Database(sample_url).connect() as c:
        expected = list(
            c.execute(
                text(
                    "SELECT id FROM parcel WHERE valid_to IS NULL AND village_code LIKE '%1'"
                    f" ORDER BY {order}"
                )
            ).scalars()
        )
    assert len(expected) > 100
    assert walked == expected


def test_a_bad_sort_or_page_key_is_refused(client: FlaskClient) -> None:
    for args in (
        {"sortby": "geometry"},
        {"sortby": "secret"},
        {"sortby": "land_use", "page": "bm90IGEga2V5"},
        {"page": "W10="},
    ):
        got = client.get("/collections/parcels/items", query_string=args)
        assert got.status_code == 400, (args, got.json)


def test_geoparquet_holds_the_filtered_features_with_their_crs(client: FlaskClient) -> None:
    """Issue 24: GeoParquet beside the other downloads, read back by geopandas (pyarrow)
    with its CRS, Persian text intact; in UTM when asked."""
    import io as _io

    import geopandas as gpd

    cql = "land_use = 'باغ' AND area_m2 > 300"
    got = client.get("/collections/parcels/items", query_string={"filter": cql, "f": "parquet"})
    assert got.status_code == 200, got.data[:300]
    assert got.content_type == "application/vnd.apache.parquet"
    frame = gpd.read_parquet(_io.BytesIO(got.data))
    assert len(frame) == len(_ids(client, cql)) > 0
    assert frame.crs.to_epsg() == 4326
    assert set(frame["land_use"]) == {"باغ"}
    assert set(frame.geometry.geom_type) == {"MultiPolygon"}
    utm = client.get(
        "/collections/parcels/items",
        query_string={
            "filter": cql,
            "f": "parquet",
            "crs": "http://www.opengis.net/def/crs/EPSG/0/32639",
        },
    )
    in_utm = gpd.read_parquet(_io.BytesIO(utm.data))
    assert in_utm.crs.to_epsg() == 32639
    assert abs(in_utm.geometry.area.sum() - frame.to_crs(32639).geometry.area.sum()) < 1.0


@pytest.mark.parametrize(
    ("cql", "bounded"),
    [
        ("S_INTERSECTS(geometry, BBOX(51.0, 35.0, 51.5, 35.8))", True),
        ("land_use = 'باغ' AND S_WITHIN(geometry, POLYGON((51 35, 52 35, 52 36, 51 35)))", True),
        ("S_CONTAINS(geometry, POINT(51.2 35.3))", True),
        ("land_use = 'باغ' OR S_INTERSECTS(geometry, BBOX(51.0, 35.0, 51.5, 35.8))", False),
        ("S_DISJOINT(geometry, BBOX(51.0, 35.0, 51.5, 35.8))", False),
        ("NOT S_INTERSECTS(geometry, BBOX(51.0, 35.0, 51.5, 35.8))", False),
        ("land_use = 'باغ'", False),
    ],
)
def test_a_filter_bounded_by_a_place_is_known(cql: str, bounded: bool) -> None:
    """A first page is counted with the page only when the filter keeps features meeting
    a place it names (as a bbox does); an OR, a NOT or S_DISJOINT may reach everywhere."""
    from geo.geodata.features.collections import get_collection
    from geo.geodata.features.cql2 import compile_filter

    assert compile_filter(get_collection("parcels"), cql).bounded is bounded


@pytest.mark.parametrize(
    ("cql", "village"),
    [
        ("village_code = '0101001' AND land_use = 'باغ'", "= "),
        ("'0101001' = village_code", "= "),
        ("village_code IN ('0101001', '0101002')", "IN ("),
        ("village_code NOT IN ('0101001')", None),
        ("village_code = '0101001' OR land_use = 'باغ'", None),
        ("village_code LIKE '0101%'", None),
    ],
)
def test_a_filter_naming_villages_is_known(cql: str, village: str | None) -> None:
    """Equality or IN on village_code, through ANDs only, prunes parcels' provinces."""
    from geo.geodata.features.collections import get_collection
    from geo.geodata.features.cql2 import compile_filter

    found = compile_filter(get_collection("parcels"), cql).village
    assert (found is None) if village is None else found.startswith(village)


def test_village_filters_answer_what_postgis_answers(client: FlaskClient, sample_url: str) -> None:
    with Database(sample_url).connect() as c:
        codes = list(
            c.execute(
                text(
                    "SELECT village_code FROM parcel WHERE valid_to IS NULL"
                    " GROUP BY 1 ORDER BY count(*) DESC LIMIT 2"
                )
            ).scalars()
        )
    one, two = codes
    assert _ids(client, f"village_code = '{one}'") == _sql(sample_url, f"village_code = '{one}'")
    both = f"village_code IN ('{one}', '{two}') AND area_m2 > 200"
    expected = _sql(sample_url, f"village_code IN ('{one}', '{two}') AND area_m2 > 200")
    assert _ids(client, both) == expected and len(expected) > 0
    page = client.get(
        "/collections/parcels/items",
        query_string={"filter": f"village_code = '{one}'", "sortby": "-area_m2", "limit": 5},
    ).json
    assert page["numberMatched"] == len(_sql(sample_url, f"village_code = '{one}'"))
