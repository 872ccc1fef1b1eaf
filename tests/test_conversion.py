"""Tables converted between editions, checked against cases computed by hand on three small
editions of one agency's list (populations given):

- 1400 → 1401: rural district R1 (1,000 people) split into R1 (300) and R2 (700); R3 (500)
  merged into R4 (1,500 → 2,000); R5 (no population) split into R5 and R6;
- 1401 → 1402: R2 merged into R4 (2,700).

So from 1400 to 1402 three units (R1, R3, R4) became two (R1, R4), R1 divided between
them: a three-way n:m.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import text

from geo.errors import ValidationError
from geo.geodata.dates import parse_date
from geo.geodata.registry import import_edition
from geo.geodata.registry.conversion import ConversionSpec, convert
from geo.platform.database import Database
from tests.helpers import client_for

HEAD = "code,name,level,parent_code,population\n"
TOP = "01,آذربایجان,province,,\n0101,اهر,county,01,\n010101,مرکزی,district,0101,\n"
R1, R3, R4, R2, R5, R6 = "01010101", "01010102", "01010103", "01010104", "01010105", "01010106"
V = {i: f"010101010{i}" for i in range(1, 5)}  # R1's villages in 1400
E1400 = (
    HEAD
    + TOP
    + f"{R1},گویجه بل,rural,010101,1000\n{R3},اوچ هاچا,rural,010101,500\n"
    + f"{R4},قشلاق,rural,010101,1500\n{R5},ارسباران,rural,010101,\n"
    + "".join(f"{V[i]},ده {i},village,{R1},{i * 100}\n" for i in range(1, 5))
    + f"0101010201,علی آباد,village,{R3},200\n0101010202,حسن آباد,village,{R3},300\n"
    + f"0101010301,نوده,village,{R4},700\n0101010302,کهنه ده,village,{R4},800\n"
    + f"0101010501,کلیبر,village,{R5},\n0101010502,خداآفرین,village,{R5},\n"
)
E1401 = (
    HEAD
    + TOP
    + f"{R1},گویجه بل,rural,010101,300\n{R2},گویجه بل شرقی,rural,010101,700\n"
    + f"{R4},قشلاق,rural,010101,2000\n{R5},ارسباران,rural,010101,\n"
    + f"{R6},خداآفرین,rural,010101,\n"
    + f"{V[1]},ده 1,village,{R1},100\n{V[2]},ده 2,village,{R1},200\n"
    + f"{V[3]},ده 3,village,{R2},300\n{V[4]},ده 4,village,{R2},400\n"
    + f"0101010201,علی آباد,village,{R4},200\n0101010202,حسن آباد,village,{R4},300\n"
    + f"0101010301,نوده,village,{R4},700\n0101010302,کهنه ده,village,{R4},800\n"
    + f"0101010501,کلیبر,village,{R5},\n0101010502,خداآفرین,village,{R6},\n"
)
E1402 = (
    E1401.replace(f"{R2},گویجه بل شرقی,rural,010101,700\n", "")
    .replace(f"{R4},قشلاق,rural,010101,2000", f"{R4},قشلاق,rural,010101,2700")
    .replace(f"village,{R2},", f"village,{R4},")
)
OLD, MID, NEW = "1400-06-01", "1401-06-01", "1402-06-01"


@pytest.fixture(scope="module")
def db(module_db_url: str) -> Database:
    database = Database(module_db_url)
    for label, listed in (("1400-01-01", E1400), ("1401-01-01", E1401), ("1402-01-01", E1402)):
        import_edition(
            database, "hf", label, listed.encode(), published_on=parse_date(label), fmt="generic"
        )
    return database


@pytest.fixture(scope="module")
def client(module_db_url: str, db: Database) -> FlaskClient:
    return client_for(module_db_url, "reader", "sci")


def _convert(db: Database, rows: list[list[str]], **spec: object) -> dict[str, object]:
    table = [["کد دهستان", "جمعیت", "جنس"], *rows]
    options: dict = {"agency": "hf", "code": "کد دهستان", "counts": ("جمعیت",), **spec}
    with db.connect() as conn:
        return convert(conn, table, ConversionSpec(**options)).as_json()


def _counts(answer: dict) -> dict[str, float]:  # type: ignore[type-arg]
    return {r["code"]: r["counts"]["جمعیت"] for r in answer["rows"]}


def test_a_merge_is_summed_and_a_split_divided(db: Database) -> None:
    answer = _convert(
        db, [[R1, "1000"], [R3, "500"], [R4, "1500"]], at=parse_date(OLD), to_date=parse_date(MID)
    )
    assert _counts(answer) == {R1: 300, R2: 700, R4: 2000}
    by_code = {r["code"]: r for r in answer["rows"]}
    assert [(s["row"], s["code"], s["weight"], s["basis"]) for s in by_code[R4]["from"]] == [
        (3, R3, 1.0, "whole"),
        (4, R4, 1.0, "whole"),
    ]
    assert [(s["code"], s["weight"], s["basis"]) for s in by_code[R2]["from"]] == [
        (R1, 0.7, "population")
    ]
    assert answer["summary"]["totals"]["جمعیت"] == {"in": 3000, "out": 3000, "refused": 0}
    assert answer["from_edition"]["label"] == "1400-01-01"
    assert answer["to_edition"]["label"] == "1401-01-01"


def test_forward_and_back_gives_the_table_again(db: Database) -> None:
    there = _convert(
        db, [[R1, "1000"], [R3, "500"], [R4, "1500"]], at=parse_date(OLD), to_date=parse_date(MID)
    )
    back = _convert(
        db,
        [[code, str(n)] for code, n in _counts(there).items()],
        at=parse_date(MID),
        to_date=parse_date(OLD),
    )
    assert _counts(back) == {R1: 1000, R3: 500, R4: 1500}


def test_three_units_become_two_across_two_editions(db: Database) -> None:
    """R1's 1,000 people: 300 stay in R1, 700 went to R2 and with it into R4; R3's 500 and
    R4's 1,500 are in R4: R1 300, R4 2,700."""
    answer = _convert(
        db, [[R1, "1000"], [R3, "500"], [R4, "1500"]], at=parse_date(OLD), to_date=parse_date(NEW)
    )
    assert _counts(answer) == {R1: 300, R4: 2700}
    r4 = next(r for r in answer["rows"] if r["code"] == R4)
    assert sorted((s["code"], s["weight"]) for s in r4["from"]) == [
        (R1, 0.7),
        (R3, 1.0),
        (R4, 1.0),
    ]
    back = _convert(db, [[R1, "300"], [R4, "2700"]], at=parse_date(NEW), to_date=parse_date(OLD))
    assert sum(_counts(back).values()) == pytest.approx(3000, abs=1e-6)


