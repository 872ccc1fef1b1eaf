"""Snapshots (issue 25): a national parcel layer in every format, each timed and sized beside
what a user would run instead on the same rows — ``ogr2ogr`` from PostGIS to the same format
(GeoPackage, FlatGeobuf, CSV), geopandas for GeoParquet (Debian's GDAL 3.6 has no Parquet
driver) and GDAL 3.12's own PMTiles writer (pyogrio's) for the tile archive — and a day's
change file of 10,000 changes beside one ``COPY`` of the same changes as gzipped JSON Lines.

Ours is the whole ``take_snapshot``: the REPEATABLE READ transaction, the file, its SHA-256,
the manifest and the row. Both maps: the generator's and the tiling (neighbours sharing
edges), as every speed claim here."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import psycopg
import pyarrow as pa
import pyogrio
from sqlalchemy import create_engine, text

from bench.cases.feed import notice
from bench.cases.serving import _load, _wanted
from bench.datasets import pg_dsn
from bench.harness import Outcome, pair
from geo.changes.change_files import write_change_file
from geo.changes.plate_notices import apply_notice
from geo.changes.snapshots import take_snapshot
from geo.platform.database import Database

# the rows and columns of our file, for every baseline
ROWS = (
    "SELECT id AS fid, village_agency, village_code, parcel_no, land_use, area_declared,"
    " round(area_m2::numeric, 2)::float8 AS area_m2, upload_id, valid_from, valid_to,"
    " geom FROM parcel WHERE valid_to IS NULL ORDER BY id"
)
CHANGES = 10_000
_CLOCK = [datetime(2027, 1, 1, tzinfo=UTC)]


def _moment() -> datetime:
    """A new second for every snapshot (a label is a second)."""
    _CLOCK[0] += timedelta(seconds=1)
    return _CLOCK[0]


def _ogr2ogr(url: str, driver: str, out: Path, *options: str) -> None:
    subprocess.run(
        ["ogr2ogr", "-f", driver, str(out), pg_dsn(url), "-sql", ROWS, "-nln", "parcels",
         *options],
        check=True, capture_output=True,
    )  # fmt: skip


def _parquet(url: str, out: Path) -> None:
    engine = create_engine(url)
    try:
        frame = gpd.read_postgis(ROWS, engine, geom_col="geom")
    finally:
        engine.dispose()
    frame.to_parquet(out)


def _gdal_pmtiles(url: str, out: Path) -> None:
    """GDAL's PMTiles writer (zooms 12–15, as ours) fed the same rows through Arrow."""
    libpq = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq) as conn:
        rows = conn.execute(
            "SELECT id, village_agency, village_code, parcel_no, land_use,"
            " round(area_m2::numeric, 2)::float8, ST_AsBinary(geom)"
            " FROM parcel WHERE valid_to IS NULL"
        ).fetchall()
    names = ["fid", "village_agency", "village_code", "parcel_no", "land_use", "area_m2"]
    columns = [pa.array(c) for c in zip(*rows, strict=True)] if rows else []
    table = pa.Table.from_arrays(
        [*columns[:-1], pa.array(columns[-1], pa.binary())],
        schema=pa.schema(
            [
                *(pa.field(n, c.type) for n, c in zip(names, columns, strict=False)),
                pa.field(
                    "geometry", pa.binary(), metadata={"ARROW:extension:name": "geoarrow.wkb"}
                ),
            ]
        ),
    )
    pyogrio.write_arrow(
        table, out, layer="parcels", driver="PMTiles", geometry_name="geometry",
        geometry_type="MultiPolygon", crs="EPSG:4326",
        dataset_options={"MINZOOM": "12", "MAXZOOM": "15"},
    )  # fmt: skip


BASELINES: dict[str, tuple[str, Any]] = {
    "gpkg": ("ogr2ogr -f GPKG", lambda url, out: _ogr2ogr(url, "GPKG", out)),
    "fgb": ("ogr2ogr -f FlatGeobuf", lambda url, out: _ogr2ogr(url, "FlatGeobuf", out)),
    "csv": (
        "ogr2ogr -f CSV (WKT)",
        lambda url, out: _ogr2ogr(url, "CSV", out, "-lco", "GEOMETRY=AS_WKT"),
    ),
    "parquet": ("geopandas read_postgis + to_parquet", _parquet),
    "pmtiles": ("GDAL 3.12 PMTiles writer", _gdal_pmtiles),
}
SUFFIX = {"gpkg": "gpkg", "fgb": "fgb", "csv": "csv", "parquet": "parquet", "pmtiles": "pmtiles"}


