"""Parcel ingest: our upload path (validate + versioned publish + change events) vs ogr2ogr.

Both load the same file into the same PostGIS; ogr2ogr as the issue asks:
``-nlt PROMOTE_TO_MULTI -t_srs EPSG:4326`` in COPY mode. Three files:

- the generator's parcel maps of every village without a planted defect (lon/lat
  GeoPackage; parcels separated by streets, no two touching);
- the tiling (:mod:`bench.tiling`: neighbours share their densified edges, as in a real
  cadastre) as a zipped shapefile in UTM 39N with DBF-truncated field names — ogr2ogr
  reads it in place through ``/vsizip/``;
- the same tiling as a lon/lat GeoPackage.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import psycopg
from sqlalchemy import text

from bench import datasets
from bench.datasets import CACHE
from bench.harness import Outcome, pair
from bench.tiling import tiling_files
from data.lists import import_lists
from geo.geodata.parcels.ingest import IngestOptions, create_upload, process_upload
from geo.platform.database import Database


def _file(quick: bool) -> tuple[Path, int, Path]:
    """(the GeoPackage's path, its parcel count, the world) for the chosen size, cached."""
    size = "small" if quick else "national"
    world = datasets.world(quick, maps=True)
    out = CACHE / f"parcels_{size}.gpkg"
    if not out.exists():
        import csv

        with (world / "truth/parcel_files.csv").open(encoding="utf-8") as f:
            bad = {r["hf_code"] for r in csv.DictReader(f) if r["defects"]}
        for layer in ("parcels", "zones"):
            frame = gpd.read_file(world / "truth/parcels.gpkg", layer=layer)
            frame[~frame["CODE_HF"].isin(bad)].to_file(out, layer=layer, driver="GPKG")
    count = len(gpd.read_file(out, layer="parcels", columns=["CODE_HF"], ignore_geometry=True))
    return out, count, world


def run(url: str, quick: bool) -> list[Outcome]:
    if shutil.which("ogr2ogr") is None:
        print("  ogr2ogr missing (apt-get install gdal-bin): parcel ingest case skipped")
        return []
    path, count, world = _file(quick)
    # MOI's list (the reference: it gives each village its province partition) and HF's
    import_lists(Database(url), world, ("moi", "hf"))
    libpq = url.replace("postgresql+psycopg://", "postgresql://")

    def reset() -> None:
        with Database(url).begin() as c:
            c.execute(
                text(
                    "TRUNCATE parcel, parcel_extent, guide_plan, change, parcel_stage, upload_file,"
                    " upload CASCADE"
                )
            )
            c.execute(text("DROP TABLE IF EXISTS bench_ogr"))
            # as in a database that never held parcels: no province partition yet
            for (name,) in c.execute(
                text(
                    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                    " WHERE i.inhparent = 'parcel'::regclass AND c.relname <> 'parcel_default'"
                )
            ).all():
                c.execute(text(f'DROP TABLE "{name}"'))
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE parcel")
            # each run starts from a checkpoint: neither pays for flushing the other's writes
            conn.execute("CHECKPOINT")

    def ingest(name: str, path: Path, layer: str, parcels: int, note: str) -> Outcome:
        def ours() -> None:
            # as the CLI does: the file is stored while it is read
            upload_id = create_upload(Database(url), path, path.name, IngestOptions(), store=False)
            state = process_upload(Database(url), upload_id, path=path)
            assert state["status"] == "published", state["report"].get("summary")

        def ogr() -> None:
            datasets.ogr2ogr_load(url, path, layer, "bench_ogr")

        return pair(
            name,
            ("upload → published", ours),
            ("ogr2ogr COPY", ogr),
            3,  # the median of three: single runs on a shared machine vary by ±10%
            size={"parcels": parcels},
            setup=reset,
            note="ours: read, CRS, village checks, stage, every validation check, "
            f"versioned publish with a change event per parcel; ogr2ogr: load only. {note}",
        )

    tiling = tiling_files(quick)
    return [
        ingest(
            "parcel ingest (validate+publish)",
            path,
            "parcels",
            count,
            "The generator's maps: lon/lat GeoPackage, parcels apart.",
        ),
        ingest(
            "parcel ingest, tiling shapefile UTM 39N",
            tiling.shapefile_zip,
            "parcels",
            tiling.parcels,
            f"A tiling of {tiling.villages} villages (shared edges), zipped shapefile, "
            "DBF-truncated names.",
        ),
        ingest(
            "parcel ingest, tiling GeoPackage lon/lat",
            tiling.geopackage,
            "parcels",
            tiling.parcels,
            f"The same tiling of {tiling.villages} villages as a lon/lat GeoPackage.",
        ),
    ]
