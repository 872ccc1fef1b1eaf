"""The replication client (issue 25): a snapshot and the change files applied in order give a
copy equal to the service feature by feature — geometry bytes and every property — also
after being killed mid-apply and resumed; a missing, repeated or misplaced file is refused."""

from __future__ import annotations

import csv
import gzip
import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pyarrow as pa
import pyogrio
import pytest
import shapely
from shapely import affinity
from sqlalchemy import text

from data.sample import SAMPLE_UPLOAD
from geo.access.control import create_key
from geo.changes import replica_targets
from geo.changes.change_files import state_name, write_change_file
from geo.changes.plate_notices import apply_notice
from geo.changes.replica import ReplicaRefused, init_replica, read_replica, update_replica
from geo.changes.replica_sources import FolderSource, HttpSource
from geo.changes.snapshots import take_snapshot
from geo.errors import GeoError
from geo.geodata.parcels.ingest import IngestOptions, create_upload, process_upload
from geo.geodata.registry import import_edition
from geo.platform.config import settings
from geo.platform.database import Database
from tests.live import live_server

CHANGES = 200  # parcel and plate changes made over the days
DAYS = 4


class World:
    """The sample, changed at random: village uploads, plate notices, new HF editions."""

    def __init__(self, url: str, seed: int) -> None:
        self.url, self.db = url, Database(url)
        self.rng = random.Random(seed)
        truth = settings().sample_dir / "truth" / "parcels.gpkg"
        parcels = gpd.read_file(truth, layer="parcels")
        zones = gpd.read_file(truth, layer="zones")
        with (truth.parent / "parcel_files.csv").open(encoding="utf-8") as f:
            clean = {row["hf_code"] for row in csv.DictReader(f) if not row["defects"]}
        sizes = parcels[parcels["CODE_HF"].isin(clean)].groupby("CODE_HF").size()
        small = sizes.sort_values().index[:6]
        self.villages = {
            code: parcels[parcels["CODE_HF"] == code].reset_index(drop=True) for code in small
        }
        self.zones = {code: zones[zones["CODE_HF"] == code] for code in small}
        self.removed: dict[str, list[Any]] = {code: [] for code in small}
        self.edition = 0
        self.hf_list = (settings().sample_dir / "lists" / "hf_villages_1402.csv").read_text()

    def upload(self) -> None:
        """A new version of one village: land uses changed, a parcel removed, one reshaped,
        one that was removed before put back."""
        code = self.rng.choice(sorted(self.villages))
        frame = self.villages[code].copy()
        rows = list(frame.index)
        for i in self.rng.sample(rows, 3):
            frame.loc[i, "KARBARI"] = self.rng.choice(["مسکونی", "تجاری", "باغ", "آموزشی"])
        reshaped = self.rng.choice(rows)
        frame.loc[reshaped, "geometry"] = affinity.scale(
            frame.loc[reshaped, "geometry"], 0.97, 0.97
        )
        if self.removed[code] and self.rng.random() < 0.5:
            back = self.removed[code].pop()
            frame = gpd.GeoDataFrame(
                [*frame.to_dict("records"), back], crs=frame.crs, geometry="geometry"
            )
        gone = self.rng.choice([i for i in frame.index if i != reshaped])
        self.removed[code].append(frame.loc[gone].to_dict())
        frame = frame.drop(index=gone).reset_index(drop=True)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "v.gpkg"
            frame.to_file(path, layer="parcels", driver="GPKG")
            self.zones[code].to_file(path, layer="zones", driver="GPKG")
            upload = create_upload(self.db, path.read_bytes(), SAMPLE_UPLOAD, IngestOptions())
        state = process_upload(self.db, upload)
        assert state["status"] == "published", json.dumps(state["report"], ensure_ascii=False)[
            :3000
        ]
        self.villages[code] = frame

    def notice(self) -> None:
        """Plates of the sample moved or removed, new plates of a unit of our own."""
        with self.db.connect() as c:
            current = c.execute(
                text(
                    "SELECT registration_unit, main_plate, sub_plate, ST_AsText(geom) FROM plate"
                    " WHERE valid_to IS NULL ORDER BY 1, 2, 3"
                )
            ).all()
        lines = ["unit,main,sub,wkt,action"]
        for unit, main, sub, wkt in self.rng.sample(current, 4):
            if self.rng.random() < 0.3:
                lines.append(f"{unit},{main},{sub},,delete")
            else:
                moved = affinity.translate(
                    shapely.from_wkt(wkt), self.rng.uniform(-1e-5, 1e-5), 1e-6
                )
                lines.append(f'{unit},{main},{sub},"{moved.wkt}",upsert')
        for _ in range(3):
            main = self.rng.randint(1, 400)
            x, y = 51.3 + main * 1e-4, 35.6 + self.rng.randint(0, 50) * 1e-4
            shape = shapely.box(x, y, x + 6e-5 * self.rng.uniform(0.5, 1.5), y + 5e-5)
            lines.append(f'8801,{main},0,"{shape.wkt}",upsert')
        apply_notice(self.db, ("\n".join(lines) + "\n").encode(), f"notice-{self.rng.random()}")

    def new_edition(self) -> None:
        """A new HF list: one village renamed, one's population changed."""
        self.edition += 1
        rows = self.hf_list.splitlines()
        villages = [i for i, r in enumerate(rows) if ",village," in r]
        i = self.rng.choice(villages)
        cells = rows[i].split(",")
        cells[1] = cells[1] + " نو"
        rows[i] = ",".join(cells)
        self.hf_list = "\n".join(rows) + "\n"
        import_edition(self.db, "hf", f"1402-r{self.edition}", self.hf_list.encode())

    def changes_so_far(self, since: str) -> int:
        with self.db.connect() as c:
            return c.execute(
                text(
                    "SELECT count(*) FROM change_event WHERE entity_kind IN ('parcel', 'plate')"
                    " AND (txid, id, part) > (CAST(:t AS text)::xid8, :i, :p)"
                ),
                dict(zip("tip", _cursor(since), strict=True)),
            ).scalar_one()


