"""Parcel ingestion: formats, encodings, CRS cases, validation codes, versioned publish,
concurrency and bad input, on real PostGIS with the generator's files."""

from __future__ import annotations

import csv
import io
import json
import threading
import warnings
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box
from sqlalchemy import text

from data.generator import generate
from geo.errors import GeoError
from geo.geodata.crs import transformer, utm_epsg
from geo.geodata.parcels import ingest as ingest_module
from geo.geodata.parcels import readers, upload_file
from geo.geodata.parcels.errors import UploadRejected
from geo.geodata.parcels.ingest import IngestOptions, create_upload, process_upload, publish_upload
from geo.geodata.persian import match_key
from geo.geodata.registry import import_edition
from geo.platform.database import Database


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parcels") / "small"
    generate(out, "small", seed=5)
    return out


@pytest.fixture(scope="module")
def url(module_db_url: str, world: Path) -> str:
    import_edition(
        Database(module_db_url), "hf", "1402", (world / "lists/hf_villages_1402.csv").read_bytes()
    )
    return module_db_url


def _facts(world: Path) -> list[dict[str, str]]:
    with (world / "truth/parcel_files.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _run(url: str, raw: bytes, name: str, **options: object) -> dict:
    upload_id = create_upload(Database(url), raw, name, IngestOptions(**options))  # type: ignore[arg-type]
    try:
        return process_upload(Database(url), upload_id)
    except GeoError:
        with Database(url).connect() as c:
            return ingest_module.get_upload(c, upload_id)


def _current(url: str, code: str) -> int:
    with Database(url).connect() as c:
        return c.execute(
            text("SELECT count(*) FROM parcel WHERE village_code = :c AND valid_to IS NULL"),
            {"c": code},
        ).scalar_one()


def _truth_parcels(world: Path, code: str) -> gpd.GeoDataFrame:
    frame = gpd.read_file(world / "truth/parcels.gpkg", layer="parcels")
    return frame[frame["CODE_HF"] == code].reset_index(drop=True)


def _village(url: str, code: str) -> tuple[float, float]:
    with Database(url).connect() as c:
        return c.execute(
            text("SELECT ST_X(point), ST_Y(point) FROM division WHERE code = :c"), {"c": code}
        ).one()


# -- formats, encodings, CRS -------------------------------------------------------------------
def test_every_generated_file_reads_with_the_right_crs_and_defects(url: str, world: Path) -> None:
    for f in _facts(world):
        state = _run(url, (world / "parcels" / f["file"]).read_bytes(), f["file"], dry_run=True)
        report = state["report"]
        codes = set(report["summary"]["by_code"])
        assert state["detected_crs"] == f"EPSG:{f['epsg']}" or f["has_prj"] == "0", f
        assert report["crs"]["source"] == ("prj" if f["has_prj"] == "1" else "inferred")
        expected = {
            "self_intersection": "invalid_geometry",
            "duplicate_number": "duplicate_parcel_no",
            "overlap": "overlap",
            "outside_zone": "outside_zone",
            "area_mismatch": "area_mismatch",
        }
        for defect in f["defects"].split():
            assert expected[defect] in codes, (f, codes)
        assert state["status"] == (
            "invalid" if set(f["defects"].split()) - {"area_mismatch"} else "validated"
        ), (f, codes)
        assert state["village_code"] == f["hf_code"]


def test_windows_1256_text_without_cpg_is_read(url: str, world: Path) -> None:
    f = next(f for f in _facts(world) if f["encoding"] == "CP1256" and not f["defects"])
    state = _run(url, (world / "parcels" / f["file"]).read_bytes(), f["file"], dry_run=True)
    assert state["report"]["encoding"] == "CP1256"
    with Database(url).connect() as c:
        uses = set(
            c.execute(
                text("SELECT land_use FROM parcel_stage WHERE upload_id = :u"), {"u": state["id"]}
            ).scalars()
        )
    assert match_key("مسکونی") in {match_key(u) for u in uses if u}


def test_geojson_and_positions_match_the_truth(url: str, world: Path) -> None:
    f = next(f for f in _facts(world) if not f["defects"] and f["epsg"].startswith("205"))
    truth = _truth_parcels(world, f["hf_code"])
    state = _run(url, (world / "parcels" / f["file"]).read_bytes(), f["file"], dry_run=True)
    with Database(url).connect() as c:
        staged = gpd.read_postgis(
            text(
                "SELECT parcel_no, geom FROM parcel_stage WHERE upload_id"
                " = :u AND layer = 'parcels'"
            ),
            c,
            params={"u": state["id"]},
            geom_col="geom",
        )
    merged = staged.merge(truth, left_on="parcel_no", right_on="SHOMARE")
    utm = utm_epsg(truth.geometry.iloc[0].centroid.x)
    shift = merged.geom.to_crs(utm).centroid.distance(
        gpd.GeoSeries(merged.geometry, crs=4326).to_crs(utm).centroid
    )
    assert len(merged) == len(truth) and shift.max() < 1.0  # ED50(ED77) shift pinned right
    geojson = truth.to_json().encode()
    state = _run(url, geojson, "parcels.geojson", dry_run=True)
    assert state["report"]["format"] == "geojson" and state["status"] == "validated"


def test_missing_prj_is_inferred_and_an_override_wins(url: str, world: Path) -> None:
    f = next(
        f
        for f in _facts(world)
        if f["file"].endswith(".zip")
        and f["has_prj"] == "1"
        and f["epsg"].startswith("326")
        and not f["defects"]
    )
    raw = (world / "parcels" / f["file"]).read_bytes()
    stripped = _rezip(raw, drop=(".prj",))
    state = _run(url, stripped, f["file"], dry_run=True)
    assert state["crs_source"] == "inferred" and state["detected_crs"] == f"EPSG:{f['epsg']}"
    assert state["report"]["crs"]["candidates"]
    state = _run(url, stripped, f["file"], dry_run=True, crs=int(f["epsg"]))
    assert state["crs_source"] == "override"


def _rezip(raw: bytes, drop: tuple[str, ...] = (), add: dict[str, bytes] | None = None) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(raw))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            if not info.filename.endswith(drop):
                out.writestr(info.filename, src.read(info))
        for name, data in (add or {}).items():
            out.writestr(name, data)
    return buf.getvalue()


