"""Import formats and validation: every layout and encoding, every finding's code."""

from __future__ import annotations

import io

import pytest
from openpyxl import Workbook
from sqlalchemy import text

from geo.errors import ValidationError
from geo.geodata.persian import match_key
from geo.geodata.registry import import_edition
from geo.platform.database import Database

GOOD = """code,name,level,parent_code,lat,lon,population,national_id
01,قم,province,,,,,
01001,قم,county,01,,,,
0100101,مرکزی,district,01001,,,,
0100101001,قمرود,rural,0100101,,,,
01001010010001,حسین‌آباد,village,0100101001,34.61,50.88,420,
"""


def _xlsx(rows: list[list[object]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _count(url: str, sql: str) -> int:
    with Database(url).connect() as c:
        return c.execute(text(sql)).scalar_one()


@pytest.mark.parametrize(
    "encode",
    [
        lambda t: t.encode("utf-8"),
        lambda t: b"\xef\xbb\xbf" + t.encode("utf-8"),
        lambda t: t.replace("ی", "ي").replace("\u200c", " ").encode("cp1256"),
    ],
    ids=["utf-8", "utf-8-bom", "windows-1256"],
)
def test_generic_csv_in_every_encoding(fresh_url: str, encode) -> None:  # type: ignore[no-untyped-def]
    result = import_edition(Database(fresh_url), "hf", "1402", encode(GOOD))
    assert result.format == "generic"
    assert result.counts == {"province": 1, "county": 1, "district": 1, "rural": 1, "village": 1}
    with Database(fresh_url).connect() as c:
        row = c.execute(
            text(
                "SELECT name_key, population, ST_X(point), ancestors FROM division"
                " WHERE code = '01001010010001'"
            )
        ).one()
    assert row[0] == match_key("حسین آباد") and row[1] == 420 and abs(row[2] - 50.88) < 1e-9
    assert row[3] == ["01", "01001", "0100101", "0100101001"]


def test_xlsx_of_the_sci_layout_keeps_leading_zeros(fresh_url: str) -> None:
    header = [
        "کد استان",
        "نام استان",
        "کد شهرستان",
        "نام شهرستان",
        "کد بخش",
        "نام بخش",
        "کد دهستان/ شهر",
        "نام دهستان/ شهر",
        "کد آبادی",
        "نام",
        "CODEREC",
        "DIAG",
    ]
    rows = [
        header,
        [3, "آذربایجان شرقی", None, None, None, None, None, None, None, "آذربایجان شرقی", 1, None],
        [3, "", 1, "تبریز", None, None, None, None, None, "تبریز", 2, None],
        [3, "", 1, "", 1, "مرکزی", None, None, None, "مرکزی", 3, None],
        [3, "", 1, "", 1, "", 1, "اسپران", None, "اسپران", 4, None],
        [3, "", 1, "", 1, "", 1, "", 21, "آلاسوخته", 6, None],
    ]
    result = import_edition(Database(fresh_url), "sci", "1399", _xlsx(rows))
    assert result.format == "sci" and result.counts["village"] == 1
    assert _count(fresh_url, "SELECT count(*) FROM division WHERE code = '0301010001000021'") == 1


def test_moi_layout_from_xlsx(fresh_url: str) -> None:
    rows = [
        [
            "row",
            "type",
            "name",
            "province",
            "county",
            "district",
            "rural",
            "hierarchicalCode",
            "nationalId",
        ],
        [1, "استان", "قم", None, None, None, None, 35, 1000000311],
        [2, "شهرستان", "قم", "قم", None, None, None, 3510, 1000000323],
        [3, "بخش", "مرکزی", "قم", "قم", None, None, 351010, 1000000335],
        [4, "شهر", "قم", "قم", "قم", "مرکزی", None, 351010500, 1000000347],
    ]
    result = import_edition(Database(fresh_url), "moi", "1401", _xlsx(rows))
    assert result.counts == {"province": 1, "county": 1, "district": 1, "city": 1}


def _errors(url: str, body: str, agency: str = "hf") -> list[tuple[int, str, str]]:
    with pytest.raises(ValidationError) as info:
        import_edition(Database(url), agency, "bad", body.encode())
    assert info.value.code == "invalid_rows"
    assert _count(url, "SELECT count(*) FROM edition") == 0  # nothing stored
    report = info.value.details["report"]
    return [(e["line"], e["code"], e["field"]) for e in report["errors"]]


def test_every_row_error_has_its_code_and_line(fresh_url: str) -> None:
    body = (
        GOOD
        + "\n".join(
            [
                ",بی‌کد,village,0100101001,,,,",  # 7 empty_code
                "01001010010002a,الف,village,0100101001,,,,",  # 8 malformed_code
                "01001010010003,,village,0100101001,,,,",  # 9 empty_name
                "01001010010004,ب,hamlet,0100101001,,,,",  # 10 unknown_level
                "01001010010005,پ,village,0100101001,x,50,,",  # 11 malformed_number
                "01001010010001,دیگر,village,0100101001,,,,",  # 12 duplicate_code
                "01001010010006,ت,village,,,,,",  # 13 missing_parent
                "01001010010007,ث,village,0199999999,,,,",  # 14 unknown_parent
                "01001010010008,ج,village,01001,,,,",  # 15 parent_level (county)
                "01001010010009,چ,village,0100101001,10.0,10.0,,",  # 16 coordinates_outside
            ]
        )
        + "\n"
    )
    found = _errors(fresh_url, body)
    assert sorted(found) == [
        (7, "empty_code", "code"),
        (8, "malformed_code", "code"),
        (9, "empty_name", "name"),
        (10, "unknown_level", "level"),
        (11, "malformed_number", "lat"),
        (12, "duplicate_code", "code"),
        (13, "missing_parent", "parent_code"),
        (14, "unknown_parent", "parent_code"),
        (15, "parent_level", "parent_code"),
        (16, "coordinates_outside", "lat,lon"),
    ]


def test_codes_that_contradict_the_agency_scheme(fresh_url: str) -> None:
    body = "\n".join(
        [
            "row,type,name,province,county,district,rural,hierarchicalCode,nationalId",
            "1,استان,قم,,,,,35,1000000311",
            "2,شهرستان,قم,قم,,,,351,1000000323",
            "3,شهرستان,کهک,قم,,,,3611,1000000324",
            "4,بخش,مرکزی,قم,قم,,,351110,1000000335",
            "5,دهستان,ناییم,قم,,,,,",
            "6,شهر,قم,قم,قم,مرکزی,,351110100,1000000347",
            "7,روستاک,فلان,قم,,,,35111010,1",
        ]
    )
    found = sorted((line, code) for line, code, _ in _errors(fresh_url, body, "moi"))
    assert found == [
        (3, "code_scheme"),  # a county of 3 digits
        (4, "unknown_parent"),  # 3611: no province 36
        (5, "unknown_parent"),  # 351110: no county 3511
        (6, "empty_code"),
        (7, "code_scheme"),  # an MOI city code ends in 500 or more
        (8, "unknown_level"),  # روستاک is no type word
    ]


def test_valid_rows_only_when_asked_and_the_report_says_what_was_skipped(fresh_url: str) -> None:
    body = GOOD + "0100101002,بد,rural,0199,,,,\n01001010020001,زیر بد,village,0100101002,,,,\n"
    with pytest.raises(ValidationError):
        import_edition(Database(fresh_url), "hf", "1402", body.encode())
    result = import_edition(Database(fresh_url), "hf", "1402", body.encode(), valid_only=True)
    assert result.counts["village"] == 1 and result.counts["rural"] == 1
    assert {(e["line"], e["code"]) for e in result.report["errors"]} == {(7, "unknown_parent")}
    assert [(s["line"], s["code"]) for s in result.skipped] == [(8, "parent_skipped")]


def test_exact_duplicate_rows_are_reported_and_imported_once(fresh_url: str) -> None:
    body = GOOD + GOOD.splitlines()[-1] + "\n"
    result = import_edition(Database(fresh_url), "hf", "1402", body.encode())
    assert [(s["line"], s["code"], s["first_line"]) for s in result.skipped] == [
        (7, "duplicate_row", 6)
    ]
    assert _count(fresh_url, "SELECT count(*) FROM division") == 5


def test_the_same_file_twice_is_a_no_op_that_says_so(fresh_url: str) -> None:
    first = import_edition(Database(fresh_url), "hf", "1402", GOOD.encode())
    again = import_edition(Database(fresh_url), "hf", "1402-again", GOOD.encode())
    assert not again.created and again.edition_id == first.edition_id
    assert "already edition" in again.summary()
    assert _count(fresh_url, "SELECT count(*) FROM edition") == 1


def test_another_file_under_a_taken_label_is_refused(fresh_url: str) -> None:
    import_edition(Database(fresh_url), "hf", "1402", GOOD.encode())
    with pytest.raises(ValidationError) as info:
        import_edition(Database(fresh_url), "hf", "1402", GOOD.replace("قمرود", "قم رود").encode())
    assert info.value.code == "edition_exists"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "empty_file"),
        (b"a,b,c\n1,2,3\n", "unknown_format"),
        (b"PK\x03\x04broken zip", "unreadable_file"),
        (b"\x00\x01\x02binary", "unreadable_file"),
    ],
)
def test_unreadable_files_are_refused_clearly(fresh_url: str, raw: bytes, code: str) -> None:
    with pytest.raises(ValidationError) as info:
        import_edition(Database(fresh_url), "hf", "x", raw)
    assert info.value.code == code
