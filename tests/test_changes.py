"""The change feed never misses and never repeats a change, whatever order writers commit in."""

from __future__ import annotations

import random
import threading
import time

import pytest
from sqlalchemy import text

from geo.changes.feed import decode_cursor, read_changes
from geo.errors import InvalidParameter
from geo.platform.database import Database


def _writer(
    url: str, name: str, count: int, seed: int, done: list[int], lock: threading.Lock
) -> None:
    rng = random.Random(seed)
    for i in range(count):
        with Database(url).begin() as conn:
            ids = (
                conn.execute(
                    text(
                        "INSERT INTO change (entity_kind, entity_id, operation, cause)"
                        " SELECT 'parcel', :e || '-' || g, 'insert', '{}'"
                        " FROM generate_series(1, :n) g RETURNING id"
                    ),
                    {"e": f"{name}-{i}", "n": rng.randint(1, 3)},
                )
                .scalars()
                .all()
            )
            time.sleep(rng.uniform(0, 0.02))  # commit late, out of sequence order
        with lock:
            done.extend(ids)


@pytest.mark.parametrize("round_", range(3))
def test_a_polling_reader_sees_every_change_once_under_concurrent_writers(
    module_db_url: str, round_: int
) -> None:
    url = module_db_url
    with Database(url).connect() as conn:
        cursor = read_changes(conn, None, limit=10_000)["next"]
        while True:  # start after whatever earlier rounds left
            page = read_changes(conn, cursor, limit=10_000)
            if not page["count"]:
                break
            cursor = page["next"]
    committed: list[int] = []
    lock = threading.Lock()
    writers = [
        threading.Thread(
            target=_writer, args=(url, f"w{round_}{n}", 25, n + 10 * round_, committed, lock)
        )
        for n in range(6)
    ]
    seen: list[int] = []
    for w in writers:
        w.start()
    while any(w.is_alive() for w in writers):
        with Database(url).connect() as conn:
            page = read_changes(conn, cursor, limit=7)
        seen += [c["id"] for c in page["changes"]]
        cursor = page["next"]
    for w in writers:
        w.join()
    while True:
        with Database(url).connect() as conn:
            page = read_changes(conn, cursor, limit=50)
        if not page["count"]:
            break
        seen += [c["id"] for c in page["changes"]]
        cursor = page["next"]
    assert len(seen) == len(set(seen))  # never twice
    assert sorted(seen) == sorted(committed)  # never missed
    assert len(committed) >= 150


def test_cursor_and_filters(module_db_url: str) -> None:
    with Database(module_db_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO change (entity_kind, entity_id, operation) VALUES"
                " ('plate', 'p1', 'insert'), ('division', 'd1', 'update')"
            )
        )
    with Database(module_db_url).connect() as conn:
        plates = read_changes(conn, None, kinds=["plate"], limit=10_000)
        assert plates["count"] >= 1 and {c["entity_kind"] for c in plates["changes"]} == {"plate"}
        assert decode_cursor(plates["next"])[1] == plates["changes"][-1]["id"]
        again = read_changes(conn, plates["next"], kinds=["plate"])
        assert again["count"] == 0 and again["next"] == plates["next"]
        for bad in ({"since": "garbage!"}, {"kinds": ["parcels"]}, {"limit": 0}):
            with pytest.raises(InvalidParameter):
                read_changes(
                    conn,
                    bad.get("since"),
                    kinds=bad.get("kinds"),  # type: ignore[arg-type]
                    limit=bad.get("limit", 10),
                )  # type: ignore[arg-type]


def test_daily_digest_counts_a_jalali_day(module_db_url: str) -> None:
    from geo.changes.feed import daily_digest
    from geo.geodata.dates import jalali

    with Database(module_db_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO change (entity_kind, entity_id, operation, occurred_at)"
                " VALUES ('guide_plan', 'g1', 'insert', '2024-08-02 10:00+03:30'),"
                " ('guide_plan', 'g2', 'update', '2024-08-02 23:59+03:30'),"
                " ('guide_plan', 'g3', 'update', '2024-08-03 00:00:01+03:30')"
            )
        )
    day = jalali(__import__("datetime").date(2024, 8, 2))
    with Database(module_db_url).connect() as conn:
        digest = daily_digest(conn, day)
        assert digest["day"] == "1403-05-12" and digest["gregorian"] == "2024-08-02"
        assert digest["counts"]["guide_plan"] == {"insert": 1, "update": 1}
        assert daily_digest(conn, "۱۴۰۳/۰۵/۱۳")["counts"]["guide_plan"] == {"update": 1}
        with pytest.raises(InvalidParameter):
            daily_digest(conn, "yesterday")


