"""Dated snapshots (issue 25): files of a dataset at a point of the change feed, served with
ETags and ranges under the dataset's policy; checked against PostGIS and read back by
geopandas and GDAL."""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyogrio
import pytest
from sqlalchemy import text

from api import create_app
from geo.access.control import create_key, set_policy
from geo.changes import snapshots
from geo.changes.feed import read_changes
from geo.changes.snapshots import find_snapshot, list_snapshots, take_snapshot
from geo.errors import GeoError
from geo.platform.database import Database
from tests.helpers import client_for, republish_village

_MOMENTS = iter(range(1, 10_000))


def _moment() -> datetime:
    """A moment of its own for each snapshot a test takes (labels are per second)."""
    return datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=next(_MOMENTS))


def _current_ids(url: str) -> set[int]:
    with Database(url).connect() as c:
        return set(c.execute(text("SELECT id FROM parcel WHERE valid_to IS NULL")).scalars())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_snapshot_holds_the_dataset_in_every_format(sample_url: str, tmp_path: Path) -> None:
    db = Database(sample_url)
    made = take_snapshot(db, "parcels", tmp_path, taken_by="test", now=_moment())
    folder = tmp_path / "parcels" / made["label"]
    names = sorted(f["name"] for f in made["files"])
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, "snapshot.json"])
    manifest = json.loads((folder / "snapshot.json").read_text())  # (the folder says itself)
    assert manifest["files"] == made["files"] and manifest["position"] == made["position"]
    ids = _current_ids(sample_url)
    assert made["features"] == len(ids) > 0
    for f in made["files"]:
        path = folder / f["name"]
        assert f["size"] == path.stat().st_size and f["sha256"] == _sha256(path)
    parquet = gpd.read_parquet(folder / "parcels.parquet")
    assert parquet.crs.to_epsg() == 4326 and set(parquet["fid"]) == ids
    gpkg = pyogrio.read_dataframe(folder / "parcels.gpkg", fid_as_index=True)
    assert len(gpkg) == len(ids) and "مسکونی" in set(gpkg["land_use"])
    assert len(pyogrio.read_dataframe(folder / "parcels.fgb")) == len(ids)
    rows = (folder / "parcels.csv").read_text(encoding="utf-8-sig").splitlines()
    assert len(rows) == len(ids) + 1
    assert not [p for p in (tmp_path / "parcels").iterdir() if p.name.startswith(".staging")]
    _tiles_are_the_served_ones(sample_url, folder / "parcels.pmtiles", "parcels", 12, 15)


def _mvt_ids(data: bytes, layer: str, z: int, x: int, y: int) -> set[int]:
    """The feature ids of a vector tile, as GDAL reads it."""
    if not data:
        return set()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{y}.mvt"
        path.write_bytes(data)
        return set(pyogrio.read_dataframe(path, layer=layer, X=x, Y=y, Z=z)["mvt_id"])