def test_categories_group_and_village_codes_pass_through(db: Database) -> None:
    answer = _convert(
        db,
        [[R1, "600", "زن"], [R1, "400", "مرد"], [V[3], "30", "زن"], [V[3], "20", "زن"]],
        at=parse_date(OLD),
        to_date=parse_date(MID),
        categories=("جنس",),
    )
    got = {(r["code"], r["categories"]["جنس"]): r["counts"]["جمعیت"] for r in answer["rows"]}
    assert got == {
        (R1, "زن"): 180,
        (R1, "مرد"): 120,
        (R2, "زن"): 420,
        (R2, "مرد"): 280,
        (V[3], "زن"): 50,  # the village moved to R2: the same village, summed
    }


def test_unknown_weights_are_refused_unless_equal_shares_are_allowed(db: Database) -> None:
    rows = [[R5, "90"], [R1, "10"]]
    strict = _convert(db, rows, at=parse_date(OLD), to_date=parse_date(MID))
    assert [(r["row"], r["code"], r["reason"]) for r in strict["refused"]] == [
        (2, R5, "unknown_weight")
    ]
    assert strict["summary"]["totals"]["جمعیت"] == {"in": 100, "out": 10, "refused": 90}
    shared = _convert(db, rows, at=parse_date(OLD), to_date=parse_date(MID), equal_shares=True)
    assert _counts(shared) == {R1: 3, R2: 7, R5: 45, R6: 45}
    assert {s["basis"] for r in shared["rows"] if r["code"] in (R5, R6) for s in r["from"]} == {
        "equal_shares"
    }


def test_bad_rows_are_reported_and_persian_digits_read(db: Database) -> None:
    answer = _convert(
        db,
        [["۰۱۰۱۰۱۰۱", "۱٬۰۰۰"], ["99999999", "5"], ["", "7"], [R4, "بسیار"], [R3, ""]],
        at=parse_date(OLD),
        to_date=parse_date(MID),
    )
    assert _counts(answer) == {R1: 300, R2: 700, R4: 0}
    assert [(r["row"], r["reason"]) for r in answer["refused"]] == [
        (3, "unknown_code"),
        (4, "missing_code"),
        (5, "not_a_number"),
    ]
    assert answer["summary"]["rows_in"] == 5
    assert answer["summary"]["totals"]["جمعیت"] == {"in": 1012, "out": 1000, "refused": 12}


def test_a_wrong_column_is_a_clear_error(db: Database) -> None:
    with pytest.raises(ValidationError) as raised:
        _convert(db, [[R1, "1"]], counts=("population",))
    assert raised.value.code == "unknown_column"
    with pytest.raises(ValidationError) as raised:
        _convert(db, [[R1, "1"]], counts=("کد دهستان",))
    assert raised.value.code == "column_twice"


