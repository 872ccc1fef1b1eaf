"""The web page end to end in a real browser: Playwright (Python) driving Debian's chromium
(headless, ``--no-sandbox``, no browser download) against a live server on 127.0.0.1 with
the sample, a job worker and a crosswalk. Screenshots go to ``tests/artifacts/``."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
from sqlalchemy import text

from api.web import MODULES, VENDOR
from geo.access.control import create_key
from geo.platform.config import settings
from geo.platform.database import Database
from tests.live import live_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="Debian's chromium missing: apt-get install chromium"
    ),
    pytest.mark.skipif(
        not all((MODULES / p).exists() for p in VENDOR.values()),
        reason="front-end libraries missing: npm ci in api/web (make run does it)",
    ),
]


@pytest.fixture(scope="module")
def site(sample_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from crosswalk.build import build, start_run

    build(Database(sample_url), start_run(Database(sample_url)))
    with Database(sample_url).begin() as c:
        key = create_key(c, "moi", "admin", "browser tests")["key"]
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / "worker.log").open("w")
    worker = subprocess.Popen(  # the real worker, as `make run` starts it
        [sys.executable, "-m", "api.cli", "worker"],
        env={**os.environ, "TAGSIM_DATABASE_URL": sample_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    downloads = tmp_path_factory.mktemp("downloads")
    config = {"RATE_LIMIT": "100000 per minute", "DOWNLOADS_DIR": str(downloads)}
    with live_server(sample_url, **config) as base:
        yield {"base": base, "key": key, "url": sample_url, "downloads": downloads}
    worker.terminate()
    worker.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--use-gl=swiftshader"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(site: dict[str, Any], browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="fa-IR")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    console = (ARTIFACTS / "console.log").open("w")
    tab.on("console", lambda m: console.write(f"{m.type}: {m.text}\n"))
    tab.on("requestfailed", lambda r: console.write(f"failed: {r.method} {r.url}\n"))
    tab.on(
        "response",
        lambda r: (
            console.write(f"{r.status} {r.request.method} {r.url}\n")
            if "/uploads" in r.url or r.status >= 400
            else None
        ),
    )
    tab.goto(site["base"] + "/")
    tab.fill("#key", site["key"])
    tab.click("#signin-form button")
    tab.wait_for_selector("#map canvas")
    tab.wait_for_function("() => window.tagsimMap && window.tagsimMap.loaded()")
    tab.errors = errors  # type: ignore[attr-defined]
    yield tab
    context.close()
    console.close()
    assert errors == [], errors


def _show(page: Any, tab: str) -> None:
    """Open a tab: the page is shared by the module's tests, which run in any order."""
    page.click(f"#tabs button[data-tab={tab}]")


def _shot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def _idle(page: Any, map_name: str = "tagsimMap") -> None:
    page.wait_for_function(
        f"() => window.{map_name}.loaded() && window.{map_name}.areTilesLoaded()",
        timeout=20_000,
    )
    page.wait_for_timeout(300)


def test_the_page_is_persian_first_and_switches_to_english(page: Any) -> None:
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.inner_text("#tabs button[data-tab=map]") == "نقشه"
    _shot(page, "map-fa")
    page.click("#lang")
    assert page.evaluate("document.documentElement.dir") == "ltr"
    assert page.inner_text("#tabs button[data-tab=map]") == "Map"
    page.click("#lang")


