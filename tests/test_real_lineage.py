"""Real lists, real changes: SCI 1399 (Gilan) and MOI 1401 (the committed sample).

Between them the district of Khomam in Rasht county (SCI ``010501``) became a county of its
own (MOI ``1826``): its territory is now the new county's central district (MOI ``182610``)
and its rural districts moved with it (e.g. «چاپارخانه», SCI ``0105010002``, MOI
``18261010`` «چاپار خانه»). A code of 1399 asked for in 1401 terms must lead there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from crosswalk import build, start_run
from geo.geodata.dates import parse_date
from geo.geodata.registry import import_edition
from geo.platform.database import Database
from tests.helpers import client_for

HERE = Path(__file__).resolve().parent
MOI = HERE.parent / "data" / "sample" / "moi_divisions_1401-08-25.csv"
SCI = HERE / "data" / "sci_geography_1399_gilan.csv"


@pytest.fixture(scope="module")
def client(module_db_url: str) -> FlaskClient:
    db = Database(module_db_url)
    import_edition(db, "moi", "1401-08-25", MOI.read_bytes(), published_on=parse_date("1401-08-25"))
    import_edition(db, "sci", "1399", SCI.read_bytes(), published_on=parse_date("1399-05-01"))
    build(db, start_run(db, hf=None))
    return client_for(module_db_url, "admin", "moi")


def _projected(client: FlaskClient, code: str) -> list[tuple[str, str, str]]:
    got = client.get(f"/divisions/sci/{code}/projected?to_agency=moi")
    assert got.status_code == 200, got.json
    return [(u["code"], u["name"], u["via"][0]["relation"]) for u in got.json["units"]]


def test_a_rural_district_that_moved_to_a_new_county_is_found_there(client: FlaskClient) -> None:
    assert _projected(client, "0105010002") == [("18261010", "چاپار خانه", "same")]
    unit = client.get("/divisions/moi/18261010").json
    assert [p["code"] for p in unit["parents"]] == ["18", "1826", "182610"]


def test_a_district_that_became_a_county_leads_to_its_central_district_once_confirmed(
    client: FlaskClient,
) -> None:
    """Names differ (خمام / مرکزی): the matcher proposes the link for review, never
    accepts it alone; until a person confirms, the projection says it reached nothing."""
    review = client.get("/crosswalk/review?limit=500").json["links"]
    proposed = [r for r in review if r.get("sci_code") == "010501"]
    assert [r["moi_code"] for r in proposed] == ["182610"]
    assert _projected(client, "010501") == []
    decided = client.post(
        "/crosswalk/decisions",
        json={
            "level": "district",
            "moi_code": "182610",
            "sci_code": "010501",
            "decision": "confirm",
        },
    )
    assert decided.status_code in (200, 201), decided.json
    assert _projected(client, "010501") == [("182610", "مرکزی", "same")]
    county = client.get("/divisions/moi/182610").json["parents"][-1]
    assert (county["code"], county["name"]) == ("1826", "خمام")


def test_a_table_keyed_by_sci_1399_codes_converts_to_moi_1401(client: FlaskClient) -> None:
    """A census of Khomam's rural districts, by SCI 1399 codes, re-keyed to MOI 1401."""
    import io

    table = "کد,جمعیت\n0105010001,1200\n0105010002,800\n0105010004,500\n".encode()
    got = client.post(
        "/convert",
        data={
            "agency": "sci",
            "code": "کد",
            "counts": "جمعیت",
            "to_agency": "moi",
            "format": "json",
            "file": (io.BytesIO(table), "census.csv"),
        },
    )
    assert got.status_code == 200, got.json
    rows = {r["code"]: r["counts"]["جمعیت"] for r in got.json["rows"]}
    assert sum(rows.values()) + got.json["summary"]["totals"]["جمعیت"]["refused"] == 2500
    # all in the new county: two in its central district, «چوکام» in its other district
    assert rows == {"18261010": 800, "18261011": 500, "18261110": 1200}, got.json["refused"]