def test_area_weights_come_before_populations(db: Database) -> None:
    """Boundaries on both sides cut R1 40 / 60 (populations say 30 / 70): areas win."""
    boxes = {("1400-01-01", R1): (50.0, 51.0), ("1401-01-01", R1): (50.0, 50.4)}
    boxes[("1401-01-01", R2)] = (50.4, 51.0)
    update = text(
        "UPDATE division d SET polygon = ST_Multi(ST_MakeEnvelope(:x0, 37, :x1, 38, 4326))"
        " FROM edition e WHERE e.id = d.edition_id AND e.agency = 'hf' AND e.label = :label"
        " AND d.code = :code"
    )
    try:
        with db.begin() as c:
            for (label, code), (x0, x1) in boxes.items():
                c.execute(update, {"label": label, "code": code, "x0": x0, "x1": x1})
        answer = _convert(db, [[R1, "1000"]], at=parse_date(OLD), to_date=parse_date(MID))
        got = _counts(answer)
        assert got[R1] == pytest.approx(400, abs=0.01)
        assert got[R2] == pytest.approx(600, abs=0.01)
        assert got[R1] + got[R2] == pytest.approx(1000, abs=1e-6)
        assert {s["basis"] for r in answer["rows"] for s in r["from"]} == {"area"}
    finally:
        with db.begin() as c:
            c.execute(
                text("UPDATE division SET polygon = NULL WHERE code IN (:a, :b)"),
                {"a": R1, "b": R2},
            )


def test_http_convert_answers_csv_xlsx_and_json(client: FlaskClient) -> None:
    csv_in = f"کد,جمعیت\n{R1},1000\n{R3},500\n{R5},90\n".encode()
    form = {"agency": "hf", "code": "کد", "counts": "جمعیت", "at": OLD, "to_date": MID}
    got = client.post("/convert", data={**form, "file": (io.BytesIO(csv_in), "census.csv")})
    assert got.status_code == 200, got.json
    assert got.data.startswith(b"\xef\xbb\xbf")
    lines = got.data.decode("utf-8-sig").splitlines()
    assert lines[0].split(",")[:4] == ["hf_code", "name", "level", "جمعیت"]
    assert {tuple(line.split(",")[:1] + line.split(",")[3:4]) for line in lines[1:]} == {
        (R1, "300"),
        (R2, "700"),
        (R4, "500"),
    }
    summary = json.loads(got.headers["X-Tagsim-Convert"])
    assert summary["refused"] == {"unknown_weight": 1}
    assert "census.hf-" in got.headers["Content-Disposition"]

    book = Workbook()
    sheet = book.active
    for row in csv_in.decode().splitlines():
        sheet.append(row.split(","))
    raw = io.BytesIO()
    book.save(raw)
    got = client.post(
        "/convert", data={**form, "file": (io.BytesIO(raw.getvalue()), "census.xlsx")}
    )
    assert got.status_code == 200, got.json
    back = load_workbook(io.BytesIO(got.data))
    assert back.sheetnames == ["converted", "not converted"]
    assert [c.value for c in back["not converted"][2]][:3] == [4, R5, "unknown_weight"]

    got = client.post(
        "/convert",
        data={
            **form,
            "format": "json",
            "equal_shares": "true",
            "file": (io.BytesIO(csv_in), "t.csv"),
        },
    )
    assert got.status_code == 200
    assert _counts(got.json) == {R1: 300, R2: 700, R4: 500, R5: 45, R6: 45}
    assert got.json["summary"]["rows_refused"] == 0


def test_http_convert_says_what_is_wrong(client: FlaskClient) -> None:
    table = f"کد,جمعیت\n{R1},1000\n".encode()
    missing = client.post(
        "/convert",
        data={
            "agency": "hf",
            "code": "کد",
            "counts": "people",
            "file": (io.BytesIO(table), "t.csv"),
        },
    )
    assert missing.status_code in (400, 422)
    assert missing.json["code"] == "unknown_column"
    unknown = client.post(
        "/convert",
        data={
            "agency": "xx",
            "code": "کد",
            "counts": "جمعیت",
            "file": (io.BytesIO(table), "t.csv"),
        },
    )
    assert unknown.status_code == 404
    assert unknown.json["code"] == "unknown_agency"


