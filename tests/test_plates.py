"""The Registration Organization's plate notices: versions, change events, idempotence,
all-or-nothing refusal, CRSs, and SCI pulling the changed plates and asking their coverage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import shapely
from click.testing import CliRunner
from shapely.geometry import box, mapping
from sqlalchemy import text

from api.cli import main
from geo.geodata.crs import transformer
from geo.platform.database import Database
from tests.helpers import client_for

PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


def _square(lon: float, lat: float, size: float = 0.0004) -> str:
    return box(lon, lat, lon + size, lat + size).wkt


def _csv(rows: list[tuple[str, str, str, str, str]]) -> bytes:
    lines = ["unit,main,sub,wkt,action"]
    lines += [f'{u},{m},{s},"{w}",{a}' for u, m, s, w, a in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _plates(url: str, unit: str) -> dict[str, tuple[int, bool]]:
    with Database(url).connect() as c:
        rows = c.execute(
            text(
                "SELECT main_plate || '/' || sub_plate, count(*), bool_or(valid_to IS NULL)"
                " FROM plate WHERE registration_unit = :u GROUP BY 1"
            ),
            {"u": unit},
        ).all()
    return {k: (n, current) for k, n, current in rows}


def _changes(url: str) -> int:
    with Database(url).connect() as c:
        return c.execute(text("SELECT count(*) FROM change WHERE entity_kind = 'plate'")).scalar()


def _post(client, raw: bytes, name: str = "n.csv", **form: str):  # type: ignore[no-untyped-def]
    from io import BytesIO

    return client.post(
        "/plates/notices",
        data={"file": (BytesIO(raw), name), **form},
        content_type="multipart/form-data",
    )


def test_a_notice_makes_versions_and_changes_and_twice_changes_nothing(fresh_url: str) -> None:
    uploader = client_for(fresh_url, "uploader", "registration")
    first = _csv(
        [
            ("۱۲", "۳۴۵", "1", _square(51.40, 35.70), ""),
            ("12", "345", "2", _square(51.41, 35.70), "upsert"),
            ("12", "346", "0", _square(51.42, 35.70), ""),
        ]
    )
    answer = _post(uploader, first, "1403-05-12.csv")
    assert answer.status_code == 200, answer.get_json()
    assert (answer.get_json()["insert"], answer.get_json()["unchanged"]) == (3, 0)
    assert _plates(fresh_url, "12") == {"345/1": (1, True), "345/2": (1, True), "346/0": (1, True)}
    assert _changes(fresh_url) == 3
    again = _post(uploader, first, "1403-05-12.csv").get_json()
    assert (again["insert"], again["update"], again["delete"], again["unchanged"]) == (0, 0, 0, 3)
    assert _changes(fresh_url) == 3
    second = _csv(
        [
            ("12", "345", "1", _square(51.40, 35.70, 0.0005), ""),  # changed shape
            ("12", "345", "2", "", "delete"),
            ("12", "346", "0", _square(51.42, 35.70), ""),  # same
            ("12", "347", "5", _square(51.43, 35.70), ""),  # new
        ]
    )
    counts = _post(uploader, second, "1403-05-13.csv").get_json()
    assert (counts["insert"], counts["update"], counts["delete"], counts["unchanged"]) == (
        1,
        1,
        1,
        1,
    )
    assert _plates(fresh_url, "12") == {
        "345/1": (2, True),
        "345/2": (1, False),
        "346/0": (1, True),
        "347/5": (1, True),
    }
    reader = client_for(fresh_url, "reader", "sci")
    feed = reader.get("/changes?kinds=plate&limit=100").get_json()["changes"]
    assert {(c["entity_id"], c["operation"]) for c in feed[-3:]} == {
        ("12/345/1", "update"),
        ("12/345/2", "delete"),
        ("12/347/5", "insert"),
    }
    update = next(c for c in feed if c["operation"] == "update")
    assert update["before"]["geometry"] != update["after"]["geometry"]
    assert update["cause"]["notice"] == "1403-05-13.csv"
    with Database(fresh_url).connect() as c:
        gone = c.execute(
            text("SELECT id FROM plate WHERE main_plate = '345' AND sub_plate = '2'")
        ).scalar_one()
    assert reader.get(f"/collections/plates/items/{gone}").status_code == 410


def test_one_bad_row_refuses_the_whole_notice(fresh_url: str) -> None:
    uploader = client_for(fresh_url, "uploader", "registration")
    bad = _csv(
        [
            ("7", "1", "1", _square(51.40, 35.70), ""),
            ("7", "1", "2", "POLYGON((51.4 35.7, 51.5 35.8, 51.5 35.7, 51.4 35.8, 51.4 35.7))", ""),
            ("7", "x", "3", _square(51.41, 35.70), ""),
            ("7", "1", "1", _square(51.42, 35.70), ""),
            ("7", "1", "4", _square(35.70, 51.40), ""),
        ]
    )
    answer = _post(uploader, bad)
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["code"] == "invalid_notice"
    assert {(p["line"], p["code"]) for p in body["problems"]} == {
        (3, "invalid_geometry"),
        (4, "invalid_parameter"),
        (5, "duplicate_plate"),
        (6, "outside_iran"),
    }
    assert _plates(fresh_url, "7") == {} and _changes(fresh_url) == 0
    assert _post(uploader, b"unit,main\n1,2\n").get_json()["code"] == "invalid_notice"
    reader = client_for(fresh_url, "reader", "sci")
    assert _post(reader, bad).status_code == 403  # readers do not write plates


def test_geojson_notice_in_utm_then_sci_pulls_and_asks_coverage(fresh_url: str) -> None:
    to_utm = transformer(4326, 32639)
    lonlat = box(51.40, 35.70, 51.4006, 35.7005)
    utm = shapely.transform(lonlat, lambda xy: np.column_stack(to_utm.transform(*xy.T)))
    notice = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"registration_unit": "9", "main_plate": "100", "sub_plate": "7"},
                "geometry": mapping(utm),
            }
        ],
    }
    uploader = client_for(fresh_url, "uploader", "registration")
    answer = _post(uploader, json.dumps(notice).encode(), "n.geojson", crs="EPSG:32639")
    assert answer.status_code == 200 and answer.get_json()["insert"] == 1
    reader = client_for(fresh_url, "reader", "sci")
    change = reader.get("/changes?kinds=plate").get_json()["changes"][0]
    stored = shapely.geometry.shape(change["after"]["geometry"])
    assert stored.hausdorff_distance(lonlat) < 1e-6
    unit, main_plate, sub = change["entity_id"].split("/")
    coverage = reader.get(f"/plates/{unit}/{main_plate.translate(PERSIAN)}/{sub}/coverage")
    assert coverage.status_code == 200
    assert abs(coverage.get_json()["plot"]["area_m2"] - 54.2 * 55.5) / (54.2 * 55.5) < 0.02


def test_the_command_line_imports_a_notice(fresh_url: str, tmp_path: Path) -> None:
    path = tmp_path / "notice.csv"
    path.write_bytes(_csv([("3", "20", "1", _square(51.40, 35.70), "")]))
    env = {"TAGSIM_DATABASE_URL": fresh_url}
    done = CliRunner().invoke(main, ["plates", "import", str(path)], env=env)
    assert done.exit_code == 0, done.output
    assert "1 new" in done.output
    again = CliRunner().invoke(main, ["plates", "import", str(path)], env=env)
    assert "1 unchanged" in again.output
    bad = tmp_path / "bad.csv"
    bad.write_bytes(_csv([("3", "20", "2", "POINT(51 35)", "")]))
    refused = CliRunner().invoke(main, ["plates", "import", str(bad)], env=env)
    assert refused.exit_code == 1 and "wrong_geometry_type" in refused.output


def test_a_notice_that_is_not_csv_is_a_422_not_a_500(fresh_url: str) -> None:
    """Found by schemathesis once the notice's crs was declared: a bare carriage return in
    an unquoted field made the CSV reader raise, and the request answered 500."""
    client = client_for(fresh_url, "uploader", "registration")
    for raw in (b'unit,main,sub,wkt\n1,2,3,"POLYGON((0 0\x00', b"unit,main,sub,wkt\n1,2\r3,4,x\n"):
        answer = client.post(
            "/plates/notices", data=raw, content_type="text/csv", headers={"X-Test": "1"}
        )
        assert answer.status_code in (400, 422), answer.get_data(as_text=True)[:300]
