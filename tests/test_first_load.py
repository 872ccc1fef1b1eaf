"""A province's first parcels build its partition whole (geo.geodata.parcels.first_load), and a
village that already has parcels is always compared, wherever they are stored."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import text

from data.generator import generate
from geo.changes.feed import read_changes
from geo.geodata.parcels import ingest as ingest_module
from geo.geodata.parcels import readers
from geo.geodata.registry import import_edition
from geo.platform.database import Database
from tests.test_parcels import _crafted, _current, _gpkg, _run


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("first") / "small"
    generate(out, "small", seed=5)
    return out


def _villages(world: Path) -> list[dict[str, str]]:
    with (world / "lists/hf_villages_1402.csv").open(encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if r["level"] == "village" and r["lat"]]


def _tables(url: str) -> set[str]:
    with Database(url).connect() as c:
        return set(
            c.execute(
                text(
                    "SELECT relname FROM pg_class"
                    " WHERE relname LIKE 'parcel\\_%' AND relkind IN ('r', 'p')"
                )
            ).scalars()
        )


def test_first_loads_and_villages_stored_elsewhere(
    module_db_url: str, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = module_db_url
    hf = (world / "lists/hf_villages_1402.csv").read_bytes()
    import_edition(Database(url), "hf", "1402", hf)
    rows = _villages(world)
    # Before MOI's list is known no province name can be matched: the village's own HF
    # province code names its partition (a first load, not the default partition).
    early, early_parcels, early_zone = _crafted(url, world, rows[0])
    assert _run(url, _gpkg(early_parcels, early_zone, tmp_path), "early.gpkg")["status"] == (
        "published"
    )
    with Database(url).connect() as c:
        early_home = c.execute(text("SELECT parcel_province('hf', :c)"), {"c": early}).scalar_one()
        homes = c.execute(
            text("SELECT DISTINCT tableoid::regclass::text FROM parcel WHERE village_code = :c"),
            {"c": early},
        ).scalars()
        assert early_home.startswith("hf") and list(homes) == [f"parcel_p{early_home}"]
    moi = sorted((world / "lists").glob("moi_divisions_*.csv"))[-1]
    import_edition(Database(url), "moi", moi.stem.split("_")[-1], moi.read_bytes())
    with Database(url).connect() as c:
        provinces = dict(
            c.execute(
                text("SELECT c, parcel_province('hf', c) FROM unnest(CAST(:c AS text[])) c"),
                {"c": [r["code"] for r in rows]},
            ).all()
        )
        # every village's province at once, as the single lookup finds it
        every = dict(c.execute(text("SELECT village, province FROM parcel_provinces('hf')")).all())
    assert {k: v for k, v in every.items() if k in provinces} == {
        k: v for k, v in provinces.items() if v or k in every
    }
    assert set(every.values()) >= {v for v in provinces.values() if v}
    early_province = provinces[early]
    row = next(r for r in rows if provinces[r["code"]] not in ("", early_province))
    province = provinces[row["code"]]

    code, parcels, zone = _crafted(url, world, row)
    # A file of several batches (its villages unknown until read): every province without a
    # partition is prepared, only the one that gets rows becomes a partition (the early
    # village's province does not: that village has parcels).
    monkeypatch.setattr(readers.LayerSource.batches, "__defaults__", (2,))
    before = _tables(url)
    # An error in the second batch: nothing is loaded, the whole file is checked and staged
    # for the report's map.
    broken = parcels.copy()
    broken.loc[3, "SHOMARE"] = None
    bad = _run(url, _gpkg(broken, zone, tmp_path), "broken.gpkg")
    assert bad["status"] == "invalid"
    assert bad["report"]["summary"]["by_code"]["missing_parcel_no"] == 1
    assert bad["report"]["summary"]["features"] == 6 and _current(url, code) == 0
    assert _tables(url) == before
    with Database(url).connect() as c:
        staged = c.execute(
            text("SELECT count(*) FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels'"),
            {"u": bad["id"]},
        ).scalar_one()
    assert staged == 6
    first = _run(url, _gpkg(parcels, zone, tmp_path), "first.gpkg")
    assert _tables(url) - before == {f"parcel_p{province.lower()}"}
    monkeypatch.undo()
    assert first["report"]["published"] == {"insert": 6, "update": 0, "delete": 0, "zone": 1}
    part = f"parcel_p{province.lower()}"
    with Database(url).connect() as c:
        homes = c.execute(
            text("SELECT DISTINCT tableoid::regclass::text FROM parcel WHERE village_code = :c"),
            {"c": code},
        ).scalars()
        assert list(homes) == [part]
        # every index of parcel has its copy here (built in bulk, adopted on attach)
        unmatched = c.execute(
            text("""
            SELECT i.indexrelid::regclass::text FROM pg_index i
            WHERE i.indrelid = 'parcel'::regclass AND NOT EXISTS (
              SELECT 1 FROM pg_inherits h JOIN pg_index ci ON ci.indexrelid = h.inhrelid
              WHERE h.inhparent = i.indexrelid AND ci.indrelid = CAST(:p AS regclass)
                AND ci.indisvalid)"""),
            {"p": part},
        ).scalars()
        assert list(unmatched) == []
        foreign_keys = c.execute(
            text(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = CAST(:p AS regclass)"
                " AND contype = 'f'"
            ),
            {"p": part},
        ).scalar_one()
        assert foreign_keys == 1  # the upload reference, cloned and checked on attach
        extents = c.execute(
            text("SELECT count(*) FROM parcel_extent WHERE village_code = :c AND province = :p"),
            {"c": code, "p": province},
        ).scalar_one()
        assert extents == 1
        # the box the stream saw is the parcels' box (to PostGIS's float boxes)
        off = c.execute(
            text("""
            SELECT ST_HausdorffDistance(e.extent, (
              SELECT ST_Envelope(ST_Collect(p.geom)) FROM parcel p WHERE p.village_code = :c))
            FROM parcel_extent e WHERE e.village_code = :c"""),
            {"c": code},
        ).scalar_one()
        assert off < 1e-5
        events = read_changes(c, None, kinds=["parcel"], upload=first["id"], limit=100)
    assert [e["entity_id"] for e in events["changes"]] == [f"hf:{code}:{n}" for n in range(1, 7)]
    assert {e["operation"] for e in events["changes"]} == {"insert"}
    assert all(e["before"] is None and e["after"]["geometry"] for e in events["changes"])

    # The province's next upload is compared with what the first load put there.
    v2 = parcels.copy()
    v2.loc[2, "KARBARI"] = "تجاری"
    second = _run(url, _gpkg(v2, zone, tmp_path), "second.gpkg")
    assert second["report"]["published"] == {"insert": 0, "update": 1, "delete": 0, "zone": 0}
    assert _current(url, code) == 6

    # The early village now has a MOI province with no partition, but parcels in its HF
    # one: it is compared with them, not loaded beside them.
    again = early_parcels.copy()
    again.loc[0, "KARBARI"] = "باغ"
    third = _run(url, _gpkg(again, early_zone, tmp_path), "early-again.gpkg")
    assert third["report"]["published"] == {"insert": 0, "update": 1, "delete": 0, "zone": 0}
    assert _current(url, early) == 6


def _registered(url: str, world: Path) -> str:
    """``url`` with the world's HF and MOI lists imported (its villages have provinces)."""
    for agency in ("hf", "moi"):
        path = sorted((world / "lists").glob(f"{agency}_*.csv"))[-1]
        import_edition(Database(url), agency, path.stem.split("_")[-1], path.read_bytes())
    return url