def test_cli_convert_writes_the_table_and_the_report(
    module_db_url: str, db: Database, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from api.cli import main

    source = tmp_path / "census.csv"
    source.write_text(f"code,people\n{R1},1000\n{R5},90\n", encoding="utf-8")
    done = CliRunner(env={"TAGSIM_DATABASE_URL": module_db_url}).invoke(
        main,
        [
            "convert",
            str(source),
            "--agency",
            "hf",
            "--code",
            "code",
            "--count",
            "people",
            "--at",
            OLD,
            "--to-date",
            MID,
        ],
    )
    assert done.exit_code == 0, done.output
    out = (tmp_path / "census.hf.csv").read_text(encoding="utf-8-sig").splitlines()
    assert [line.split(",")[:1] + line.split(",")[3:4] for line in out[1:]] == [
        [R1, "300"],
        [R2, "700"],
    ]
    report = (tmp_path / "census.hf.not-converted.csv").read_text(encoding="utf-8-sig")
    assert "unknown_weight" in report
    assert "people: in 1090" in done.output


def _run_jobs(db: Database) -> None:
    import geo.geodata.registry.table_jobs  # noqa: F401  (registers the job)
    from geo.platform.jobs import run_worker

    run_worker(db, wait=False)


def test_a_big_table_is_a_job_seen_by_its_agency_alone(
    client: FlaskClient, module_db_url: str, db: Database
) -> None:
    table = f"کد,جمعیت\n{R1},1000\n{R3},500\n".encode()
    form = {"agency": "hf", "code": "کد", "counts": "جمعیت", "at": OLD, "to_date": MID}
    at_once = client.post("/convert", data={**form, "file": (io.BytesIO(table), "t.csv")})
    later = client.post(
        "/convert",
        data={**form, "file": (io.BytesIO(table), "t.csv")},
        headers={"Prefer": "respond-async"},
    )
    assert later.status_code == 202, later.json
    assert later.headers["Preference-Applied"] == "respond-async"
    where = later.headers["Location"]
    assert client.get(where).json["status"] == "queued"
    assert client.get(f"{where}/answer").json["code"] == "table_job_not_done"
    other = client_for(module_db_url, "reader", "moi")
    assert other.get(where).status_code == 404
    assert other.get(where).json["code"] == "unknown_table_job"
    _run_jobs(db)
    state = client.get(where).json
    assert state["status"] == "done", state
    assert (state["done"], state["total"]) == (2, 2)
    assert state["summary"]["totals"]["جمعیت"]["out"] == 1500
    answer = client.get(state["links"][0]["href"])
    assert answer.status_code == 200
    assert answer.data == at_once.data  # the same file as when answered at once
    assert "t.converted.csv" in answer.headers["Content-Disposition"]
    assert other.get(f"{where}/answer").status_code == 404


def test_a_table_over_the_limit_is_matched_by_a_job(
    client: FlaskClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import api.tables

    monkeypatch.setattr(api.tables, "AT_ONCE_ROWS", 1)
    table = "دهستان,آبادی\nگویجه بل,ده 1\nقشلاق,نوده\n".encode()
    form = {"agency": "hf", "rural": "دهستان", "place": "آبادی"}
    later = client.post("/match", data={**form, "file": (io.BytesIO(table), "names.csv")})
    assert later.status_code == 202
    _run_jobs(db)
    state = client.get(later.headers["Location"]).json
    assert state["status"] == "done" and state["summary"] == {"exact": 2}
    lines = client.get(f"{later.headers['Location']}/answer").data.decode("utf-8-sig")
    assert [line.split(",")[3] for line in lines.splitlines()[1:]] == [V[1], "0101010301"]


def test_a_job_whose_table_is_wrong_fails_with_the_reason(
    client: FlaskClient, db: Database
) -> None:
    table = f"کد,جمعیت\n{R1},1000\n".encode()
    form = {"agency": "hf", "code": "کد", "counts": "people"}
    later = client.post(
        "/convert",
        data={**form, "file": (io.BytesIO(table), "t.csv")},
        headers={"Prefer": "respond-async"},
    )
    assert later.status_code == 202
    _run_jobs(db)
    state = client.get(later.headers["Location"]).json
    assert state["status"] == "failed"
    assert state["error"]["code"] == "unknown_column"


def test_a_table_job_exists_with_its_job_or_not_at_all(db: Database) -> None:
    from geo.geodata.registry.table_jobs import Sender, submit

    with db.connect() as conn:
        made = submit(conn, "match", Sender(None, "sci"), "t.csv", b"a\n", {"agency": "hf"})
        conn.rollback()  # (a crash before the commit)
    with db.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM table_job WHERE id = :i"), {"i": made["id"]}
            ).scalar_one()
            == 0
        )
        assert (
            conn.execute(
                text("SELECT count(*) FROM procrastinate_jobs WHERE id = :j"), {"j": made["job_id"]}
            ).scalar_one()
            == 0
        )
