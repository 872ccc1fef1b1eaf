"""The sample `tagsim demo` loads: real MOI and SCI lists plus generated HF data.

- MOI: the real divisions list of 1401-08-25 (all provinces, down to cities);
- SCI: the real 1399 geography file of Tehran and Qom provinces, down to villages;
- HF: a generated list of guide-plan villages of those provinces, their parcel maps and
  guide-plan zones, and registered plots (see `data.generator`).

Parcels are loaded here straight from the generator's lon/lat truth file, and only the
maps without planted defects: a demo shortcut, not the upload path GIS staff use.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import text

from data.generator import generate
from geo.dates import parse_date
from geo.db import engine
from geo.registry import import_edition
from geo.registry.boundaries import attach_boundaries

__all__ = ["SAMPLE_SEED", "ensure_sample_files", "load_sample"]

HERE = Path(__file__).resolve().parent
SAMPLE_SEED = 1401
Echo = Callable[[str], Any]
PUBLISHED = {"moi": "1401-08-25", "sci": "1399-05-01", "hf": "1402-01-01"}


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


def _load_maps(url: str, folder: Path) -> tuple[int, int, int]:
    truth = folder / "truth"
    facts = {}
    with (truth / "parcel_files.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            facts[row["hf_code"]] = row
    clean = {code for code, row in facts.items() if not row["defects"]}
    parcels = gpd.read_file(truth / "parcels.gpkg", layer="parcels")
    parcels = parcels[parcels["CODE_HF"].isin(clean)]
    zones = gpd.read_file(truth / "parcels.gpkg", layer="zones")
    zones = zones[zones["CODE_HF"].isin(clean)]
    plates = gpd.read_file(folder / "plates" / "plates.geojson")
    attrs = json.dumps({"loaded_by": "demo"})
    with engine(url).begin() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(
            "COPY guide_plan (village_agency, village_code, plan_year, zone, attrs) FROM STDIN"
        ) as copy:
            for code, geom in zip(zones["CODE_HF"], zones.geometry, strict=True):
                copy.write_row(("hf", code, 1402, _ewkt(geom), attrs))
        with cursor.copy(
            "COPY parcel (village_agency, village_code, parcel_no, land_use, area_declared,"
            " area_m2, geom, attrs) FROM STDIN"
        ) as copy:
            for row in parcels.itertuples():
                copy.write_row(
                    (
                        "hf",
                        row.CODE_HF,
                        row.SHOMARE,
                        row.KARBARI,
                        row.MASAHAT,
                        0,
                        _ewkt(row.geometry),
                        attrs,
                    )
                )
        conn.execute(
            text(
                "UPDATE parcel SET area_m2 = ST_Area(geom::geography)"
                " WHERE attrs->>'loaded_by' = 'demo'"
            )
        )
        with cursor.copy(
            "COPY plate (registration_unit, main_plate, sub_plate, geom, attrs, source_notice)"
            " FROM STDIN"
        ) as copy:
            for row in plates.itertuples():
                copy.write_row(
                    (
                        row.registration_unit,
                        row.main_plate,
                        row.sub_plate,
                        _ewkt(row.geometry),
                        attrs,
                        "demo",
                    )
                )
    return len(zones), len(parcels), len(plates)


def load_sample(url: str, folder: Path, *, echo: Echo = print) -> str:
    """Load the sample into the database at ``url``; running it again changes nothing."""
    boundaries = next((HERE / "sample").glob("osm_boundaries_*.geojson")).read_bytes()
    for agency, label, path in _lists(folder):
        result = import_edition(
            url,
            agency,
            label,
            path.read_bytes(),
            source_name=path.name,
            published_on=parse_date(PUBLISHED[agency]),
        )
        echo(result.summary())
        if result.created and agency in {"moi", "sci"}:
            with engine(url).begin() as conn:
                found = attach_boundaries(conn, result.edition_id, boundaries)
            echo(
                f"  boundaries (OpenStreetMap): {found.matched} attached, "
                f"{len(found.unmatched)} without a unit"
            )
    with engine(url).connect() as conn:
        loaded = conn.execute(
            text("SELECT count(*) FROM parcel WHERE attrs->>'loaded_by' = 'demo'")
        ).scalar_one()
    if loaded:
        return f"sample already loaded ({loaded} parcels)"
    zones, parcels, plates = _load_maps(url, folder)
    return f"sample loaded: {zones} guide-plan zones, {parcels} parcels, {plates} plates"
