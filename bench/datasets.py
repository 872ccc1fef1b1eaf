"""Benchmark data: made from the committed sample and the generator, cached in bench/cache."""

from __future__ import annotations

import csv
import io
import os
import subprocess
from pathlib import Path

CACHE = Path(__file__).resolve().parent / "cache"
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def sci_file(rows: int) -> bytes:
    """An SCI geography file of about ``rows`` rows: the Tehran + Qom sample with each
    village repeated under new village codes (names and hierarchy stay real)."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"sci_{rows}.csv"
    if path.exists():
        return path.read_bytes()
    source = next(SAMPLE.glob("sci_geography_1399_*.csv")).read_text(encoding="utf-8")
    table = list(csv.reader(io.StringIO(source)))
    header, body = table[0], table[1:]
    villages = [r for r in body if r[10] in {"6", "8"}]
    others = [r for r in body if r[10] not in {"6", "8"}]
    copies = max(1, (rows - len(others)) // max(1, len(villages)))
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(others)
    serial = 0
    for _ in range(copies):
        for r in villages:
            serial += 1
            w.writerow([*r[:8], f"{serial:06d}", *r[9:]])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path.read_bytes()


def world(quick: bool, *, maps: bool) -> Path:
    """The generator's world, cached: ``small`` for quick runs, ``national`` otherwise (from
    ../shared/data). ``maps`` adds every village's parcel map to ``truth/parcels.gpkg``."""
    from data.generator import generate
    from geo.platform.config import project_root

    size = "small" if quick else "national"
    out = CACHE / f"world_{size}{'_maps' if maps else ''}"
    if not (out / "manifest.json").exists():
        source = None if quick else project_root().parent / "shared" / "data"
        generate(
            out,
            size,
            seed=1401,
            source=source,
            maps=maps,
            map_files=False,
            echo=lambda m: print(f"  generator: {m}", flush=True),
        )
    return out


def pg_dsn(url: str) -> str:
    """GDAL's ``PG:`` connection string for the database at ``url``."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return (
        f"PG:host={u.host} port={u.port} dbname={u.database} user={u.username} "
        f"password={u.password}"
    )


def ogr2ogr_load(url: str, path: Path, layer: str, table: str) -> None:
    """``ogr2ogr`` one layer of ``path`` (a GeoPackage, or a zip of shapefiles read in
    place through ``/vsizip/``) into ``table`` of the database at ``url`` (COPY mode, lon/lat
    multipolygons in a ``geom`` column), replacing the table."""
    dsn = pg_dsn(url)
    subprocess.run(
        [
            "ogr2ogr",
            "-f",
            "PostgreSQL",
            dsn,
            f"/vsizip/{path}" if path.suffix == ".zip" else str(path),
            layer,
            "-nln",
            table,
            "-nlt",
            "PROMOTE_TO_MULTI",
            "-t_srs",
            "EPSG:4326",
            "-lco",
            "GEOMETRY_NAME=geom",
            "-overwrite",
        ],
        check=True,
        env={**os.environ, "PG_USE_COPY": "YES"},
    )
