"""Events between two editions, against the generator's known truth."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import text

from data.generator import generate
from geo.geodata.dates import parse_date
from geo.geodata.registry import import_edition
from geo.geodata.registry.lookup import history, resolve
from geo.platform.database import Database


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("events") / "small"
    generate(out, "small", seed=11)
    return out


@pytest.fixture(scope="module")
def imported(module_db_url: str, world: Path) -> dict[str, int]:
    ids = {}
    for label in ("1400-06-01", "1401-08-25"):
        raw = (world / "lists" / f"moi_divisions_{label}.csv").read_bytes()
        ids[label] = import_edition(
            Database(module_db_url), "moi", label, raw, published_on=parse_date(label)
        ).edition_id
    return ids


def _detected(url: str, edition_id: int) -> list[tuple[str, str, str, dict]]:
    with Database(url).connect() as c:
        rows = c.execute(
            text(
                "SELECT kind, codes_before, codes_after, detail FROM division_event"
                " WHERE to_edition_id = :e"
            ),
            {"e": edition_id},
        ).all()
    return [(r.kind, " ".join(r.codes_before), " ".join(r.codes_after), r.detail) for r in rows]


def test_every_true_event_is_found(
    module_db_url: str, imported: dict[str, int], world: Path
) -> None:
    detected = {(k, b, a) for k, b, a, _ in _detected(module_db_url, imported["1401-08-25"])}
    with (world / "truth" / "moi_events.csv").open(encoding="utf-8") as f:
        truth = list(csv.DictReader(f))
    kinds = Counter(f"{t['kind']}:{t['level']}" for t in truth)
    assert {
        "rename:village",
        "move:village",
        "recode:village",
        "create:village",
        "abolish:village",
        "split:rural",
        "merge:rural",
        "merge:village",
    } <= set(kinds)
    missed = [t for t in truth if (t["kind"], t["codes_before"], t["codes_after"]) not in detected]
    # A village merged into a neighbour leaves no trace in an MOI list (no populations):
    # it can only be seen as abolished.
    assert all(t["kind"] == "merge" and t["level"] == "village" for t in missed)
    for t in missed:
        assert ("abolish", t["codes_before"].split()[0], "") in detected


def test_no_event_is_invented(module_db_url: str, imported: dict[str, int], world: Path) -> None:
    with (world / "truth" / "moi_events.csv").open(encoding="utf-8") as f:
        truth = {(t["kind"], t["codes_before"], t["codes_after"]) for t in csv.DictReader(f)}
        f.seek(0)
        merged_villages = {
            t["codes_before"].split()[0]
            for t in csv.DictReader(f)
            if t["kind"] == "merge" and t["level"] == "village"
        }
    for kind, before, after, detail in _detected(module_db_url, imported["1401-08-25"]):
        if (kind, before, after) in truth:
            continue
        if kind == "move":  # children carried along by a split or a merge say so
            assert detail.get("cause", "").startswith(("split", "merge")), (before, after)
        else:
            assert kind == "abolish" and before in merged_villages, (kind, before, after)


def test_events_carry_evidence_in_words(module_db_url: str, imported: dict[str, int]) -> None:
    events = _detected(module_db_url, imported["1401-08-25"])
    by_kind = {k: d for k, _, _, d in events}
    assert by_kind["rename"]["evidence"] == "same unit, new name"
    assert by_kind["recode"]["evidence"] == "same name and parent, new code"
    assert "children of" in by_kind["split"]["evidence"]
    assert "children of" in by_kind["merge"]["evidence"]


def test_a_code_as_of_a_date_answers_from_the_edition_then(
    module_db_url: str, imported: dict[str, int]
) -> None:
    with Database(module_db_url).connect() as c:
        renamed = c.execute(
            text(
                "SELECT codes_before[1], detail->>'name_before', detail->>'name_after'"
                " FROM division_event WHERE kind = 'rename' AND to_edition_id = :e LIMIT 1"
            ),
            {"e": imported["1401-08-25"]},
        ).one()
        code, before, after = renamed
        assert resolve(c, "moi", code)["name"] == after
        assert resolve(c, "moi", code, as_of=parse_date("1400-12-29"))["name"] == before
        assert resolve(c, "moi", code, as_of=parse_date("۱۴۰۱/۰۹/۰۱"))["name"] == after
        story = history(c, "moi", code)
    assert [e["present"] for e in story["editions"]] == [True, True]
    assert [e["kind"] for e in story["events"]] == ["rename"]


def test_an_edition_imported_late_is_placed_by_its_date(fresh_url: str, world: Path) -> None:
    new = (world / "lists" / "moi_divisions_1401-08-25.csv").read_bytes()
    old = (world / "lists" / "moi_divisions_1400-06-01.csv").read_bytes()
    newer = import_edition(
        Database(fresh_url), "moi", "1401", new, published_on=parse_date("1401-08-25")
    )
    assert newer.events == {}  # nothing before it yet
    import_edition(Database(fresh_url), "moi", "1400", old, published_on=parse_date("1400-06-01"))
    events = _detected(fresh_url, newer.edition_id)
    assert {"rename", "split", "merge", "create"} <= {k for k, *_ in events}