def test_bbox_keeps_changes_whose_geometry_touches_it(module_db_url: str) -> None:
    geometry = '{"type": "Point", "coordinates": [51.4, 35.7]}'
    with Database(module_db_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO change (entity_kind, entity_id, operation, after) VALUES"
                " ('parcel', 'in', 'insert', jsonb_build_object('geometry', CAST(:g AS jsonb))),"
                " ('parcel', 'out', 'insert', jsonb_build_object('geometry',"
                '   \'{"type": "Point", "coordinates": [60.0, 30.0]}\'::jsonb))'
            ),
            {"g": geometry},
        )
    with Database(module_db_url).connect() as conn:
        tehran = read_changes(
            conn, None, kinds=["parcel"], limit=10_000, bbox=(51.0, 35.0, 52.0, 36.0)
        )
    assert {c["entity_id"] for c in tehran["changes"]} >= {"in"}
    assert "out" not in {c["entity_id"] for c in tehran["changes"]}


def test_a_new_edition_announces_its_events_on_the_feed(fresh_url: str) -> None:
    from geo.geodata.registry import import_edition

    old = "code,name,level,parent_code\n01,قم,province,\n0101,قم,county,01\n0102,کهک,county,01\n"
    new = (
        "code,name,level,parent_code\n01,قم,province,\n0101,قم,county,01\n0103,جعفرآباد,county,01\n"
    )
    import_edition(Database(fresh_url), "hf", "1", old.encode())
    import_edition(Database(fresh_url), "hf", "2", new.encode())
    with Database(fresh_url).connect() as conn:
        feed = read_changes(conn, None, kinds=["division"])
    ops = {(c["entity_id"], c["operation"]) for c in feed["changes"]}
    assert ("hf:0103", "insert") in ops and ("hf:0102", "delete") in ops
    assert all(c["cause"]["label"] == "2" for c in feed["changes"])


def _all_changes(client, query: str) -> list[dict]:  # type: ignore[no-untyped-def]
    out, since = [], ""
    while True:
        page = client.get(f"/changes?limit=5000&since={since}&{query}").get_json()
        out += page["changes"]
        if not page["changes"]:
            return out
        since = page["next"]


def test_within_a_village_and_within_a_county(sample_url: str) -> None:
    from shapely import from_wkb
    from shapely.geometry import shape

    from tests.helpers import client_for

    client = client_for(sample_url, "reader", "sci")
    with Database(sample_url).connect() as c:
        village = c.execute(
            text("SELECT village_code FROM parcel GROUP BY 1 ORDER BY 1 LIMIT 1")
        ).scalar_one()
        expected = c.execute(
            text("SELECT count(*) FROM change_event WHERE entity_id LIKE :p OR entity_id = :v"),
            {"p": f"hf:{village}:%", "v": f"hf:{village}"},
        ).scalar_one()
        county, boundary = c.execute(
            text(
                "SELECT d.code, ST_AsBinary(d.polygon) FROM division d JOIN edition e"
                " ON e.id = d.edition_id WHERE e.agency = 'sci' AND d.level = 'county'"
                " AND d.polygon IS NOT NULL AND EXISTS (SELECT 1 FROM parcel p"
                "  WHERE ST_Intersects(p.geom, d.polygon)) ORDER BY d.code LIMIT 1"
            )
        ).one()
    in_village = _all_changes(client, f"within=hf:{village}")
    assert len(in_village) == expected > 1
    assert {ch["entity_kind"] for ch in in_village} == {"parcel", "guide_plan"}
    in_county = _all_changes(client, f"within=sci:{county}&kinds=parcel")
    polygon = from_wkb(bytes(boundary))
    assert in_county and all(
        shape((ch["after"] or ch["before"])["geometry"]).intersects(polygon) for ch in in_county
    )
    everything = _all_changes(client, "kinds=parcel")
    outside = [ch for ch in everything if not shape(ch["after"]["geometry"]).intersects(polygon)]
    assert len(in_county) + len(outside) == len(everything)
    bad = client.get("/changes?within=county")
    assert bad.status_code == 400 and bad.get_json()["field"] == "within"


def test_the_json_written_by_postgresql_is_the_same_page(sample_url: str) -> None:
    import json
    from datetime import datetime

    from geo.changes.feed import read_changes_json

    with Database(sample_url).connect() as c:
        as_dicts = read_changes(c, None, kinds=["parcel", "guide_plan"], limit=50)
        as_text = json.loads(read_changes_json(c, None, kinds=["parcel", "guide_plan"], limit=50))
        again = read_changes(c, as_dicts["next"], limit=5)
        again_text = json.loads(read_changes_json(c, as_text["next"], limit=5))
    assert as_text["next"] == as_dicts["next"] and as_text["count"] == as_dicts["count"] == 50
    for mine, theirs in zip(as_text["changes"], as_dicts["changes"], strict=True):
        assert datetime.fromisoformat(mine.pop("occurred_at")) == theirs.pop("occurred_at")
        assert mine == theirs
    assert [c["id"] for c in again_text["changes"]] == [c["id"] for c in again["changes"]]
