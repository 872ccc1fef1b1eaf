"""`tagsim demo`'s sample: generated once, loaded into the database, safe to load twice."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from data.sample import ensure_sample_files, load_sample
from geo.platform.config import settings
from geo.platform.database import Database


def test_sample_loads_and_loading_again_changes_nothing(db_url: str) -> None:
    folder = ensure_sample_files(settings().sample_dir, echo=lambda _m: None)
    assert (folder / "manifest.json").exists()
    first = load_sample(Database(db_url), folder, echo=lambda _m: None)
    assert first.startswith("sample loaded")
    with Database(db_url).connect() as c:
        counts = dict(
            c.execute(
                text(
                    "SELECT e.agency, count(*) FROM division d"
                    " JOIN edition e ON e.id = d.edition_id"
                    " GROUP BY e.agency"
                )
            ).all()
        )
        parcels = c.execute(text("SELECT count(*) FROM parcel")).scalar_one()
        bad = c.execute(text("SELECT count(*) FROM parcel WHERE NOT ST_IsValid(geom)")).scalar_one()
        hf_with_parcels = c.execute(
            text(
                "SELECT count(DISTINCT p.village_code) FROM parcel p JOIN division d"
                " ON d.code = p.village_code"
                " JOIN edition e ON e.id = d.edition_id AND e.agency = 'hf'"
            )
        ).scalar_one()
    assert counts["moi"] == 5819 and counts["sci"] > 1500 and counts["hf"] > 100
    assert parcels > 1000 and bad == 0
    assert hf_with_parcels > 10  # parcels name their village by HF code
    assert load_sample(Database(db_url), folder, echo=lambda _m: None).startswith(
        "sample already loaded"
    )
    with Database(db_url).connect() as c:
        assert c.execute(text("SELECT count(*) FROM parcel")).scalar_one() == parcels


def test_sample_files_are_reused_when_current(tmp_path: Path) -> None:
    folder = ensure_sample_files(settings().sample_dir, echo=lambda _m: None)
    stamp = (folder / "fingerprint").stat().st_mtime_ns
    ensure_sample_files(folder, echo=lambda _m: None)
    assert (folder / "fingerprint").stat().st_mtime_ns == stamp