def _cursor(position: str) -> tuple[str, int, int]:
    from geo.changes.feed import decode_cursor

    txid, change_id, part = decode_cursor(position)
    return str(txid), change_id, part


def _table(path: Path, layer: str) -> pa.Table:
    """A GeoPackage layer as read back by GDAL, rows in fid order."""
    table = pyogrio.read_arrow(path, layer=layer, return_fids=True)[1]
    return table.sort_by("fid")


def _the_same(copy: Path, service: Path, layer: str, url: str) -> None:
    """The copy equals the service's snapshot of now, column for column, and its geometry
    bytes are PostGIS's own."""
    mine, theirs = _table(copy, layer), _table(service, layer)
    assert mine.num_rows == theirs.num_rows > 0
    assert mine.schema.names == theirs.schema.names
    for name in theirs.schema.names:
        assert mine[name].to_pylist() == theirs[name].to_pylist(), name
    table = "parcel" if layer == "parcels" else "plate"
    with Database(url).connect() as c:
        stored = dict(
            c.execute(
                text(f"SELECT id, ST_AsBinary(geom) FROM {table} WHERE valid_to IS NULL")
            ).all()
        )
    geometry = theirs.schema.names[-1]
    copied = dict(zip(mine["fid"].to_pylist(), mine[geometry].to_pylist(), strict=True))
    assert copied.keys() == stored.keys()
    assert all(shapely.to_wkb(shapely.from_wkb(copied[i])) == bytes(stored[i]) for i in stored)