def test_a_first_load_dying_after_its_tables_commit_leaves_nothing(
    fresh_url: str, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _registered(fresh_url, world)
    with Database(url).connect() as c:
        provinces = dict(
            c.execute(text("SELECT village, province FROM parcel_provinces('hf')")).all()
        )
    before = _tables(url)
    row = next(
        r
        for r in _villages(world)
        if provinces.get(r["code"]) and f"parcel_p{provinces[r['code']].lower()}" not in before
    )
    code, parcels, zone = _crafted(url, world, row)
    partition = f"parcel_p{provinces[code].lower()}"
    with Database(url).begin() as c:  # what a publish that died before this one left
        c.execute(text("CREATE TABLE parcel_load_999999 (LIKE parcel)"))

    def dies(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the publish dies after the loading tables are indexed")

    monkeypatch.setattr(ingest_module, "publish_loaded", dies)
    with pytest.raises(RuntimeError):
        _run(url, _gpkg(parcels, zone, tmp_path), "dies.gpkg")
    monkeypatch.undo()
    assert _tables(url) == before  # no loading table (nor the old one), no partition
    assert _current(url, code) == 0
    with Database(url).connect() as other:  # the partitions' lock is free again
        assert other.execute(
            text("SELECT pg_try_advisory_lock(hashtext('tagsim:parcel-partitions'))")
        ).scalar_one()
        other.execute(text("SELECT pg_advisory_unlock(hashtext('tagsim:parcel-partitions'))"))
    again = _run(url, _gpkg(parcels, zone, tmp_path), "again.gpkg")
    assert again["status"] == "published"
    assert _tables(url) - before == {partition} and _current(url, code) == 6


def test_publishing_transactions_wait_for_the_disk(
    fresh_url: str, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scratch commits may be asynchronous; the transaction that publishes never is."""
    url = _registered(fresh_url, world)
    code, parcels, zone = _crafted(url, world, _villages(world)[0])
    seen: list[str] = []
    publish = ingest_module.publish_loaded

    def spy(conn, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(conn.execute(text("SHOW synchronous_commit")).scalar_one())
        return publish(conn, *args, **kwargs)

    monkeypatch.setattr(ingest_module, "publish_loaded", spy)
    first = _run(url, _gpkg(parcels, zone, tmp_path), "first.gpkg")  # a first load
    again = parcels.copy()
    again.loc[0, "KARBARI"] = "باغ"
    second = _run(url, _gpkg(again, zone, tmp_path), "second.gpkg")  # compared, one transaction
    assert first["report"]["published"]["insert"] == 6
    assert second["report"]["published"]["update"] == 1 and _current(url, code) == 6
    assert seen == ["on", "on"]