def _cases(dataset: str, quick: bool) -> list[str]:
    """The formats measured on ``dataset``: ``BENCH_SHAPES`` picks among the case names
    (``snapshot gpkg [tiling]``, ``change file``) by parts of them."""
    formats = ("gpkg", "pmtiles") if quick else tuple(BASELINES)
    return [f for _, f in _wanted([(f"snapshot {f} [{dataset}]", f) for f in formats])]


def _formats(url: str, folder: Path, dataset: str, parcels: int, quick: bool) -> list[Outcome]:
    db, outcomes = Database(url), []
    for fmt in _cases(dataset, quick):
        name, baseline = BASELINES[fmt]
        sizes: dict[str, int] = {}

        def ours(fmt: str = fmt, sizes: dict[str, int] = sizes) -> None:
            made = take_snapshot(
                db, "parcels", folder / "ours", formats=[fmt], keep=1, now=_moment()
            )
            sizes["ours_bytes"] = made["files"][0]["size"]

        def theirs(fmt: str = fmt, baseline: Any = baseline, sizes: dict[str, int] = sizes) -> None:
            out = folder / f"baseline.{SUFFIX[fmt]}"
            out.unlink(missing_ok=True)
            baseline(url, out)
            sizes["baseline_bytes"] = out.stat().st_size
            out.unlink()

        outcome = pair(
            f"snapshot {fmt} [{dataset}]",
            (f"take_snapshot {fmt}", ours),
            (name, theirs),
            1 if quick else 3,
            size={"dataset": dataset, "parcels": parcels},
            note="ours: one REPEATABLE READ transaction, the file, SHA-256, manifest, row",
        )
        outcome.size.update(sizes)
        print(
            f"  {fmt}: ours {sizes['ours_bytes'] / 1e6:,.1f} MB,"
            f" baseline {sizes['baseline_bytes'] / 1e6:,.1f} MB",
            flush=True,
        )
        outcomes.append(outcome)
    return outcomes


def _change_file(url: str, folder: Path, quick: bool) -> Outcome:
    """A day of ``CHANGES`` plate changes written as the day's file, again each round."""
    db = Database(url)
    n = 1_000 if quick else CHANGES
    take_snapshot(db, "plates", folder / "ours", formats=["csv"], keep=1, now=_moment())
    apply_notice(db, notice(n, unit="78"), "bench day")
    libpq = url.replace("postgresql+psycopg://", "postgresql://")

    def again() -> None:
        with db.begin() as c:
            c.execute(text("DELETE FROM change_file"))
        shutil.rmtree(folder / "ours" / "changes", ignore_errors=True)

    def ours() -> None:
        made = write_change_file(db, folder / "ours", "daily")
        assert made["changes"] == n, made["changes"]

    def copy() -> None:
        out = folder / "copy.jsonl.gz"
        with (
            psycopg.connect(libpq) as conn,
            gzip.open(out, "wb") as gz,
            conn.cursor().copy(
                "COPY (SELECT json_build_object('id', id, 'entity_kind', entity_kind,"
                " 'entity_id', entity_id, 'operation', operation, 'occurred_at', occurred_at,"
                " 'cause', cause, 'before', before, 'after', after) FROM change_event"
                " ORDER BY txid, id, part) TO STDOUT"
            ) as rows,
        ):
            for block in rows:
                gz.write(block)

    return pair(
        f"change file of {n:,} changes",
        ("write_change_file daily", ours),
        ("COPY … TO STDOUT | gzip", copy),
        1 if quick else 5,
        size={"changes": n},
        note="ours: feed pages of 10,000 with cursors, gzipped JSON Lines, SHA-256, state files",
        setup=again,
    )


def run(url: str, quick: bool) -> list[Outcome]:
    if shutil.which("ogr2ogr") is None:
        print("  ogr2ogr missing (apt-get install gdal-bin): snapshots case skipped")
        return []
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="tagsim-bench-snapshots-") as tmp:
        folder = Path(tmp)
        for dataset in ("generator",) if quick else ("generator", "tiling"):
            if not _cases(dataset, quick):
                continue
            parcels = _load(url, quick, dataset)
            print(f"  {dataset}: {parcels} parcels", flush=True)
            outcomes += _formats(url, folder, dataset, parcels, quick)
        if _wanted([("change file", None)]):
            outcomes.append(_change_file(url, folder, quick))
    return outcomes
