"""Shares of splits and merges, computed by hand on two small editions of one agency's list
(populations given): a rural district split 300 / 700, two merged 500 + 1,500."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from geo.geodata.dates import parse_date
from geo.geodata.registry import import_edition
from geo.platform.database import Database
from tests.helpers import client_for

HEAD = "code,name,level,parent_code,population\n"
TOP = "01,آذربایجان,province,,\n0101,اهر,county,01,\n010101,مرکزی,district,0101,\n"
BEFORE = (
    HEAD
    + TOP
    + "01010101,گویجه بل,rural,010101,1000\n"
    + "01010102,اوچ هاچا,rural,010101,500\n"
    + "01010103,قشلاق,rural,010101,1500\n"
    + "".join(f"010101010{i},ده {i},village,01010101,{i * 100}\n" for i in range(1, 5))
    + "0101010201,علی آباد,village,01010102,200\n0101010202,حسن آباد,village,01010102,300\n"
    + "0101010301,نوده,village,01010103,700\n0101010302,کهنه ده,village,01010103,800\n"
)
AFTER = (
    HEAD
    + TOP
    + "01010101,گویجه بل,rural,010101,300\n"
    + "01010104,گویجه بل شرقی,rural,010101,700\n"
    + "01010103,قشلاق,rural,010101,2000\n"
    + "0101010101,ده 1,village,01010101,100\n0101010102,ده 2,village,01010101,200\n"
    + "0101010103,ده 3,village,01010104,300\n0101010104,ده 4,village,01010104,400\n"
    + "0101010201,علی آباد,village,01010103,200\n0101010202,حسن آباد,village,01010103,300\n"
    + "0101010301,نوده,village,01010103,700\n0101010302,کهنه ده,village,01010103,800\n"
)
R1, R3, R4, R2 = "01010101", "01010102", "01010103", "01010104"


@pytest.fixture(scope="module")
def client(module_db_url: str) -> FlaskClient:
    db = Database(module_db_url)
    for label, listed in (("1400-01-01", BEFORE), ("1401-01-01", AFTER)):
        import_edition(
            db, "hf", label, listed.encode(), published_on=parse_date(label), fmt="generic"
        )
    return client_for(module_db_url, "reader", "sci")


def _weights(answer: dict) -> dict[str, tuple[float | None, str]]:  # type: ignore[type-arg]
    return {u["code"]: (u["weight"], u["weight_basis"]) for u in answer["units"]}


def test_a_split_divides_its_source_by_the_targets_populations(client: FlaskClient) -> None:
    ahead = client.get(f"/divisions/hf/{R1}/successors").json
    assert ahead["change_type"] == "split"
    assert _weights(ahead) == {R1: (0.3, "population"), R2: (0.7, "population")}
    (split,) = [e for e in ahead["events"] if e["kind"] == "split"]
    assert {(s["to"], s["share_of_source"], s["share_of_target"]) for s in split["shares"]} == {
        (R1, 0.3, 1.0),
        (R2, 0.7, 1.0),
    }
    back = client.get(f"/divisions/hf/{R2}/predecessors").json  # all of R2 came from R1
    assert _weights(back) == {R1: (1.0, "population")}


def test_a_merge_weighs_each_source_in_the_target(client: FlaskClient) -> None:
    gone = client.get(f"/divisions/hf/{R3}")
    assert gone.status_code == 410
    assert [(u["code"], u["weight"]) for u in gone.json["successors"]] == [(R4, 1.0)]
    back = client.get(f"/divisions/hf/{R4}/predecessors").json
    assert back["change_type"] == "merge"
    assert _weights(back) == {R3: (0.25, "population"), R4: (0.75, "population")}


def test_projection_carries_the_shares_one_code_or_many(client: FlaskClient) -> None:
    one = client.get(f"/divisions/hf/{R1}/projected?to_agency=hf&at=1400-06-01").json
    assert _weights(one) == {R1: (0.3, "population"), R2: (0.7, "population")}
    batch = client.post(
        "/resolve",
        json={
            "agency": "hf",
            "codes": [R1, R3, "0101010103"],
            "as_of": "1400-06-01",
            "to_agency": "hf",
        },
    ).json
    projected = {r["code"]: r["projected"] for r in batch["results"]}
    assert projected[R1] == one["units"]
    assert [(u["code"], u["weight"]) for u in projected[R3]] == [(R4, 1.0)]
    assert [(u["code"], u["weight"], u["weight_basis"]) for u in projected["0101010103"]] == [
        ("0101010103", 1.0, "identity")  # a village moved to R2: the same village
    ]


def test_boundaries_weigh_by_area_before_population(
    client: FlaskClient, module_db_url: str
) -> None:
    """With boundaries on both sides the shares are the overlaps' areas on the ellipsoid:
    a meridian cutting a lon/lat box 30 / 70 cuts its area 30 / 70."""
    boxes = {
        ("1400-01-01", R1): (50.0, 51.0),
        ("1401-01-01", R1): (50.0, 50.3),
        ("1401-01-01", R2): (50.3, 51.0),
    }
    update = text(
        "UPDATE division d SET polygon = ST_Multi(ST_MakeEnvelope(:x0, 37, :x1, 38, 4326))"
        " FROM edition e WHERE e.id = d.edition_id AND e.agency = 'hf' AND e.label = :label"
        " AND d.code = :code"
    )
    clear = text("UPDATE division SET polygon = NULL WHERE code IN (:r1, :r2)")
    db = Database(module_db_url)
    try:
        with db.begin() as c:
            for (label, code), (x0, x1) in boxes.items():
                c.execute(update, {"label": label, "code": code, "x0": x0, "x1": x1})
        ahead = client.get(f"/divisions/hf/{R1}/successors").json
        got = _weights(ahead)
        assert {k: b for k, (_, b) in got.items()} == {R1: "area", R2: "area"}
        assert got[R1][0] == pytest.approx(0.3, abs=1e-5)
        assert got[R2][0] == pytest.approx(0.7, abs=1e-5)
    finally:
        with db.begin() as c:
            c.execute(clear, {"r1": R1, "r2": R2})