@pytest.fixture(scope="module")
def world(sample_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Snapshots, then 200 parcel and plate changes over four days (a daily change file a
    day, editions between), then the snapshots of the end."""
    folder = tmp_path_factory.mktemp("downloads")
    db = Database(sample_url)
    start = {
        d: take_snapshot(db, d, folder, formats=["gpkg", "parquet"]) for d in ("parcels", "plates")
    }
    # files of the days before this test's snapshots (another test's) are skipped by init
    write_change_file(db, folder, "daily")
    w = World(sample_url, seed=25)
    since = min(s["position"] for s in start.values())
    day = 0
    while w.changes_so_far(since) < CHANGES or day < DAYS:
        for _ in range(2):
            w.upload()
        w.notice()
        w.notice()
        if day % 2 == 1:
            w.new_edition()
        write_change_file(db, folder, "daily")
        day += 1
    made = w.changes_so_far(since)
    end_folder = tmp_path_factory.mktemp("end")
    end = {d: take_snapshot(db, d, end_folder, formats=["gpkg"]) for d in ("parcels", "plates")}
    return {"folder": folder, "start": start, "end": end, "end_folder": end_folder, "made": made}


def _lines(folder: Path, sequence: int) -> list[dict[str, Any]]:
    data, _ = _file_pair(folder, sequence)
    return [json.loads(line) for line in gzip.decompress(data.read_bytes()).splitlines()]


def _end_file(world: dict[str, Any], dataset: str) -> Path:
    return world["end_folder"] / dataset / world["end"][dataset]["label"] / f"{dataset}.gpkg"


@pytest.mark.parametrize("dataset", ["parcels", "plates"])
def test_a_copy_from_snapshot_and_change_files_equals_the_service(
    world: dict[str, Any], sample_url: str, tmp_path: Path, dataset: str
) -> None:
    assert world["made"] >= CHANGES
    copy = tmp_path / f"{dataset}.gpkg"
    source = FolderSource(world["folder"])
    made = init_replica(source, dataset, copy)
    assert made.position == world["start"][dataset]["position"] and not made.aligned
    said: list[str] = []
    done = update_replica(source, copy, say=said.append)
    assert done.aligned and done.sequence == source.change_state("daily")["sequence"]
    assert done.applied > 0 and len(said) == done.sequence - made.sequence
    _the_same(copy, _end_file(world, dataset), dataset, sample_url)
    # nothing new: a second update changes nothing
    again = update_replica(source, copy)
    assert (again.sequence, again.applied) == (done.sequence, done.applied)


def test_a_copy_killed_mid_apply_is_right_after_resuming(
    world: dict[str, Any], sample_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "parcels.gpkg"
    source = FolderSource(world["folder"])
    made = init_replica(source, "parcels", copy)
    writes = {"n": 0}
    real = pyogrio.write_arrow

    def dies_on_the_third(*args: Any, **kwargs: Any) -> None:
        writes["n"] += 1
        if writes["n"] == 3:  # the file's features are deleted, none written back yet
            raise KeyboardInterrupt
        real(*args, **kwargs)

    monkeypatch.setattr(replica_targets.pyogrio, "write_arrow", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        update_replica(source, copy)
    monkeypatch.setattr(replica_targets.pyogrio, "write_arrow", real)
    stopped = read_replica(copy)
    assert stopped.sequence == made.sequence + 2
    # the third file's features are gone from the copy, not yet written back
    written = {
        c["after"]["id"]
        for c in _lines(world["folder"], stopped.sequence + 1)
        if c["entity_kind"] == "parcel" and c["after"]
    }
    assert written and not written & set(_table(copy, "parcels")["fid"].to_pylist())
    update_replica(source, copy)
    _the_same(copy, _end_file(world, "parcels"), "parcels", sample_url)


def _file_pair(folder: Path, sequence: int) -> tuple[Path, Path]:
    home = folder / "changes" / "daily"
    return home / f"{sequence:09d}.jsonl.gz", home / state_name(sequence)


def test_missing_repeated_or_misplaced_files_are_refused(
    world: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "downloads"
    shutil.copytree(world["folder"], folder)
    source = FolderSource(folder)
    copy = tmp_path / "plates.gpkg"
    first = init_replica(source, "plates", copy).sequence + 1
    last = update_replica(source, copy, until=first).sequence  # three files left to apply
    assert last == first and source.change_state("daily")["sequence"] >= last + 3
    before = copy.read_bytes()

    def refused(code: str) -> None:
        with pytest.raises(GeoError) as caught:  # (ReplicaRefused, or the source's fault)
            update_replica(source, copy)
        assert caught.value.code == code
        assert isinstance(caught.value, ReplicaRefused) == (code != "corrupt_file")
        assert copy.read_bytes() == before  # left as it was

    data, state = _file_pair(folder, last + 1)
    kept = tmp_path / "kept"
    kept.mkdir()
    shutil.move(data, kept / data.name)
    shutil.move(state, kept / state.name)
    refused("missing_sequence")
    # a file applied already, put in the place of the next one
    old_data, old_state = _file_pair(folder, last)
    shutil.copyfile(old_data, data)
    shutil.copyfile(old_state, state)
    refused("wrong_sequence")
    # …even when its state is edited to claim the next sequence
    forged = json.loads(old_state.read_text())
    state.write_text(json.dumps({**forged, "sequence": last + 1}))
    refused("repeated_changes")
    # a file that starts past the copy: the one after the next, in the next one's place
    skip_data, skip_state = _file_pair(folder, last + 2)
    shutil.copyfile(skip_data, data)
    state.write_text(json.dumps({**json.loads(skip_state.read_text()), "sequence": last + 1}))
    refused("gap")
    # the right file, damaged
    shutil.copyfile(kept / state.name, state)
    data.write_bytes((kept / data.name).read_bytes()[:-9] + b"\0" * 9)
    refused("corrupt_file")
    shutil.copyfile(kept / data.name, data)
    done = update_replica(source, copy)
    assert done.sequence == source.change_state("daily")["sequence"]


def test_a_copy_is_kept_over_http_with_a_key(
    world: dict[str, Any], sample_url: str, tmp_path: Path
) -> None:
    with Database(sample_url).begin() as c:
        key = create_key(c, "sci", "reader", "replica")["key"]
    with live_server(sample_url, DOWNLOADS_DIR=str(world["end_folder"])) as base:
        with pytest.raises(GeoError) as caught:
            init_replica(HttpSource(base, None), "plates", tmp_path / "anonymous.gpkg")
        assert caught.value.code == "source_unreachable"
        assert not (tmp_path / "anonymous.gpkg").exists()
    copy = tmp_path / "plates.gpkg"
    # the end snapshot is served from its own folder; the change files from the first one
    both = tmp_path / "both"
    shutil.copytree(world["folder"], both)
    shutil.copytree(world["end_folder"] / "plates", both / "plates", dirs_exist_ok=True)
    with live_server(sample_url, DOWNLOADS_DIR=str(both)) as base:
        source = HttpSource(base, key)
        made = init_replica(source, "plates", copy)
        assert made.snapshot == world["end"]["plates"]["label"]
        update_replica(source, copy)
    _the_same(copy, _end_file(world, "plates"), "plates", sample_url)


def test_datasets_that_change_by_editions_are_not_replicated(
    world: dict[str, Any], tmp_path: Path
) -> None:
    with pytest.raises(GeoError) as caught:
        init_replica(FolderSource(world["folder"]), "divisions", tmp_path / "d.gpkg")
    assert caught.value.code == "not_replicable"


def test_the_command_line_keeps_a_copy(world: dict[str, Any], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from api.cli import main

    copy, folder = tmp_path / "parcels.gpkg", str(world["folder"])
    made = CliRunner().invoke(main, ["replicate", "init", "parcels", str(copy), "--source", folder])
    assert made.exit_code == 0, made.output
    assert world["start"]["parcels"]["label"] in made.output
    last = FolderSource(world["folder"]).change_state("daily")["sequence"]
    done = CliRunner().invoke(main, ["replicate", "update", str(copy), "--source", folder])
    assert done.exit_code == 0 and f"at daily file {last}," in done.output
    status = CliRunner().invoke(main, ["replicate", "status", str(copy)])
    assert f"daily file {last}," in status.output
    again = CliRunner().invoke(
        main, ["replicate", "init", "parcels", str(copy), "--source", folder]
    )
    assert again.exit_code == 1 and "[replica_exists]" in again.output


def _service_rows(url: str, dataset: str) -> set[tuple[Any, ...]]:
    """The service's current rows as the copy holds them (every published property)."""
    table, keys = ("parcel", PARCEL_COLUMNS) if dataset == "parcels" else ("plate", PLATE_COLUMNS)
    with Database(url).connect() as c:
        return {
            (*row[:-1], bytes(row[-1]))
            for row in c.execute(
                text(f"SELECT id, {keys}, ST_AsBinary(geom) FROM {table} WHERE valid_to IS NULL")
            ).all()
        }


PARCEL_COLUMNS = (
    "village_agency, village_code, parcel_no, land_use, area_declared,"
    " round(area_m2::numeric, 2)::float8, upload_id, valid_from, valid_to"
)
PLATE_COLUMNS = (
    "registration_unit, main_plate, sub_plate, round(ST_Area(geom::geography)::numeric, 2)"
    "::float8, source_notice, valid_from, valid_to"
)


def _copy_rows(url: str, dataset: str) -> set[tuple[Any, ...]]:
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s"
                " ORDER BY ordinal_position",
                (dataset,),
            ).fetchall()
        ]
        assert columns[0] == "fid" and columns[-1] == "geometry"  # the properties between
        rows = conn.execute(
            f"SELECT {', '.join(columns[:-1])}, ST_AsBinary(geometry) FROM {dataset}"
        ).fetchall()
    return {(*r[:-1], bytes(r[-1])) for r in rows}


