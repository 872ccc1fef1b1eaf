"""The sample `tagsim demo` loads: real MOI and SCI lists plus generated HF data.

- MOI: the real divisions list of 1401-08-25 (all provinces, down to cities);
- SCI: the real 1399 geography file of Tehran and Qom provinces, down to villages;
- HF: a generated list of guide-plan villages of those provinces, their parcel maps and
  guide-plan zones, and registered plots (see `data.generator`).

The parcel maps (those without planted defects) go through the same upload path GIS staff
use, as one many-village GeoPackage; the plots are loaded as they are.
"""

from __future__ import annotations

import csv
import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import text

from data.generator import PUBLISHED, generate
from geo.geodata.dates import parse_date
from geo.geodata.parcels.ingest import IngestOptions, create_upload, process_upload
from geo.geodata.registry import import_edition
from geo.geodata.registry.boundaries import attach_boundaries
from geo.platform.database import Database, copy_lines, copy_text

__all__ = ["SAMPLE_SEED", "ensure_sample_files", "load_sample"]

HERE = Path(__file__).resolve().parent
SAMPLE_SEED = 1401
Echo = Callable[[str], Any]
SAMPLE_UPLOAD = "sample-parcel-maps.gpkg"


def _fingerprint() -> str:
    """Changes whenever the generator or the committed sources change."""
    digest = hashlib.sha1()
    for path in sorted([*HERE.glob("generator/*.py"), *HERE.glob("sample/*")]):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_sample_files(folder: Path, *, force: bool = False, echo: Echo = print) -> Path:
    """Generate the sample into ``folder`` unless an up-to-date one is there."""
    stamp = folder / "fingerprint"
    if not force and stamp.exists() and stamp.read_text().strip() == _fingerprint():
        return folder
    echo(f"generating sample data into {folder} ...")
    generate(folder, "sample", SAMPLE_SEED, echo=echo)
    stamp.write_text(_fingerprint() + "\n")
    return folder


def _lists(folder: Path) -> list[tuple[str, str, Path]]:
    return [
        ("moi", "1401-08-25", HERE / "sample" / "moi_divisions_1401-08-25.csv"),
        ("sci", "1399", next((HERE / "sample").glob("sci_geography_1399_*.csv"))),
        ("hf", "1402", folder / "lists" / "hf_villages_1402.csv"),
    ]


def _ewkt(geom: Any) -> str:
    """EWKT of a (multi)polygon as a MultiPolygon, the columns' type."""
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    return f"SRID=4326;{geom.wkt}"


def _load_maps(db: Database, folder: Path) -> tuple[int, int, int]:
    """The parcel maps go through the real upload path (one file, many villages); the
    registered plots are loaded as they are (their notices are another issue's)."""
    truth = folder / "truth"
    with (truth / "parcel_files.csv").open(encoding="utf-8") as f:
        clean = {row["hf_code"] for row in csv.DictReader(f) if not row["defects"]}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / SAMPLE_UPLOAD
        for layer in ("parcels", "zones"):
            frame = gpd.read_file(truth / "parcels.gpkg", layer=layer)
            frame[frame["CODE_HF"].isin(clean)].to_file(path, layer=layer, driver="GPKG")
        upload_id = create_upload(db, path.read_bytes(), SAMPLE_UPLOAD, IngestOptions())
    state = process_upload(db, upload_id)
    published = state["report"]["published"]
    plates = gpd.read_file(folder / "plates" / "plates.geojson")
    attrs = json.dumps({"loaded_by": "demo"})
    with db.begin() as conn:
        lines = [
            "\t".join(
                (
                    copy_text(r.registration_unit),
                    copy_text(r.main_plate),
                    copy_text(r.sub_plate),
                    _ewkt(r.geometry),
                    attrs,
                    "demo",
                )
            )
            for r in plates.itertuples()
        ]
        copy_lines(
            conn,
            "COPY plate (registration_unit, main_plate, sub_plate, geom, attrs,"
            " source_notice) FROM STDIN",
            lines,
        )
    return published["zone"], published["insert"] + published["update"], len(plates)


def load_sample(db: Database, folder: Path, *, echo: Echo = print) -> str:
    """Load the sample into the database at ``db``; running it again changes nothing."""
    boundaries = next((HERE / "sample").glob("osm_boundaries_*.geojson")).read_bytes()
    for agency, label, path in _lists(folder):
        result = import_edition(
            db,
            agency,
            label,
            path.read_bytes(),
            source_name=path.name,
            published_on=parse_date(PUBLISHED[agency]),
        )
        echo(result.summary())
        if result.created and agency in {"moi", "sci"}:
            with db.begin() as conn:
                found = attach_boundaries(conn, result.edition_id, boundaries)
            echo(
                f"  boundaries (OpenStreetMap): {found.matched} attached, "
                f"{len(found.unmatched)} without a unit"
            )
    with db.connect() as conn:
        loaded = conn.execute(
            text("SELECT count(*) FROM upload WHERE file_name = :f AND status = 'published'"),
            {"f": SAMPLE_UPLOAD},
        ).scalar_one()
    if loaded:
        return "sample already loaded"
    zones, parcels, plates = _load_maps(db, folder)
    return f"sample loaded: {zones} guide-plan zones, {parcels} parcels, {plates} plates"