def _tiles_are_the_served_ones(url: str, path: Path, layer: str, low: int, high: int) -> None:
    """The archive, read with the PMTiles reader: its zooms, its layer, and in each of a
    sample of its tiles exactly the features of the service's own tile."""
    from pmtiles.reader import MmapSource, Reader, all_tiles
    from pmtiles.tile import Compression, TileType

    client = client_for(url, "reader", "sci")
    with path.open("rb") as f:
        reader = Reader(MmapSource(f))
        header = reader.header()
        assert (header["min_zoom"], header["max_zoom"]) == (low, high)
        assert header["tile_type"] == TileType.MVT
        assert header["tile_compression"] == Compression.GZIP
        assert reader.metadata()["vector_layers"][0]["id"] == layer
        tiles = sorted(all_tiles(reader.get_bytes))
    assert tiles and {z for (z, _, _), _ in tiles} == set(range(low, high + 1))
    for (z, x, y), data in tiles[:: max(1, len(tiles) // 12)]:
        served = client.get(f"/tiles/{layer}/{z}/{x}/{y}.mvt")
        mine = _mvt_ids(gzip.decompress(data), layer, z, x, y)
        assert mine == _mvt_ids(served.data, layer, z, x, y) and mine, (z, x, y)


def test_the_feed_continues_exactly_where_the_snapshot_stands(
    sample_url: str, tmp_path: Path
) -> None:
    """The changes after a snapshot's position are the ones it does not hold: none at
    first; after a publish, that publish's, each meeting the snapshot's state as its
    ``before``."""
    db = Database(sample_url)
    made = take_snapshot(
        db, "parcels", tmp_path, formats=["parquet"], taken_by="test", now=_moment()
    )
    with db.connect() as c:
        assert read_changes(c, made["position"], kinds=["parcel"])["count"] == 0
    held = gpd.read_parquet(tmp_path / "parcels" / made["label"] / "parcels.parquet")
    state = {
        f"{a}:{v}:{n}": use
        for a, v, n, use in zip(
            held["village_agency"],
            held["village_code"],
            held["parcel_no"],
            held["land_use"],
            strict=True,
        )
    }
    village, changed, removed, _ = republish_village(sample_url)
    with db.connect() as c:
        after = read_changes(c, made["position"], kinds=["parcel"], limit=10_000)["changes"]
    by_key = {c["entity_id"]: c for c in after}
    assert by_key and all(k.split(":")[1] == village for k in by_key)
    for key, change in by_key.items():
        if change["operation"] == "insert":
            assert key not in state
        else:  # an update or a removal starts from what the snapshot holds
            assert state[key] == change["before"]["land_use"], key
    operations = {k.rsplit(":", 1)[1]: c["operation"] for k, c in by_key.items()}
    assert operations[changed] == "update" and operations[removed] == "delete"


class _Closing:
    """A test client whose answers are read whole and closed (files are streamed)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def get(self, url: str, **kwargs: Any) -> Any:
        answer = self.client.get(url, **kwargs)
        answer.get_data()
        answer.close()
        return answer


def test_downloads_serve_a_file_with_its_etag_ranges_and_policy(
    sample_url: str, tmp_path: Path
) -> None:
    db = Database(sample_url)
    made = take_snapshot(
        db, "plates", tmp_path, formats=["gpkg", "csv"], taken_by="test", now=_moment()
    )
    with db.begin() as c:
        reader = create_key(c, "sci", "reader", "downloads")["key"]
        outsider = create_key(c, "hf", "reader", "downloads")["key"]
    app = create_app({"DATABASE_URL": sample_url, "DOWNLOADS_DIR": str(tmp_path)})
    client = _Closing(app.test_client())
    auth = {"Authorization": f"Bearer {reader}"}
    index = client.get("/downloads", headers=auth).json["datasets"]
    plates = next(d for d in index if d["id"] == "plates")
    listed = plates["snapshots"][0]
    assert listed["label"] == made["label"] and listed["position"] == made["position"]
    gpkg = next(f for f in listed["files"] if f["name"] == "plates.gpkg")
    url = gpkg["href"].removeprefix("http://localhost")
    assert url == f"/downloads/plates/{made['label']}/plates.gpkg"
    # the collection links its latest snapshot's files, with their lengths
    links = client.get("/collections/plates", headers=auth).json["links"]
    enclosures = {x["href"]: x for x in links if x["rel"] == "enclosure" and "length" in x}
    assert enclosures[gpkg["href"]]["length"] == gpkg["size"]
    assert enclosures[gpkg["href"]]["type"] == "application/geopackage+sqlite3"
    whole = client.get("/downloads/plates/latest/plates.gpkg", headers=auth)
    assert whole.status_code == 200 and whole.headers["ETag"] == f'"{gpkg["sha256"]}"'
    assert hashlib.sha256(whole.data).hexdigest() == gpkg["sha256"]
    assert whole.headers["Cache-Control"] == "private, no-cache"
    by_label = client.get(url, headers=auth)
    assert "immutable" in by_label.headers["Cache-Control"]
    day = made["label"][:10]
    assert client.get(f"/downloads/plates/{day}/plates.gpkg", headers=auth).data == whole.data
    part = client.get(url, headers={**auth, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.data == whole.data[100:200]
    again = client.get(url, headers={**auth, "If-None-Match": f'"{gpkg["sha256"]}"'})
    assert again.status_code == 304
    for missing, code in (
        ("/downloads/plates/latest/plates.fgb", "unknown_file"),
        ("/downloads/plates/1999-01-01/plates.gpkg", "unknown_snapshot"),
        ("/downloads/nothing/latest/nothing.gpkg", "unknown_collection"),
    ):
        got = client.get(missing, headers=auth)
        assert got.status_code == 404 and got.json["code"] == code, missing
    assert client.get(url).status_code == 401
    with db.begin() as c:
        set_policy(c, "plates", "all_except", ["hf"], public=False)
    try:
        assert client.get(url, headers={"Authorization": f"Bearer {outsider}"}).status_code == 403
    finally:
        with db.begin() as c:
            set_policy(c, "plates", "all", [], public=False)
    with db.connect() as c:
        audited = c.execute(
            text(
                "SELECT count(*) FROM audit WHERE endpoint = 'downloads.get_download'"
                " AND status = 200 AND row_count = :n"
            ),
            {"n": made["features"]},
        ).scalar_one()
        ranges = c.execute(  # (a range is an access without a count)
            text(
                "SELECT count(*) FROM audit WHERE endpoint = 'downloads.get_download'"
                " AND status = 206 AND row_count IS NULL"
            )
        ).scalar_one()
    assert audited >= 1 and ranges >= 1


def test_old_snapshots_go_by_the_retention_rule(sample_url: str, tmp_path: Path) -> None:
    db = Database(sample_url)
    start = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    labels = [
        take_snapshot(
            db, "guide_plans", tmp_path, formats=["csv"], keep=2, now=start + timedelta(days=d)
        )["label"]
        for d in range(3)
    ]
    kept = [s["label"] for s in list_snapshots(db, "guide_plans")]
    assert kept == labels[:0:-1]  # the two newest, newest first
    assert sorted(p.name for p in (tmp_path / "guide_plans").iterdir()) == sorted(kept)
    assert find_snapshot(db, "guide_plans", "2026-12-02")["label"] == labels[1]
    with pytest.raises(GeoError) as refused:
        take_snapshot(db, "guide_plans", tmp_path, formats=["csv"], now=start + timedelta(days=2))
    assert refused.value.code == "snapshot_exists"


def test_a_failed_snapshot_leaves_nothing(
    sample_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(sample_url)
    before = len(list_snapshots(db, "divisions"))

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(snapshots, "write_file", broken)
    with pytest.raises(OSError):
        take_snapshot(db, "divisions", tmp_path, formats=["csv", "gpkg"])
    assert len(list_snapshots(db, "divisions")) == before
    assert list((tmp_path / "divisions").iterdir()) == []
    with pytest.raises(GeoError) as bad:
        take_snapshot(db, "nothing", tmp_path)
    assert bad.value.code == "unknown_dataset"


def test_the_daily_run_takes_every_dataset(
    sample_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers' 03:00 (Tehran) tick: one snapshot per dataset, labelled by the tick."""
    from geo.platform import jobs

    monkeypatch.setattr(jobs, "_worker_db", Database(sample_url))
    monkeypatch.setenv("TAGSIM_DOWNLOADS_DIR", str(tmp_path))
    tick = datetime(2026, 12, 9, 23, 30, tzinfo=UTC)  # 03:00 on 10 December in Tehran
    snapshots.scheduled_snapshots(None, int(tick.timestamp()))
    for dataset in ("parcels", "guide_plans", "plates", "divisions"):
        made = find_snapshot(Database(sample_url), dataset, "2026-12-10")
        assert made["label"] == "2026-12-10T030000" and made["taken_by"] == "schedule"
        assert (tmp_path / dataset / made["label"] / f"{dataset}.parquet").is_file()
        tiled = (tmp_path / dataset / made["label"] / f"{dataset}.pmtiles").is_file()
        assert tiled == (dataset in ("parcels", "divisions"))
    divisions = find_snapshot(Database(sample_url), "divisions", "2026-12-10")["label"]
    archive = tmp_path / "divisions" / divisions / "divisions.pmtiles"
    _tiles_are_the_served_ones(sample_url, archive, "divisions", 0, 10)


def test_a_crosswalk_release_is_snapshotted_once_as_csv_and_xlsx(
    sample_url: str, tmp_path: Path
) -> None:
    """Each crosswalk release as a snapshot: the CSV is the release's export byte for byte,
    the XLSX holds the same rows; served under the crosswalk's policy; the daily run takes
    a release once."""
    from openpyxl import load_workbook

    from crosswalk.build import build, start_run
    from crosswalk.release import publish

    db = Database(sample_url)
    with db.connect() as c:
        released = c.execute(text("SELECT count(*) FROM crosswalk_release")).scalar_one()
    if not released:
        with pytest.raises(GeoError) as caught:
            take_snapshot(db, "crosswalk", tmp_path, now=_moment())
        assert caught.value.code == "no_release" and not snapshots.new_release(db)
    build(db, start_run(db))
    with db.begin() as c:
        release = publish(c, by="test")["number"]
    assert snapshots.new_release(db)
    made = take_snapshot(db, "crosswalk", tmp_path, now=_moment())
    assert not snapshots.new_release(db)  # (the daily run will not take it again)
    files = {f["name"]: f for f in made["files"]}
    assert set(files) == {"crosswalk.csv", "crosswalk.xlsx"}
    assert {f["release"] for f in files.values()} == {release}
    folder = tmp_path / "crosswalk" / made["label"]
    client = client_for(sample_url, "reader", "sci", DOWNLOADS_DIR=str(tmp_path))
    export = client.get(f"/crosswalk/export.csv?release={release}")
    assert (folder / "crosswalk.csv").read_bytes() == export.data
    assert made["features"] == export.data.decode("utf-8-sig").count("\r\n") - 1 > 0
    served = client.get("/downloads/crosswalk/latest/crosswalk.xlsx")
    assert served.status_code == 200
    assert hashlib.sha256(served.data).hexdigest() == files["crosswalk.xlsx"]["sha256"]
    served.close()
    book = load_workbook(folder / "crosswalk.xlsx", read_only=True)
    try:
        assert sum(1 for _ in book["crosswalk"].iter_rows()) == made["features"] + 1
    finally:
        book.close()
    index = client.get("/downloads").json["datasets"]
    listed = next(d for d in index if d["id"] == "crosswalk")["snapshots"][0]
    assert listed["label"] == made["label"] and "crs" not in listed
    with db.begin() as c:
        set_policy(c, "crosswalk", "all_except", ["sci"], public=False)
    try:
        refused = client.get("/downloads/crosswalk/latest/crosswalk.csv")
        assert refused.status_code == 403
    finally:
        with db.begin() as c:
            set_policy(c, "crosswalk", "all", [], public=False)


def test_an_admin_asks_for_a_snapshot_and_a_worker_takes_it(
    sample_url: str, tmp_path: Path
) -> None:
    from geo.platform.jobs import run_worker

    db = Database(sample_url)
    with db.begin() as c:
        admin = create_key(c, "hf", "admin", "snapshot admin")["key"]
        reader = create_key(c, "hf", "reader", "snapshot reader")["key"]
    client = create_app({"DATABASE_URL": sample_url, "DOWNLOADS_DIR": str(tmp_path)}).test_client()
    as_admin = {"Authorization": f"Bearer {admin}"}
    refused = client.post("/downloads/plates", headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403 and refused.json["code"] == "role_too_low"
    wrong = client.post("/downloads/plates", json={"formats": ["xlsx"]}, headers=as_admin)
    assert wrong.status_code == 422 and wrong.json["code"] == "format_not_offered"
    unknown = client.post("/downloads/plates", json={"formats": ["shp"]}, headers=as_admin)
    assert unknown.status_code == 400
    asked = client.post("/downloads/plates", json={"formats": ["gpkg"]}, headers=as_admin)
    assert asked.status_code == 202
    job = asked.json["href"].removeprefix("http://localhost")
    assert client.get(job, headers=as_admin).json["status"] == "todo"
    run_worker(db, wait=False)
    done = client.get(job, headers=as_admin).json
    assert done["status"] == "succeeded", done
    made = find_snapshot(db, "plates", done["result"]["label"])
    assert [f["name"] for f in made["files"]] == ["plates.gpkg"]
    assert made["taken_by"] == "hf admin"
    assert (tmp_path / "plates" / made["label"] / "plates.gpkg").is_file()
