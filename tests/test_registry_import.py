"""Importing agency lists as editions (the core; validation reports grow with issue 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from geo.errors import ValidationError
from geo.geodata.registry import import_edition
from geo.geodata.registry.store import refold_loose_keys
from geo.platform.database import Database

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def test_real_moi_list_imports_with_its_real_counts(fresh_url: str) -> None:
    raw = (SAMPLE / "moi_divisions_1401-08-25.csv").read_bytes()
    result = import_edition(Database(fresh_url), "moi", "1401-08-25", raw, source_name="moi.csv")
    assert result.created and result.format == "moi"
    assert result.counts == {
        "province": 31,
        "county": 471,
        "district": 1162,
        "rural": 2725,
        "city": 1430,
    }
    assert [s["code"] for s in result.skipped] == ["duplicate_row"]  # rows 273 and 274
    again = import_edition(Database(fresh_url), "moi", "another label", raw)
    assert not again.created and again.edition_id == result.edition_id
    with Database(fresh_url).connect() as c:
        tabriz = c.execute(
            text(
                "SELECT name, level, parent_code, national_id FROM division"
                " WHERE code = '101010500'"
            )
        ).one()
        assert tabriz == ("تبریز", "city", "101010", "1000041093")


def test_sci_layout_and_windows_1256(fresh_url: str) -> None:
    text_ = (SAMPLE / "sci_geography_1399_tehran_qom.csv").read_text(encoding="utf-8")
    raw = text_.replace("ی", "ي").encode("cp1256")  # old software: Arabic ye in Windows-1256
    result = import_edition(Database(fresh_url), "sci", "1399", raw)
    assert result.counts["province"] == 2 and result.counts["village"] > 1000
    with Database(fresh_url).connect() as c:
        key = c.execute(text("SELECT name_key FROM division WHERE code = '23'")).scalar_one()
    assert key == "تهران"


def test_a_bad_file_stores_nothing(fresh_url: str) -> None:
    raw = "code,name,level,parent_code\n01,الف,province,\n0101,ب,county,09\n".encode()
    with pytest.raises(ValidationError) as info:
        import_edition(Database(fresh_url), "hf", "x", raw)
    assert info.value.code == "invalid_rows"
    assert [e["code"] for e in info.value.details["report"]["errors"]] == ["unknown_parent"]
    with Database(fresh_url).connect() as c:
        assert c.execute(text("SELECT count(*) FROM edition")).scalar_one() == 0


def test_keys_a_migration_emptied_are_folded_again(fresh_url: str) -> None:
    raw = "code,name,level,parent_code\n01,ضیاءآباد,province,\n02,چالوس,province,\n".encode()
    import_edition(Database(fresh_url), "hf", "x", raw)
    with Database(fresh_url).begin() as c:
        folded = dict(c.execute(text("SELECT code, name_loose FROM division")).all())
        c.execute(text("UPDATE division SET name_loose = ''"))  # what migration 0012 does
        assert refold_loose_keys(c) == 2
        again = dict(c.execute(text("SELECT code, name_loose FROM division")).all())
    assert again == folded and all(again.values())