@pytest.mark.parametrize("dataset", ["parcels", "plates"])
def test_a_copy_in_postgis_equals_the_service_row_for_row(
    world: dict[str, Any],
    sample_url: str,
    empty_db_url: str,
    dataset: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = FolderSource(world["folder"])
    made = init_replica(source, dataset, empty_db_url)
    assert made.position == world["start"][dataset]["position"]
    # each file is one transaction: a copy killed inside the third is left after the second
    inserts = {"n": 0}
    real = replica_targets.PostGISCopy._insert

    def dies_on_the_third(self: Any, *args: Any) -> None:
        inserts["n"] += 1
        if inserts["n"] == 3:
            raise KeyboardInterrupt
        real(self, *args)

    monkeypatch.setattr(replica_targets.PostGISCopy, "_insert", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        update_replica(source, empty_db_url)
    monkeypatch.setattr(replica_targets.PostGISCopy, "_insert", real)
    stopped = read_replica(empty_db_url)
    assert made.sequence < stopped.sequence < source.change_state("daily")["sequence"]
    done = update_replica(source, empty_db_url)
    assert done.sequence == source.change_state("daily")["sequence"]
    mine, theirs = _copy_rows(empty_db_url, dataset), _service_rows(sample_url, dataset)
    assert len(mine) == len(theirs) > 0 and mine == theirs
    with pytest.raises(GeoError) as caught:
        init_replica(source, dataset, empty_db_url)
    assert caught.value.code == "replica_exists"
