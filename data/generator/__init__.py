"""Realistic synthetic data with known ground truth, deterministic by seed.

    python -m data.generator --size sample --seed 1401 --out .tagsim/sample

Output folder:

- ``lists/``: MOI list, two editions (``moi_divisions_1400-06-01.csv``,
  ``moi_divisions_1401-08-25.csv``), the SCI geography file
  (``sci_geography_1399.csv``) and HF's list (``hf_villages_1402.csv``), each in its
  real layout, drawn from real SCI names with realistic spelling differences;
- ``parcels/``: one file per mapped HF village (zipped shapefile or GeoPackage);
- ``plates/plates.geojson``: registered plots overlapping parcels;
- ``truth/``: the ground-truth crosswalk, MOI events, parcel file facts (CRS, .prj,
  encoding, planted defects), every parcel and zone in lon/lat, plate overlaps;
- ``manifest.json``: size, seed, counts and the variant kinds present.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from data.generator.agencies import (
    COMMON,
    PDF_ONLY,
    MoiCoder,
    Spelling,
    choose_hf,
    write_events,
    write_hf,
    write_moi,
    write_sci,
    write_truth,
)
from data.generator.evolve import Event, Rates, evolve
from data.generator.parcels import make_plates, make_village, write_village
from data.generator.sizes import SIZES, Size, size
from data.generator.truth import World, place, read_sci_layout
from geo.errors import ValidationError
from geo.geodata.persian import match_key
from geo.platform.config import project_root

__all__ = ["EDITIONS", "PUBLISHED", "SIZES", "generate"]

SAMPLE = Path(__file__).resolve().parents[1] / "sample"
EDITIONS = {
    "moi_old": ("moi", "1400-06-01", "moi_divisions_1400-06-01.csv"),
    "moi": ("moi", "1401-08-25", "moi_divisions_1401-08-25.csv"),
    "sci": ("sci", "1399", "sci_geography_1399.csv"),
    "hf": ("hf", "1402", "hf_villages_1402.csv"),
}
# When each edition was published (Jalali): the registry orders an agency's editions by it.
PUBLISHED = {"moi_old": "1400-06-01", "moi": "1401-08-25", "sci": "1399-05-01", "hf": "1402-01-01"}


def _sources(sz: Size, source: Path | None) -> tuple[Path, list[Path]]:
    """The SCI-layout file and the boundary files to draw from."""
    if sz.needs_full_source or source is not None:
        folder = source or project_root().parent / "shared" / "data"
        sci = folder / "sci" / "sci_geography_1399.csv"
        if not sci.exists():
            raise ValidationError(
                f"size {sz.name!r} needs the full SCI file; none at {sci} (pass --source)",
                code="source_missing",
            )
        return sci, sorted((folder / "osm").glob("*.geojson"))
    return next(SAMPLE.glob("sci_geography_1399_*.csv")), sorted(SAMPLE.glob("osm_*.geojson"))


def _real_moi_province_codes() -> dict[str, str]:
    with (SAMPLE / "moi_divisions_1401-08-25.csv").open(encoding="utf-8") as src:
        return {
            match_key(r["name"]): r["hierarchicalCode"]
            for r in csv.DictReader(src)
            if r["type"] == "استان"
        }


def _thin(world: World, share: float, rng: random.Random) -> None:
    if share >= 1:
        return
    for unit in [u for u in world.units.values() if u.level == "village"]:
        if rng.random() >= share:
            world.units[unit.parent].children.remove(unit.uid)  # type: ignore[index]
            del world.units[unit.uid]


def generate(
    out: Path,
    size_name: str = "sample",
    seed: int = 1401,
    source: Path | None = None,
    echo: Callable[[str], Any] = lambda _m: None,
    maps: bool = True,
    map_files: bool = True,
) -> dict[str, Any]:
    """Generate a world into ``out`` (replaced if present) and return its manifest.

    ``maps=False`` writes the lists and their truth only (no parcel maps or plates);
    ``map_files=False`` draws the maps into ``truth/parcels.gpkg`` only (no per-village files:
    the national file for benchmarks).
    """
    sz = size(size_name)
    sci_source, boundaries = _sources(sz, source)
    rng = random.Random(seed)
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    for sub in ("lists", "parcels", "plates", "truth"):
        (out / sub).mkdir(parents=True)

    echo(f"reading {sci_source.name} ...")
    world0 = read_sci_layout(sci_source, set(sz.provinces) if sz.provinces else None)
    _thin(world0, sz.village_share, rng)
    place(world0, boundaries, rng)
    world1, events = evolve(world0, rng, Rates())

    echo("writing the agency lists ...")
    moi_spelling = Spelling({**COMMON, **PDF_ONLY}, 0.10, random.Random(seed + 1))
    hf_spelling = Spelling(COMMON, 0.12, random.Random(seed + 2))
    coder = MoiCoder(_real_moi_province_codes())
    lists = out / "lists"
    moi_old = write_moi(lists / EDITIONS["moi_old"][2], world0, coder, moi_spelling)
    events += _recodes(world0, world1, events, coder, rng)
    moi_new = write_moi(lists / EDITIONS["moi"][2], world1, coder, moi_spelling)
    sci = write_sci(lists / EDITIONS["sci"][2], world0, random.Random(seed + 3))
    hf_ids = choose_hf(world1, rng, sz.hf_share)
    hf = write_hf(lists / EDITIONS["hf"][2], world1, hf_ids, hf_spelling, random.Random(seed + 4))
    variants = {"moi": moi_spelling.per_unit, "hf": hf_spelling.per_unit}
    relations = write_truth(
        out / "truth" / "crosswalk.csv", world0, world1, events, moi_new, sci, hf, variants
    )
    levels = {u.uid: u.level for w in (world0, world1) for u in w.units.values()}
    write_events(out / "truth" / "moi_events.csv", events, moi_old, moi_new, levels)

    echo(f"drawing parcel maps for {sz.parcel_villages} villages ...")
    prng = random.Random(seed + 5)
    mapped = sorted(
        (
            u
            for u in world1.units.values()
            if u.uid in hf_ids and u.level == "village" and u.lon is not None
        ),
        key=lambda u: u.uid,
    )
    mapped = prng.sample(mapped, min(sz.parcel_villages if maps else 0, len(mapped)))
    drawn = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, unit in enumerate(mapped, start=1):
            assert unit.lon is not None and unit.lat is not None  # mapped units are placed
            vm = make_village(
                prng,
                hf[unit.uid],
                hf_spelling.of(unit),
                unit.lon,
                unit.lat,
                sz.defect_rate,
                sz.zone_radius,
            )
            if map_files:
                write_village(vm, out / "parcels", i, Path(tmp))
            drawn.append(vm)
            if i % 200 == 0:
                echo(f"  {i} of {len(mapped)} villages")
    _write_parcel_truth(out / "truth", drawn)
    plates = make_plates(prng, drawn, sz.plates_per_village)
    plates.frame.to_file(out / "plates" / "plates.geojson", driver="GeoJSON")
    with (out / "truth" / "plate_overlaps.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["plate", "hf_code", "parcel_no", "overlap_m2", "share_of_plate"])
        w.writerows(plates.overlaps)

    manifest: dict[str, Any] = {
        "size": sz.name,
        "seed": seed,
        "source": sci_source.name,
        "editions": {
            k: {"agency": a, "label": lbl, "file": f"lists/{f}"}
            for k, (a, lbl, f) in EDITIONS.items()
        },
        "counts": {
            "sci": dict(Counter(u.level for u in world0.units.values())),
            "moi": dict(Counter(u.level for u in world1.units.values() if not u.farm)),
            "hf": dict(Counter(world1.units[u].level for u in hf)),
            "events": dict(Counter(e.kind for e in events)),
            "relations": dict(relations),
            "parcel_maps": len(drawn),
            "parcels": int(sum(len(m.parcels) for m in drawn)),
            "plates": len(plates.frame),
        },
        "variants": {"moi": dict(moi_spelling.used), "hf": dict(hf_spelling.used)},
        "defects": dict(Counter(d for m in drawn for d in m.defects)),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n")
    echo(f"done: {manifest['counts']['parcels']} parcels in {len(drawn)} drawn")
    return manifest


def _recodes(
    old: World,
    new: World,
    events: list[Event],
    coder: MoiCoder,
    rng: random.Random,
    share: float = 0.005,
) -> list[Event]:
    """MOI renumbers a few villages that stay where they are (at least one)."""
    touched = {u for e in events for u in (*e.before, *e.after)}
    stable = [
        u.uid
        for u in new.units.values()
        if u.level == "village"
        and not u.farm
        and u.uid in old.units
        and u.uid not in touched
        and old.units[u.uid].parent == u.parent
    ]
    chosen = [uid for uid in stable if rng.random() < share] or stable[:1]
    for uid in chosen:
        coder.forget(uid)
    return [Event("recode", (uid,), (uid,)) for uid in chosen]


def _write_parcel_truth(folder: Path, drawn: list) -> None:  # type: ignore[type-arg]
    with (folder / "parcel_files.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(
            ["file", "hf_code", "village", "epsg", "has_prj", "encoding", "parcels", "defects"]
        )
        for m in drawn:
            w.writerow(
                [
                    m.file,
                    m.hf_code,
                    m.name,
                    m.epsg,
                    int(m.has_prj),
                    m.encoding,
                    len(m.parcels),
                    " ".join(m.defects),
                ]
            )
    if not drawn:
        return
    parcels = pd.concat([m.parcels for m in drawn], ignore_index=True)
    gpd.GeoDataFrame(parcels, geometry="geometry", crs=4326).to_file(
        folder / "parcels.gpkg", layer="parcels", driver="GPKG"
    )
    zones = gpd.GeoDataFrame(
        {"CODE_HF": [m.hf_code for m in drawn], "NAME": [m.name for m in drawn]},
        geometry=[m.zone for m in drawn],
        crs=4326,
    )
    zones.to_file(folder / "parcels.gpkg", layer="zones", driver="GPKG")