def test_a_parcel_shows_its_attributes_and_codes(page: Any, site: dict[str, Any]) -> None:
    with Database(site["url"]).connect() as c:
        lon, lat, number = c.execute(
            text(
                "SELECT ST_X(p), ST_Y(p), parcel_no FROM (SELECT ST_PointOnSurface(geom) p,"
                " parcel_no FROM parcel WHERE valid_to IS NULL AND area_m2 > 300"
                " ORDER BY id LIMIT 1 OFFSET 40) x"
            )
        ).one()
    _show(page, "map")
    page.evaluate(f"window.tagsimMap.jumpTo({{center: [{lon}, {lat}], zoom: 18}})")
    _idle(page)
    x, y = page.evaluate(
        f"(() => {{ const p = window.tagsimMap.project([{lon}, {lat}]); return [p.x, p.y]; }})()"
    )
    page.click("#map canvas", position={"x": x, "y": y})
    page.wait_for_function("() => document.querySelector('#details').dataset.parcel")
    assert page.eval_on_selector("#details", "e => e.dataset.parcel") == number
    assert "hf" in page.inner_text("#details")
    _shot(page, "parcel-details")


def test_a_plates_coverage_is_tabled_and_highlighted(page: Any, site: dict[str, Any]) -> None:
    with Database(site["url"]).connect() as c:
        unit, main, sub = c.execute(
            text(
                "SELECT registration_unit, main_plate, sub_plate FROM plate ORDER BY id"
                " LIMIT 1 OFFSET 3"
            )
        ).one()
    _show(page, "map")
    page.fill("#plate-unit", unit)
    page.fill("#plate-main", main)
    page.fill("#plate-sub", sub)
    page.click("#plate-go")
    page.wait_for_selector("#coverage-table tbody tr")
    rows = page.locator("#coverage-table tbody tr").count()
    from tests.helpers import client_for

    expected = client_for(site["url"], "reader", "sci").get(f"/plates/{unit}/{main}/{sub}/coverage")
    assert rows == len(expected.get_json()["parcels"]) >= 1
    _idle(page)
    _shot(page, "coverage")


def _changed_shapefile(url: str) -> tuple[bytes, str]:
    """A zipped shapefile of one published sample village: one parcel's land use changed,
    another's declared area ten times too large (a warning on that parcel)."""
    truth = settings().sample_dir / "truth" / "parcels.gpkg"
    parcels = gpd.read_file(truth, layer="parcels")
    with Database(url).connect() as c:
        code = c.execute(
            text("SELECT min(village_code) FROM parcel WHERE valid_to IS NULL")
        ).scalar_one()
    village = parcels[parcels["CODE_HF"] == code].reset_index(drop=True)
    village.loc[0, "KARBARI"] = "آموزشی" if village.loc[0, "KARBARI"] != "آموزشی" else "باغ"
    village.loc[1, "MASAHAT"] = village.loc[1, "MASAHAT"] * 10  # an area_mismatch warning
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "map.shp"
        village.to_file(path, encoding="utf-8")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as z:
            for part in Path(tmp).iterdir():
                z.write(part, part.name)
    return out.getvalue(), code


