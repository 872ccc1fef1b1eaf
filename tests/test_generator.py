"""The synthetic data generator: deterministic, realistic, with consistent ground truth."""

from __future__ import annotations

import csv
import filecmp
import json
import zipfile
from collections import Counter
from pathlib import Path

import geopandas as gpd
import pytest

from data.generator import generate
from data.generator.variants import COMMON, PDF_ONLY
from geo.geodata.persian import match_key
from geo.geodata.registry.formats import read_rows

TEXT_FILES = [
    "lists/moi_divisions_1400-06-01.csv",
    "lists/moi_divisions_1401-08-25.csv",
    "lists/sci_geography_1399.csv",
    "lists/hf_villages_1402.csv",
    "truth/crosswalk.csv",
    "truth/moi_events.csv",
    "truth/parcel_files.csv",
    "truth/plate_overlaps.csv",
]


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen") / "small"
    generate(out, "small", seed=7)
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    a, b, _ = (generate(tmp_path / n, "tiny", seed=s) for n, s in (("a", 3), ("b", 3), ("c", 4)))
    assert a == b
    for name in TEXT_FILES:
        assert filecmp.cmp(tmp_path / "a" / name, tmp_path / "b" / name, shallow=False), name
    assert not filecmp.cmp(
        tmp_path / "a" / "lists/hf_villages_1402.csv",
        tmp_path / "c" / "lists/hf_villages_1402.csv",
        shallow=False,
    )
    for zipped in (tmp_path / "a" / "parcels").glob("*.zip"):
        assert zipped.read_bytes() == (tmp_path / "b" / "parcels" / zipped.name).read_bytes()


def test_lists_are_in_their_real_layouts(small: Path) -> None:
    for name, fmt in [
        ("moi_divisions_1401-08-25.csv", "moi"),
        ("sci_geography_1399.csv", "sci"),
        ("hf_villages_1402.csv", "generic"),
    ]:
        found, rows = read_rows((small / "lists" / name).read_bytes())
        assert found == fmt
        assert rows and all(r.code.isdigit() and r.name for r in rows)
    header = (
        (small / "lists" / "sci_geography_1399.csv").read_text(encoding="utf-8").splitlines()[0]
    )
    assert header.startswith("کد استان,نام استان") and header.endswith("CODEREC,DIAG")


def test_counts_and_every_kind_of_change_are_present(small: Path) -> None:
    m = json.loads((small / "manifest.json").read_text())
    assert m["counts"]["sci"]["province"] == 2 and m["counts"]["sci"]["county"] == 17
    assert m["counts"]["sci"]["village"] > 1000
    assert set(m["counts"]["events"]) == {
        "rename",
        "move",
        "split",
        "merge",
        "create",
        "abolish",
        "recode",
    }
    assert {"same", "split", "merge", "unmatched"} <= set(m["counts"]["relations"])
    moi_kinds = set(m["variants"]["moi"])
    assert "ligature_reversed" in moi_kinds  # PDF extraction defect, MOI only
    assert "ligature_reversed" not in m["variants"]["hf"]
    assert len(moi_kinds | set(m["variants"]["hf"])) >= 8
    assert set(moi_kinds) <= set(COMMON) | set(PDF_ONLY)


def test_homonym_villages_share_a_county(small: Path) -> None:
    _, rows = read_rows((small / "lists" / "sci_geography_1399.csv").read_bytes())
    per_county = Counter((r.code[:4], match_key(r.name)) for r in rows if r.level == "village")
    assert max(per_county.values()) >= 3


def test_ground_truth_agrees_with_the_lists(small: Path) -> None:
    codes = {}
    for agency, name, fmt in [
        ("moi", "moi_divisions_1401-08-25.csv", "moi"),
        ("sci", "sci_geography_1399.csv", "sci"),
        ("hf", "hf_villages_1402.csv", "generic"),
    ]:
        codes[agency] = {
            r.code: r for r in read_rows((small / "lists" / name).read_bytes(), fmt)[1]
        }
    truth = _rows(small / "truth" / "crosswalk.csv")
    for row in truth:
        for agency in ("moi", "sci", "hf"):
            code = row[f"{agency}_code"]
            if code:
                assert code in codes[agency], (agency, code)
                assert codes[agency][code].level == row["level"]
    for agency in ("moi", "sci", "hf"):
        assert {r[f"{agency}_code"] for r in truth} - {""} == set(codes[agency])
    splits = Counter(r["sci_code"] for r in truth if r["relation"] == "split")
    assert splits and all(n == 2 for n in splits.values())
    merges = Counter(r["moi_code"] for r in truth if r["relation"] == "merge")
    assert merges and all(n == 2 for n in merges.values())
    hf_levels = Counter(r.level for r in codes["hf"].values())
    assert hf_levels["village"] < 0.6 * Counter(r.level for r in codes["sci"].values())["village"]


def test_parcel_files_are_what_the_truth_says(small: Path) -> None:
    facts = _rows(small / "truth" / "parcel_files.csv")
    assert len(facts) == 12
    epsgs = {int(f["epsg"]) for f in facts}
    assert epsgs & {32638, 32639, 32640, 32641} and epsgs & {2058, 2059, 2060, 2061}
    assert any(f["file"].endswith(".gpkg") for f in facts)
    for f in facts:
        path = small / "parcels" / f["file"]
        if path.suffix == ".zip":
            names = set(zipfile.ZipFile(path).namelist())
            assert {"parcels.shp", "parcels.shx", "parcels.dbf", "zone.shp"} <= names
            assert ("parcels.prj" in names) == (f["has_prj"] == "1")
            assert ("parcels.cpg" in names) == (f["encoding"] == "UTF-8")
            frame = gpd.read_file(
                f"zip://{path}!parcels.shp",
                encoding="cp1256" if f["encoding"] == "CP1256" else "utf-8",
            )
        else:
            frame = gpd.read_file(path, layer="parcels")
        assert len(frame) == int(f["parcels"])
        assert set(frame.columns) >= {"SHOMARE", "KARBARI", "MASAHAT", "CODE_HF", "geometry"}
        if f["has_prj"] == "1":
            assert frame.crs.to_epsg() == int(f["epsg"])
        xs = frame.geometry.bounds.minx
        assert xs.min() > 100_000  # projected metres, not degrees


def test_parcels_are_realistic(small: Path) -> None:
    parcels = gpd.read_file(small / "truth" / "parcels.gpkg", layer="parcels")
    valid = parcels[parcels.is_valid]
    areas = valid.to_crs(32639).area
    assert areas.between(95, 2100).mean() > 0.97
    uses = Counter(parcels["KARBARI"])
    assert uses.most_common(1)[0][0] == "مسکونی" and len(uses) >= 8
    defects = Counter(
        d for f in _rows(small / "truth" / "parcel_files.csv") for d in f["defects"].split()
    )
    assert sum(defects.values()) >= 2
    assert (~parcels.is_valid).sum() == defects["self_intersection"]


def test_plates_overlap_parcels_as_the_truth_says(small: Path) -> None:
    plates = gpd.read_file(small / "plates" / "plates.geojson")
    overlaps = _rows(small / "truth" / "plate_overlaps.csv")
    assert len(plates) >= 20 and overlaps
    per_plate = Counter(o["plate"] for o in overlaps)
    assert len(per_plate) >= 0.9 * len(plates)
    assert any(n >= 2 for n in per_plate.values())  # unions and shifted plots touch neighbours
    assert all(0 < float(o["share_of_plate"]) <= 1.0001 for o in overlaps)