# -- validation codes --------------------------------------------------------------------------
def _crafted(
    url: str, world: Path, row: dict[str, str] | None = None
) -> tuple[str, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A village of the HF list (the first with a location, or ``row``) and a small map
    around it, in its UTM zone."""
    if row is None:
        with (world / "lists/hf_villages_1402.csv").open(encoding="utf-8") as f:
            row = next(r for r in csv.DictReader(f) if r["level"] == "village" and r["lat"])
    lon, lat = float(row["lon"]), float(row["lat"])
    epsg = utm_epsg(lon)
    x0, y0 = transformer(4326, epsg).transform(lon, lat)
    cells = [box(x0 + i * 30, y0, x0 + i * 30 + 25, y0 + 25) for i in range(6)]
    parcels = gpd.GeoDataFrame(
        {
            "SHOMARE": [str(i) for i in range(1, 7)],
            "KARBARI": ["مسکونی"] * 6,
            "MASAHAT": [625.0] * 6,
        },
        geometry=cells,
        crs=epsg,
    )
    zone = gpd.GeoDataFrame(
        {"NAME": ["zone"]}, geometry=[box(x0 - 5, y0 - 5, x0 + 185, y0 + 35)], crs=epsg
    )
    return row["code"], parcels, zone


def _gpkg(parcels: gpd.GeoDataFrame, zone: gpd.GeoDataFrame | None, tmp: Path) -> bytes:
    path = tmp / "map.gpkg"
    path.unlink(missing_ok=True)
    parcels.to_file(path, layer="parcels", driver="GPKG")
    if zone is not None:
        zone.to_file(path, layer="zone", driver="GPKG")
    return path.read_bytes()


def test_every_validation_code(url: str, world: Path, tmp_path: Path) -> None:
    code, parcels, zone = _crafted(url, world)
    clean = _run(url, _gpkg(parcels, zone, tmp_path), "clean.gpkg", dry_run=True)
    assert clean["status"] == "validated", clean["report"]["findings"][:3]
    assert set(clean["report"]["summary"]["by_code"]) == {"zone_gaps"}
    bad = parcels.copy()
    minx, miny = bad.geometry[0].bounds[:2]
    bad.loc[0, "geometry"] = Polygon(
        [(minx, miny), (minx + 20, miny + 20), (minx + 20, miny), (minx, miny + 20)]
    )  # bowtie
    bad.loc[1, "SHOMARE"] = "3"  # duplicate of parcel 3
    bad.loc[2, "geometry"] = shapely.affinity.translate(bad.geometry[3], -10, 0)  # overlaps 4
    bad.loc[4, "geometry"] = shapely.affinity.translate(bad.geometry[4], 0, 300)  # outside
    bad.loc[5, "MASAHAT"] = 2000.0  # declared far off
    report = _run(url, _gpkg(bad, zone, tmp_path), "bad.gpkg", dry_run=True)["report"]
    codes = report["summary"]["by_code"]
    for expected in (
        "invalid_geometry",
        "duplicate_parcel_no",
        "overlap",
        "outside_zone",
        "area_mismatch",
        "zone_gaps",
    ):
        assert expected in codes, (expected, codes)
    invalid = next(f for f in report["findings"] if f["code"] == "invalid_geometry")
    assert "Self-intersection" in invalid["message"] and invalid["location"].startswith("POINT")
    assert not report["valid"]
    repaired = _run(
        url, _gpkg(bad.iloc[[0]], zone, tmp_path), "one.gpkg", dry_run=True, repair=True
    )["report"]
    assert "repaired_geometry" in repaired["summary"]["by_code"] and repaired["valid"]
    odd = gpd.GeoDataFrame(
        {"SHOMARE": ["1", None], "KARBARI": ["باغ", "باغ"]},
        geometry=[Point(parcels.geometry[0].centroid), parcels.geometry[1]],
        crs=parcels.crs,
    )
    report = _run(url, _gpkg(odd, None, tmp_path), "odd.gpkg", dry_run=True)["report"]
    assert {"wrong_geometry_type", "missing_parcel_no", "no_zone"} <= set(
        report["summary"]["by_code"]
    )
    solid = gpd.GeoDataFrame(
        parcels.drop(columns="geometry"),
        geometry=shapely.force_3d(parcels.geometry.values),
        crs=parcels.crs,
    )
    report = _run(url, _gpkg(solid, zone, tmp_path), "z.gpkg", dry_run=True)["report"]
    assert report["summary"]["by_code"].get("z_dropped") == 1 and report["valid"]
    assert code


# -- publish -----------------------------------------------------------------------------------
def test_publish_versions_unchanged_and_changes(url: str, world: Path, tmp_path: Path) -> None:
    code, parcels, zone = _crafted(url, world)
    first = _run(url, _gpkg(parcels, zone, tmp_path), "v1.gpkg")
    assert first["status"] == "published" and _current(url, code) == 6
    again = _run(url, _gpkg(parcels, zone, tmp_path), "v1-again.gpkg")
    assert again["report"]["published"] == {"insert": 0, "update": 0, "delete": 0, "zone": 0}
    # the same map once exported through lon/lat: its coordinates differ in the last bits
    trip = parcels.to_crs(4326).to_crs(parcels.crs)
    assert not (trip.geometry.to_wkb() == parcels.geometry.to_wkb()).all()
    same = _run(url, _gpkg(trip, zone.to_crs(4326).to_crs(zone.crs), tmp_path), "trip.gpkg")
    assert same["report"]["published"] == {"insert": 0, "update": 0, "delete": 0, "zone": 0}
    # the same land uses spelt with Arabic ي (as some exports write them): no change
    spelt = parcels.assign(KARBARI=parcels["KARBARI"].str.replace("ی", "ي"))
    arabic = _run(url, _gpkg(spelt, zone, tmp_path), "v1-arabic.gpkg")
    assert arabic["report"]["published"] == {"insert": 0, "update": 0, "delete": 0, "zone": 0}
    moved = parcels.copy()
    moved.loc[3, "geometry"] = shapely.affinity.translate(moved.geometry[3], 0.5, 0)  # 50 cm
    nudged = _run(url, _gpkg(moved, zone, tmp_path), "v1-moved.gpkg")
    assert nudged["report"]["published"] == {"insert": 0, "update": 1, "delete": 0, "zone": 0}
    back = _run(url, _gpkg(parcels, zone, tmp_path), "v1-back.gpkg")
    assert back["report"]["published"] == {"insert": 0, "update": 1, "delete": 0, "zone": 0}
    v2 = parcels.copy()
    v2.loc[0, "KARBARI"] = "تجاری"
    v2 = v2.drop(index=5)
    v2.loc[9] = ["9", "باغ", 400.0, box(*v2.geometry[1].bounds).buffer(-1).centroid.buffer(5)]
    v2 = v2.drop(index=1)
    # two of the village's six parcels removed: more than 20%, so it must be confirmed
    refused = _run(url, _gpkg(v2, zone, tmp_path), "v2.gpkg")
    assert refused["status"] == "failed" and refused["report"]["error"] == "mass_removal"
    assert refused["report"]["villages"] == [{"village": code, "current": 6, "removed": 2}]
    assert _current(url, code) == 6  # nothing of it published
    second = _run(url, _gpkg(v2, zone, tmp_path), "v2.gpkg", confirm_removals=True)
    assert second["report"]["published"] == {"insert": 1, "update": 1, "delete": 2, "zone": 0}
    with Database(url).connect() as c:
        rows = c.execute(
            text(
                "SELECT operation, count(*) FROM change_event"
                " WHERE cause->>'upload' = :u GROUP BY 1"
            ),
            {"u": str(second["id"])},
        ).all()
        assert dict(rows) == {"insert": 1, "update": 1, "delete": 2}
        before = c.execute(
            text(
                "SELECT before->>'land_use', after->>'land_use' FROM change_event"
                " WHERE operation = 'update' AND cause->>'upload' = :u"
            ),
            {"u": str(second["id"])},
        ).one()
        assert before == ("مسکونی", "تجاری")
        history = c.execute(
            text(
                "SELECT land_use, valid_to IS NULL FROM parcel WHERE village_code = :c"
                " AND parcel_no = '1' ORDER BY valid_from"
            ),
            {"c": code},
        ).all()
        assert [tuple(h) for h in history][-2:] == [("مسکونی", False), ("تجاری", True)]
    assert _current(url, code) == 5


def test_two_uploads_for_one_village_at_once_are_serialized(
    url: str, world: Path, tmp_path: Path
) -> None:
    code, parcels, zone = _crafted(url, world)
    a = parcels.copy()
    a["KARBARI"] = "اداری"
    b = parcels.copy()
    b["KARBARI"] = "آموزشی"
    ids = []
    for frame, name in ((a, "a.gpkg"), (b, "b.gpkg")):
        upload_id = create_upload(
            Database(url), _gpkg(frame, zone, tmp_path), name, IngestOptions(dry_run=True)
        )
        process_upload(Database(url), upload_id)
        ids.append(upload_id)
    errors: list[BaseException] = []

    def go(upload_id: int) -> None:
        try:
            publish_upload(Database(url), upload_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with Database(url).connect() as c:
        current = (
            c.execute(
                text(
                    "SELECT DISTINCT land_use FROM parcel WHERE village_code = :c"
                    " AND valid_to IS NULL"
                ),
                {"c": code},
            )
            .scalars()
            .all()
        )
        changes = c.execute(
            text("SELECT count(*) FROM change_event WHERE cause->>'upload' = ANY(:u)"),
            {"u": [str(i) for i in ids]},
        ).scalar_one()
        published = [ingest_module.get_upload(c, i)["report"]["published"] for i in ids]
    assert len(current) == 1 and current[0] in {"اداری", "آموزشی"}
    assert changes == sum(p["insert"] + p["update"] + p["delete"] + p["zone"] for p in published)
    # whichever came second applied on top of the first: six land uses changed, none lost
    assert {"insert": 0, "update": 6, "delete": 0, "zone": 0} in published
    assert _current(url, code) == 6


def test_a_failure_mid_publish_leaves_the_map_intact(
    url: str, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, parcels, zone = _crafted(url, world)
    _run(url, _gpkg(parcels, zone, tmp_path), "base.gpkg")
    before = _current(url, code)
    changed = parcels.copy()
    changed["KARBARI"] = "ورزشی"
    upload_id = create_upload(
        Database(url), _gpkg(changed, zone, tmp_path), "crash.gpkg", IngestOptions(dry_run=True)
    )
    process_upload(Database(url), upload_id)
    real = ingest_module.publish_stage

    def crash(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)
        raise RuntimeError("worker killed")

    monkeypatch.setattr(ingest_module, "publish_stage", crash)
    with pytest.raises(RuntimeError):
        publish_upload(Database(url), upload_id)
    with Database(url).connect() as c:
        uses = set(
            c.execute(
                text("SELECT land_use FROM parcel WHERE village_code = :c AND valid_to IS NULL"),
                {"c": code},
            ).scalars()
        )
        assert "ورزشی" not in uses and _current(url, code) == before
        assert ingest_module.get_upload(c, upload_id)["status"] == "validated"
    monkeypatch.setattr(ingest_module, "publish_stage", real)
    assert publish_upload(Database(url), upload_id)["status"] == "published"  # and it resumes


# -- bad input ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda raw: b"", "empty_file"),
        (lambda raw: b"PK\x03\x04 not really a zip", "corrupt_zip"),
        (lambda raw: b"hello, world", "unknown_format"),
        (lambda raw: _rezip(raw, drop=(".shx",)), "incomplete_shapefile"),
        (lambda raw: _rezip(raw, drop=(".dbf",)), "incomplete_shapefile"),
        (lambda raw: _rezip(raw, add={"../evil.txt": b"x"}), "zip_unsafe_path"),
        (lambda raw: _rezip(raw, add={"/etc/evil.txt": b"x"}), "zip_unsafe_path"),
        (lambda raw: _rezip(raw, drop=(".shp", ".shx", ".dbf", ".prj", ".cpg")), "no_shapefile"),
    ],
)
def test_bad_files_fail_clearly_and_change_nothing(url: str, world: Path, make, code: str) -> None:  # type: ignore[no-untyped-def]
    f = next(f for f in _facts(world) if f["file"].endswith(".zip"))
    raw = (world / "parcels" / f["file"]).read_bytes()
    before = _current(url, f["hf_code"])
    state = _run(url, make(raw), f["file"])
    assert state["status"] == "failed" and state["report"]["error"] == code
    assert _current(url, f["hf_code"]) == before


def test_zip_bombs_are_refused(url: str, world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "MAX_EXPANDED", 10_000)
    f = next(f for f in _facts(world) if f["file"].endswith(".zip"))
    state = _run(url, (world / "parcels" / f["file"]).read_bytes(), f["file"])
    assert state["report"]["error"] == "zip_too_large"


def test_a_zip_bomb_is_refused_before_it_is_extracted(url: str, tmp_path: Path) -> None:
    """Issue 22, finding 14: a zip of ~300 KB expanding to 300 MB (1,000:1) is refused on
    the sizes it declares, nothing extracted (it was accepted, 36 s of worker time)."""
    import time

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("map.shp", b"\0" * 100)
        z.writestr("map.shx", b"\0" * 100)
        with z.open("map.dbf", "w") as member:
            zeros = b"\0" * (1024 * 1024)
            for _ in range(300):
                member.write(zeros)
    assert bomb.stat().st_size < 1024 * 1024
    started = time.monotonic()
    state = _run(url, bomb.read_bytes(), "bomb.zip")
    assert state["report"]["error"] == "zip_bomb"
    assert time.monotonic() - started < 10


def test_unknown_and_mismatched_villages(url: str, world: Path, tmp_path: Path) -> None:
    code, parcels, zone = _crafted(url, world)
    raw = _gpkg(parcels, zone, tmp_path)
    assert _run(url, raw, "x.gpkg", village="hf:99999999")["report"]["error"] == "unknown_village"
    with Database(url).connect() as c:
        far = c.execute(
            text(
                "SELECT code FROM division WHERE level = 'village' AND point IS NOT"
                " NULL ORDER BY point <-> ST_SetSRID(ST_MakePoint(:x, :y), 4326)"
                " DESC LIMIT 1"
            ),
            dict(zip(("x", "y"), _village(url, code), strict=True)),
        ).scalar_one()
    state = _run(url, raw, "x.gpkg", village=f"hf:{far}")
    assert state["report"]["error"] == "village_mismatch"
    assert MultiPolygon  # imported for readers of this file


def test_http_upload_dry_run_then_publish(url: str, world: Path, tmp_path: Path) -> None:
    from geo.platform.jobs import run_worker
    from tests.helpers import client_for

    client = client_for(url, role="uploader", agency="hf")
    code, parcels, zone = _crafted(url, world)
    parcels["KARBARI"] = "درمانی"
    r = client.post(
        "/uploads",
        data={
            "file": (io.BytesIO(_gpkg(parcels, zone, tmp_path)), "m.gpkg"),
            "dry_run": "true",
            "village": f"hf:{code}",
        },
        content_type="multipart/form-data",
    )
    assert r.status_code == 202
    upload_id = r.get_json()["upload_id"]
    run_worker(Database(url), wait=False)
    state = client.get(f"/uploads/{upload_id}").get_json()
    assert state["status"] == "validated" and state["progress"] == 1.0
    assert state["report"]["village"] == {"agency": "hf", "code": code}
    r = client.post(f"/uploads/{upload_id}/publish")
    assert r.status_code == 202
    run_worker(Database(url), wait=False)
    state = client.get(f"/uploads/{upload_id}").get_json()
    published = state["report"]["published"]
    assert state["status"] == "published" and published["insert"] + published["update"] == 6
    again = client.post(f"/uploads/{upload_id}/publish")
    assert again.status_code == 409 and again.get_json()["code"] == "not_validated"
    r = client.post("/uploads", data={}, content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["field"] == "file"
    r = client.post(
        "/uploads",
        data={"file": (io.BytesIO(b"x"), "a.zip"), "crs": "UTM"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 400 and r.get_json()["field"] == "crs"
    assert client.get("/uploads/999999").status_code == 404


def test_other_attributes_are_kept_as_json_whatever_their_text(
    url: str, world: Path, tmp_path: Path
) -> None:
    _code, parcels, zone = _crafted(url, world)
    extra = parcels.copy()
    extra["NAME"] = ['say "hi"', "back\\slash", "tab\there", "  ", None, "نیم‌فاصله"]
    extra["SERIAL"] = [1, 2, 3, 4, 5, 6]
    state = _run(url, _gpkg(extra, zone, tmp_path), "attrs.gpkg", dry_run=True)
    assert state["status"] == "validated", state["report"]["findings"][:3]
    with Database(url).connect() as c:
        stored = c.execute(
            text(
                "SELECT attrs FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels'"
                " ORDER BY feature"
            ),
            {"u": state["id"]},
        ).scalars()
        got = list(stored)
    names = ['say "hi"', "back\\slash", "tab\there", None, None, "نیم‌فاصله"]
    assert got == [
        {**({"NAME": name} if name else {}), "SERIAL": str(i + 1)} for i, name in enumerate(names)
    ]


def test_a_mapping_names_other_fields_and_the_village_comes_from_the_location(
    url: str, world: Path, tmp_path: Path
) -> None:
    code, parcels, zone = _crafted(url, world)
    renamed = parcels.rename(columns={"SHOMARE": "PLAK", "KARBARI": "USE_FA"})
    missing = _run(url, _gpkg(renamed, zone, tmp_path), "r.gpkg", dry_run=True)
    assert missing["status"] == "failed" and missing["report"]["error"] == "missing_field"
    state = _run(
        url,
        _gpkg(renamed, zone, tmp_path),
        "r.gpkg",
        dry_run=True,
        mapping={"parcel_no": "PLAK", "land_use": "USE_FA"},
    )
    assert state["status"] == "validated"
    assert state["report"]["fields"]["parcel_no"] == "PLAK"
    assert state["village_code"] == code  # no village given, no code field: found by location


def test_one_file_with_many_villages(url: str, world: Path, tmp_path: Path) -> None:
    facts = _facts(world)
    parcels = gpd.read_file(world / "truth/parcels.gpkg", layer="parcels")
    zones = gpd.read_file(world / "truth/parcels.gpkg", layer="zones")
    whole = _run(url, (world / "truth/parcels.gpkg").read_bytes(), "national.gpkg", dry_run=True)
    assert whole["report"]["villages"] == len(facts) and whole["village_code"] is None
    assert whole["status"] == "invalid"  # the planted defects are found across villages
    clean = {f["hf_code"] for f in facts if not f["defects"]}
    path = tmp_path / "clean.gpkg"
    parcels[parcels["CODE_HF"].isin(clean)].to_file(path, layer="parcels", driver="GPKG")
    zones[zones["CODE_HF"].isin(clean)].to_file(path, layer="zones", driver="GPKG")
    state = _run(url, path.read_bytes(), "clean.gpkg")
    assert state["status"] == "published", state["report"]["summary"]
    assert state["report"]["published"]["zone"] == len(clean)
    for f in facts:
        if f["hf_code"] in clean:
            assert _current(url, f["hf_code"]) == int(f["parcels"])


def test_an_unknown_village_code_is_that_villages_finding(
    url: str, world: Path, tmp_path: Path
) -> None:
    """In a file of many villages, a code HF's list lacks is a finding of that village's
    features; the file is read to its end and the other villages' findings reported too."""
    facts = _facts(world)
    clean = [f["hf_code"] for f in facts if not f["defects"]][:3]
    parcels = gpd.read_file(world / "truth/parcels.gpkg", layer="parcels")
    mine = parcels[parcels["CODE_HF"].isin(clean)].copy()
    wrong = mine["CODE_HF"] == clean[1]
    mine.loc[wrong, "CODE_HF"] = "99999999999999"  # a typo in one village's code
    mine.loc[mine["CODE_HF"] == clean[2], "SHOMARE"] = "7"  # and duplicates in another
    path = tmp_path / "three.gpkg"
    mine.to_file(path, layer="parcels", driver="GPKG")
    before = _current(url, clean[0])
    state = _run(url, path.read_bytes(), "three.gpkg")
    assert state["status"] == "invalid", state["report"]
    report = state["report"]
    assert report["villages"] == 3
    unknown = [f for f in report["findings"] if f["code"] == "unknown_village"]
    assert [f["village"] for f in unknown] == ["99999999999999"], unknown
    assert unknown[0]["level"] == "error" and unknown[0]["location"].startswith("POINT(")
    assert report["summary"]["by_code"]["duplicate_parcel_no"] > 0
    assert _current(url, clean[0]) == before  # nothing published from an invalid file


def test_a_local_file_is_stored_while_it_is_read(url: str, world: Path, tmp_path: Path) -> None:
    import hashlib

    # (before the test below imports another HF edition that moves this village)
    _code, parcels, zone = _crafted(url, world)
    raw = _gpkg(parcels, zone, tmp_path)
    path = tmp_path / "map.gpkg"
    # as the command line records it: the row first, the file stored beside the ingest
    upload_id = create_upload(
        Database(url), path, "local.gpkg", IngestOptions(dry_run=True), store=False
    )
    with Database(url).connect() as c:
        assert ingest_module.get_upload(c, upload_id)["file_size"] is None
    state = process_upload(Database(url), upload_id, path=path)
    assert state["status"] == "validated"
    assert state["file_size"] == len(raw) and state["checksum"] == hashlib.sha256(raw).hexdigest()
    back = upload_file.fetch_file(Database(url), upload_id, tmp_path / "back.gpkg")
    assert back.read_bytes() == raw
    # a worker given such an upload has nothing to read: a clear error, not a guess
    orphan = create_upload(
        Database(url), path, "lost.gpkg", IngestOptions(dry_run=True), store=False
    )
    with pytest.raises(UploadRejected) as caught:
        process_upload(Database(url), orphan)
    assert caught.value.code == "file_missing"
    with Database(url).connect() as c:
        assert ingest_module.get_upload(c, orphan)["status"] == "failed"


def test_a_worker_killed_mid_ingest_leaves_the_map_intact_and_the_job_resumes(
    fresh_url: str, tmp_path: Path
) -> None:
    # its own database: the sample's HF edition it imports must not become the edition in
    # force for the module's other tests
    url = fresh_url
    import os
    import signal
    import subprocess
    import sys
    import time

    import geo.geodata.parcels.jobs  # noqa: F401  (the ingest job, for the worker run here)
    from data.sample import ensure_sample_files
    from geo.platform.config import settings
    from geo.platform.jobs import enqueue, recover_stalled, run_worker

    sample = ensure_sample_files(settings().sample_dir, echo=lambda _m: None)
    import_edition(
        Database(url), "hf", "sample-1402", (sample / "lists/hf_villages_1402.csv").read_bytes()
    )
    with (sample / "truth/parcel_files.csv").open(encoding="utf-8") as f:
        bad = {r["hf_code"] for r in csv.DictReader(f) if r["defects"]}
    path = tmp_path / "many.gpkg"
    for layer in ("parcels", "zones"):
        frame = gpd.read_file(sample / "truth/parcels.gpkg", layer=layer)
        frame[~frame["CODE_HF"].isin(bad)].to_file(path, layer=layer, driver="GPKG")
    with Database(url).connect() as c:
        before = c.execute(text("SELECT count(*) FROM parcel WHERE valid_to IS NULL")).scalar_one()
    upload_id = create_upload(Database(url), path.read_bytes(), path.name, IngestOptions())
    with Database(url).begin() as conn:
        enqueue(conn, "tagsim:parcel_ingest", kind="parcel_ingest", upload_id=upload_id)
    worker = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "worker"],
        env={**os.environ, "TAGSIM_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Database(url).connect() as c:
                state = ingest_module.get_upload(c, upload_id)
            if state["status"] in {"validating", "publishing"} and state["progress"] >= 0.3:
                break
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
    finally:
        worker.wait(timeout=30)
    with Database(url).connect() as c:
        state = ingest_module.get_upload(c, upload_id)
        after = c.execute(text("SELECT count(*) FROM parcel WHERE valid_to IS NULL")).scalar_one()
    assert state["status"] in {"validating", "publishing"}  # killed mid-way
    assert after == before  # nothing half-published
    assert recover_stalled(Database(url), seconds=0) == 1
    run_worker(Database(url), wait=False)
    with Database(url).connect() as c:
        assert ingest_module.get_upload(c, upload_id)["status"] == "published"


def test_a_large_file_is_stored_and_read_back_in_chunks(
    url: str, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    monkeypatch.setattr(upload_file, "CHUNK", 4096)
    raw = (world / "truth/parcels.gpkg").read_bytes()
    upload_id = create_upload(
        Database(url), io.BytesIO(raw), "national.gpkg", IngestOptions(dry_run=True)
    )
    with Database(url).connect() as c:
        chunks = c.execute(
            text("SELECT count(*) FROM upload_file WHERE upload_id = :u"), {"u": upload_id}
        ).scalar_one()
        up = ingest_module.get_upload(c, upload_id)
    assert chunks == -(-len(raw) // 4096) > 1 and up["file_size"] == len(raw)
    assert up["checksum"] == hashlib.sha256(raw).hexdigest()
    # what a worker reads back (every upload without a local path goes this way)
    back = upload_file.fetch_file(Database(url), upload_id, tmp_path / "back.gpkg")
    assert back.read_bytes() == raw


def _crash_after(step: Any) -> Any:
    def crashed(*args: Any, **kwargs: Any) -> Any:
        step(*args, **kwargs)
        raise RuntimeError("the process died here")

    return crashed


def _upload_counts(url: str) -> tuple[int, int, int]:
    with Database(url).connect() as c:
        return (
            c.execute(text("SELECT count(*) FROM upload")).scalar_one(),
            c.execute(text("SELECT count(*) FROM upload_file")).scalar_one(),
            c.execute(text("SELECT count(*) FROM procrastinate_jobs")).scalar_one(),
        )


@pytest.mark.parametrize("step", ["row", "file", "job", "job_id"])
def test_a_crash_between_any_two_steps_of_post_uploads_leaves_nothing(
    url: str, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    import api.uploads
    from tests.helpers import client_for

    client = client_for(url, role="uploader", agency="hf")
    _code, parcels, zone = _crafted(url, world)
    payload = _gpkg(parcels, zone, tmp_path)
    if step == "row":  # the row inserted, its file not yet stored
        monkeypatch.setattr(ingest_module, "store_file", _crash_after(lambda *a: None))
    elif step == "file":  # row and file stored, no job yet
        monkeypatch.setattr(api.uploads, "enqueue", _crash_after(lambda *a, **k: None))
    elif step == "job":  # the job queued, its id not yet on the upload
        monkeypatch.setattr(api.uploads, "attach_job", _crash_after(lambda *a: None))
    else:  # everything written, the commit not made
        monkeypatch.setattr(api.uploads, "attach_job", _crash_after(api.uploads.attach_job))
    before = _upload_counts(url)
    r = client.post(
        "/uploads",
        data={"file": (io.BytesIO(payload), "m.gpkg"), "dry_run": "true"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 500 and r.get_json()["code"] == "internal_error"
    assert _upload_counts(url) == before
    monkeypatch.undo()  # and the same request, uninterrupted, stores all three together
    r = client.post(
        "/uploads",
        data={"file": (io.BytesIO(payload), "m.gpkg"), "dry_run": "true"},
        content_type="multipart/form-data",
    )
    assert r.status_code == 202
    uploads, chunks, jobs = _upload_counts(url)
    assert (uploads, jobs) == (before[0] + 1, before[2] + 1) and chunks > before[1]
    with Database(url).connect() as c:
        job_of_upload = c.execute(
            text("SELECT job_id FROM upload WHERE id = :u"), {"u": r.get_json()["upload_id"]}
        ).scalar_one()
    assert job_of_upload == r.get_json()["job_id"]


def test_a_dry_run_that_would_wipe_a_village_out_is_published_only_when_confirmed(
    url: str, world: Path, tmp_path: Path
) -> None:
    """Issue 22, finding 9: one parcel of a million vertices for a village of many is
    refused (too_many_vertices); one plain big parcel for it is refused at publish
    (mass_removal, kept in the report) until the publish is confirmed."""
    with (world / "lists/hf_villages_1402.csv").open(encoding="utf-8") as f:
        placed = [r for r in csv.DictReader(f) if r["level"] == "village" and r["lat"]]
    code, parcels, zone = _crafted(url, world, placed[2])  # a village of its own
    assert _run(url, _gpkg(parcels, zone, tmp_path), "wipe-v1.gpkg")["status"] == "published"
    ring = zone.geometry.iloc[0].centroid.buffer(15, quad_segs=5_100)  # 20,401 vertices
    huge = parcels.iloc[:1].copy()
    huge.loc[huge.index[0], "geometry"] = ring
    many = _run(url, _gpkg(huge, zone, tmp_path), "wipe-huge.gpkg", dry_run=True)
    codes = many["report"]["summary"]["by_code"]
    assert many["status"] == "invalid" and "too_many_vertices" in codes, codes
    one = parcels.iloc[:1].copy()
    dry = _run(url, _gpkg(one, zone, tmp_path), "wipe-one.gpkg", dry_run=True)
    assert dry["status"] == "validated"
    with pytest.raises(UploadRejected, match="remove 5 of the 6 parcels"):
        publish_upload(Database(url), dry["id"])
    with Database(url).connect() as c:
        state = ingest_module.get_upload(c, dry["id"])
    assert state["status"] == "validated"
    assert state["report"]["publish_refused"]["code"] == "mass_removal"
    assert _current(url, code) == 6
    done = publish_upload(Database(url), dry["id"], confirm_removals=True)
    assert done["status"] == "published" and _current(url, code) == 1


def test_unclosed_rings_and_wrong_cpg_are_coded_findings(
    url: str, world: Path, tmp_path: Path
) -> None:
    """Issue 22, finding 12: these failed as internal_error (GEOSException, ArrowInvalid)."""
    code, parcels, _zone = _crafted(url, world)
    lonlat = parcels.to_crs(4326)
    features = []
    for i, (no, geom) in enumerate(zip(lonlat["SHOMARE"], lonlat.geometry, strict=True)):
        ring = [list(xy) for xy in geom.exterior.coords]
        features.append(
            {
                "type": "Feature",
                "properties": {"SHOMARE": no},
                "geometry": {"type": "Polygon", "coordinates": [ring[:-1] if i == 2 else ring]},
            }
        )
    raw = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    opened = _run(url, raw, "open.geojson", dry_run=True, village=f"hf:{code}")
    assert opened["status"] == "invalid", opened["report"]
    found = [f for f in opened["report"]["findings"] if f["code"] == "unclosed_ring"]
    assert [f["parcel_no"] for f in found] == ["3"] and found[0]["location"]
    folder = tmp_path / "cpg"
    folder.mkdir()
    parcels.assign(KARBARI="باغ").to_file(folder / "m.shp", encoding="cp1256")
    (folder / "m.cpg").write_text("UTF-8")
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as z:
        for part in folder.iterdir():
            z.write(part, part.name)
    said = _run(url, zipped.getvalue(), "cpg.zip", dry_run=True, village=f"hf:{code}")
    assert said["status"] == "validated", said["report"]
    assert any(n.startswith("encoding_mismatch") for n in said["report"]["notes"])
    with Database(url).connect() as c:
        uses = set(
            c.execute(
                text("SELECT land_use FROM parcel_stage WHERE upload_id = :u"), {"u": said["id"]}
            ).scalars()
        )
    assert uses == {"باغ"}  # read right, as Windows-1256


def test_a_bare_shapefile_with_truncated_field_names_goes_in_end_to_end(
    url: str, world: Path, tmp_path: Path, fresh_url: str
) -> None:
    """As a GIS office exports it: a tiling (neighbours share edges), a .shp with its .shx,
    .dbf and .prj beside it, field names cut to 10 characters by the DBF."""
    from click.testing import CliRunner

    from api.cli import main

    code, parcels, _zone = _crafted(url, world)
    x0, y0, x1, y1 = parcels.total_bounds
    frame = box(x0, y0, x1, y1)
    rng = np.random.default_rng(3)
    seeds = shapely.multipoints(
        shapely.points(
            np.column_stack([x0 + rng.random(40) * (x1 - x0), y0 + rng.random(40) * (y1 - y0)])
        )
    )
    cells = shapely.intersection(
        shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=frame)), frame
    )
    tiling = gpd.GeoDataFrame(
        {
            "village_code": [code] * len(cells),  # written as VILLAGE_CO
            "parcel_number": [str(i + 1) for i in range(len(cells))],  # PARCEL_NUM
            "landuse_type": ["مسکونی"] * len(cells),  # LANDUSE_TY
        },
        geometry=list(cells),
        crs=parcels.crs,
    )
    folder = tmp_path / "export"
    folder.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GDAL says it truncates the names: that is the point
        tiling.to_file(folder / "Parcels.shp", engine="pyogrio")
    assert {"VILLAGE_CO", "PARCEL_NUM", "LANDUSE_TY"} <= {
        c.upper() for c in gpd.read_file(folder / "Parcels.shp").columns
    }
    done = CliRunner().invoke(
        main,
        ["parcels", "ingest", str(folder / "Parcels.shp"), "--dry-run"],
        env={"TAGSIM_DATABASE_URL": url},
    )
    assert done.exit_code == 0, done.output
    assert "validated" in done.output and f"{len(cells)} features, 0 errors" in done.output
    # and published, in a database of its own (this village's map elsewhere stays as it is)
    import_edition(
        Database(fresh_url), "hf", "1402", (world / "lists/hf_villages_1402.csv").read_bytes()
    )
    done = CliRunner().invoke(
        main,
        ["parcels", "ingest", str(folder / "Parcels.shp")],
        env={"TAGSIM_DATABASE_URL": fresh_url},
    )
    assert done.exit_code == 0 and "published" in done.output, done.output
    assert _current(fresh_url, code) == len(cells)
    with Database(fresh_url).connect() as c:
        uses = c.execute(
            text("SELECT DISTINCT land_use FROM parcel WHERE village_code = :c"), {"c": code}
        ).scalars()
        assert list(uses) == ["مسکونی"]  # LANDUSE_TY read as the land use
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "Parcels.shp").write_bytes((folder / "Parcels.shp").read_bytes())
    refused = CliRunner().invoke(
        main, ["parcels", "ingest", str(lone / "Parcels.shp")], env={"TAGSIM_DATABASE_URL": url}
    )
    assert refused.exit_code != 0 and "incomplete_shapefile" in refused.output


def test_a_lone_shp_is_named_as_such() -> None:
    with pytest.raises(UploadRejected) as refused:
        readers.detect_format(b"\x00\x00\x27\x0a" + b"\x00" * 96, "Parcels.shp")
    assert refused.value.code == "bare_shapefile" and "Parcels.shp" in refused.value.message


def test_an_agency_without_a_list_says_how_to_get_one(
    url: str, world: Path, tmp_path: Path, fresh_url: str
) -> None:
    """Before HF's list is imported, an HF village cannot be placed: say so, and how."""
    code, parcels, _zone = _crafted(url, world)
    state = _run(fresh_url, _gpkg(parcels, None, tmp_path), "m.gpkg", village=f"hf:{code}")
    report = state["report"]
    assert report["error"] == "unknown_village", report
    assert "tagsim divisions import --agency hf" in report["message"], report["message"]