def test_upload_shows_progress_report_then_publishes(
    page: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    raw, code = _changed_shapefile(site["url"])
    file = tmp_path / "village.zip"
    file.write_bytes(raw)
    _show(page, "upload")
    page.set_input_files("#upload-file", str(file))
    page.fill("#upload-village", f"hf:{code}")
    page.fill("#upload-mapping", '{"land_use": "KARBARI"}')  # sent as the form's mapping
    page.click("#upload-form button[type=submit]")
    page.wait_for_function(
        "() => ['validated', 'invalid'].includes("
        "document.querySelector('#upload-status').dataset.status)",
        timeout=60_000,
    )
    assert page.eval_on_selector("#upload-status", "e => e.dataset.status") == "validated"
    assert "area_mismatch" in page.inner_text("#upload-report")
    page.wait_for_function("() => window.tagsimFindings !== undefined")
    assert page.evaluate("window.tagsimFindings") == 1  # that parcel drawn on the map
    _idle(page, "tagsimUploadMap")
    _shot(page, "upload-report")
    page.click("#upload-publish")
    page.wait_for_function(
        "() => document.querySelector('#upload-status').dataset.status === 'published'",
        timeout=120_000,
    )
    assert page.eval_on_selector("#upload-status", "e => e.dataset.changed") == "2"
    page.wait_for_function("() => window.tagsimChanged !== undefined")
    assert page.evaluate("window.tagsimChanged") == 2  # both modified parcels on the map
    _shot(page, "upload-published")


def test_three_review_items_with_the_keyboard(page: Any, site: dict[str, Any]) -> None:
    with Database(site["url"]).connect() as c:
        before = c.execute(text("SELECT count(*) FROM crosswalk_decision")).scalar_one()
    _show(page, "review")
    page.wait_for_selector("#review-queue li.current")
    _shot(page, "review")
    for key in ("c", "r", "o"):
        done = page.locator("#review-queue li.done").count()
        if key == "o":  # pick another candidate: list them, then link the first
            page.keyboard.press("o")
            page.wait_for_selector("#review-candidates li button")
            key = "1"
        page.keyboard.press(key)
        page.wait_for_function(
            f"() => document.querySelectorAll('#review-queue li.done').length > {done}"
        )
    with Database(site["url"]).connect() as c:
        after = c.execute(
            text("SELECT decision, count(*) FROM crosswalk_decision GROUP BY 1")
        ).all()
    assert sum(n for _, n in after) == before + 3
    assert dict(after)["reject"] >= 1 and dict(after)["link"] >= 1
    assert "3" in page.inner_text("#review-progress")
    _shot(page, "review-done")


def test_a_reader_sees_only_what_the_key_allows(site: dict[str, Any], browser: Any) -> None:
    with Database(site["url"]).begin() as c:
        reader = create_key(c, "sci", "reader", "browser reader")["key"]
    tab = browser.new_context().new_page()
    tab.goto(site["base"] + "/")
    tab.fill("#key", reader)
    tab.click("#signin-form button")
    tab.wait_for_selector("#map canvas")
    visible = tab.eval_on_selector_all(
        "#tabs button", "bs => bs.filter(b => !b.hidden).map(b => b.dataset.tab)"
    )
    assert visible == ["map", "changes", "tables", "downloads"]  # (tables: a reader of divisions)
    assert "sci" in tab.inner_text("#who")
    tab.goto(site["base"] + "/")  # the key stays for the session, not in the URL
    tab.wait_for_selector("#map canvas")
    assert "tgs_" not in tab.url
    tab.context.close()


def test_the_changes_of_today(page: Any) -> None:
    _show(page, "changes")
    page.click("#changes-go")
    page.wait_for_selector("#changes-table tbody tr td:nth-child(2)")
    assert page.locator("#changes-table tbody tr").count() > 1
    _shot(page, "changes")


def test_a_publish_that_would_remove_most_of_a_village_is_asked_first(
    page: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 22, finding 9: one parcel for a village of many removes the others only once
    the user says yes to the page's question."""
    truth = settings().sample_dir / "truth" / "parcels.gpkg"
    with Database(site["url"]).connect() as c:
        code = c.execute(
            text("SELECT max(village_code) FROM parcel WHERE valid_to IS NULL")
        ).scalar_one()
    parcels = gpd.read_file(truth, layer="parcels")
    one = parcels[parcels["CODE_HF"] == code].head(1)
    folder = tmp_path / "one"
    folder.mkdir()
    one.to_file(folder / "map.shp", encoding="utf-8")
    file = tmp_path / "one.zip"
    with zipfile.ZipFile(file, "w") as z:
        for part in folder.iterdir():
            z.write(part, part.name)
    _show(page, "upload")
    page.set_input_files("#upload-file", str(file))
    page.fill("#upload-village", f"hf:{code}")
    page.click("#upload-form button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#upload-status').dataset.status === 'validated'",
        timeout=60_000,
    )
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.click("#upload-publish")
    page.wait_for_function(
        "() => document.querySelector('#upload-status').dataset.status === 'published'",
        timeout=120_000,
    )
    assert asked and "remove" in asked[0]
    with Database(site["url"]).connect() as c:
        left = c.execute(
            text("SELECT count(*) FROM parcel WHERE village_code = :c AND valid_to IS NULL"),
            {"c": code},
        ).scalar_one()
    assert left == 1


def test_a_table_is_matched_chosen_among_candidates_and_downloaded(
    page: Any, tmp_path: Path
) -> None:
    """Issue 23: drop a spreadsheet, map its columns, see the summary and the ambiguous
    rows, choose among the candidates, download."""
    source = tmp_path / "names.csv"
    source.write_text(
        "ostan,shahrestan,bakhsh\nهرمزگان,بندرلنگه,\nهرمزگان,,مرکزی\nهرمزگان,ناکجاآباد,\n",
        encoding="utf-8",
    )
    _show(page, "tables")
    page.set_input_files("#match-file", str(source))
    page.select_option("#match-agency", "moi")
    page.wait_for_function("() => document.querySelectorAll('#match-headers option').length === 3")
    page.fill("#match-columns input[data-role=province]", "ostan")
    page.fill("#match-columns input[data-role=county]", "shahrestan")
    page.fill("#match-columns input[data-role=district]", "bakhsh")
    page.click("#match-form button[type=submit]")
    page.wait_for_selector("#match-summary li")
    summary = {
        li.get_attribute("data-status"): li.inner_text()
        for li in page.query_selector_all("#match-summary li")
    }
    assert set(summary) == {"exact", "ambiguous", "not_found"}
    assert page.locator("#match-ambiguous tbody tr").count() == 1
    options = page.locator("#match-ambiguous select option")
    assert options.count() >= 3  # "not chosen" and at least two «مرکزی» of Hormozgan
    chosen = options.nth(1).get_attribute("value")
    page.select_option("#match-ambiguous select", index=1)
    _shot(page, "match")
    with page.expect_download() as download:
        page.click("#match-download")
    saved = Path(download.value.path()).read_text(encoding="utf-8-sig").splitlines()
    header = saved[0].split(",")
    rows = [line.split(",") for line in saved[1:]]
    status, code = header.index("match_status"), header.index("match_code")
    assert [r[status] for r in rows] == ["exact", "chosen", "not_found"]
    assert rows[0][code] == "2311" and rows[1][code] == chosen


def test_a_table_of_moi_codes_is_converted_to_sci(page: Any, tmp_path: Path) -> None:
    source = tmp_path / "census.csv"
    source.write_text("کد,جمعیت\n3310,100\n3316,50\n9999,7\n", encoding="utf-8")
    _show(page, "tables")
    page.set_input_files("#convert-file", str(source))
    page.select_option("#convert-agency", "moi")
    page.fill("#convert-code", "کد")
    page.fill("#convert-counts", "جمعیت")
    page.select_option("#convert-to-agency", "sci")
    page.click("#convert-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#convert-status').dataset.rowsOut")
    cells = [
        [td.inner_text() for td in tr.query_selector_all("td")]
        for tr in page.query_selector_all("#convert-table tbody tr")
    ]
    assert [(c[0], c[3]) for c in cells] == [("2301", "100"), ("2310", "50")]
    assert "unknown_code" in page.inner_text("#convert-status")
    _shot(page, "convert")


def test_a_code_resolves_at_a_date_and_shows_its_lineage(page: Any, site: dict[str, Any]) -> None:
    """Issue 23: an older MOI list where county 2311 was «لنگه» and the city now 231110501
    had code 231110599: the code typed with a date answers as it was then; the county's
    lineage shows both editions and the rename; the old city code leads to its successor."""
    from geo.geodata.dates import parse_date
    from geo.geodata.registry import import_edition

    committed = Path(__file__).resolve().parents[1] / "data" / "sample"
    now = (committed / "moi_divisions_1401-08-25.csv").read_text(encoding="utf-8")
    lines = []
    for line in now.splitlines():
        cells = line.split(",")
        cells = ["لنگه" if c == "بندرلنگه" else c for c in cells]
        if cells[7:8] == ["231110501"]:
            cells[7] = "231110599"
        lines.append(",".join(cells))
    import_edition(
        Database(site["url"]),
        "moi",
        "1400-06-01",
        ("\n".join(lines) + "\n").encode(),
        published_on=parse_date("1400-06-01"),
    )
    _show(page, "map")
    page.fill("#search-at", "۱۴۰۰-۰۷-۰۱")
    page.fill("#search", "moi:2311")
    page.wait_for_selector("#search-results li")
    assert "لنگه" in page.inner_text("#search-results li")
    assert "بندرلنگه" not in page.inner_text("#search-results li")
    page.click("#search-results li")
    page.wait_for_selector("#timeline li.event")
    timeline = page.inner_text("#timeline")
    assert "1400-06-01" in timeline and "1401-08-25" in timeline
    assert page.locator("#timeline li.edition").count() == 2
    _shot(page, "timeline")
    page.fill("#search-at", "1401-09-01")
    page.fill("#search", "moi:231110599")
    page.wait_for_selector("#search-results li.gone")
    gone = page.inner_text("#search-results li.gone")
    assert "231110501" in gone and "کنگ" in gone


def test_downloads_of_the_country_and_a_county_and_a_pmtiles_map(
    page: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    """Issue 25: the country's snapshot files (one downloaded with the key, the PMTiles
    archive opened by MapLibre on the map), then a county's parcels as one file."""
    from geo.changes.snapshots import take_snapshot

    take_snapshot(Database(site["url"]), "parcels", site["downloads"], formats=["gpkg", "pmtiles"])
    _show(page, "downloads")
    page.fill("#dl-place", "")
    page.click("#dl-go")
    page.wait_for_selector("#dl-list li[data-format=pmtiles]")
    with page.expect_download() as got:
        page.click("#dl-list li[data-format=gpkg] button[data-href]")
    assert Path(got.value.path()).read_bytes()[:16] == b"SQLite format 3\x00"
    _shot(page, "downloads")
    page.click("#dl-list li[data-format=pmtiles] button[data-archive]")
    page.wait_for_function(
        "() => window.tagsimArchive && window.tagsimMap.getSource(window.tagsimArchive)"
    )
    _idle(page)
    drawn = page.evaluate(
        "() => window.tagsimMap.querySourceFeatures(window.tagsimArchive,"
        " {sourceLayer: 'parcels'}).map((f) => f.properties.parcel_no)"
    )
    assert len(drawn) > 0 and all(drawn)
    _shot(page, "pmtiles")
    page.evaluate(  # (the map as the other tests expect it)
        "() => { const m = window.tagsimMap, id = window.tagsimArchive;"
        " for (const l of [id + '-fill', id + '-line']) m.removeLayer(l); m.removeSource(id); }"
    )
    with Database(site["url"]).connect() as c:
        village = c.execute(
            text("SELECT min(village_code) FROM parcel WHERE valid_to IS NULL")
        ).scalar_one()
        county = village[:5]
        expected = c.execute(
            text("SELECT count(*) FROM parcel WHERE valid_to IS NULL AND village_code LIKE :p"),
            {"p": county + "%"},
        ).scalar_one()
    _show(page, "downloads")
    page.fill("#dl-place", f"hf:{county}")
    page.click("#dl-go")
    count = page.wait_for_selector("#dl-list h4[data-collection=parcels] [data-count]")
    assert int(count.get_attribute("data-count")) == expected
    with page.expect_download() as got:
        page.click("#dl-list h4[data-collection=parcels] + p button >> nth=0")
    path = tmp_path / "county.gpkg"  # (GDAL wants a GeoPackage's name to say so)
    got.value.save_as(path)
    saved = gpd.read_file(path)
    assert len(saved) == expected and all(saved["village_code"].str.startswith(county))
