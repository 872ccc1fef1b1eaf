"""Matching rows of names to units, on the generator's world: SCI's own rows with their codes
stripped, the same typed the way people type, a wrong county, MOI's former names."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, text

from data.generator import generate
from data.lists import import_lists
from geo.geodata.registry.matching import Matcher
from geo.platform.database import Database


@pytest.fixture(scope="module")
def url(module_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    world = tmp_path_factory.mktemp("matching") / "small"
    generate(world, "small", seed=11)
    import_lists(Database(module_db_url), world)
    return module_db_url


def _rows(c: Connection, agency: str, level: str) -> list[dict[str, str]]:
    """The agency's units of ``level`` as a hand-made table would hold them: names only."""
    found = c.execute(
        text(
            "SELECT d.code, d.name, (SELECT json_object_agg(a.level, a.name) FROM division a"
            "   WHERE a.edition_id = d.edition_id AND a.code = ANY(d.ancestors)) AS above"
            " FROM division d JOIN edition e ON e.id = d.edition_id"
            " WHERE e.agency = :a AND d.level = :l AND e.id = (SELECT max(id) FROM edition"
            "   WHERE agency = :a) ORDER BY d.code"
        ),
        {"a": agency, "l": level},
    ).all()
    return [{"truth": code, "place": name, **(above or {})} for code, name, above in found]


def test_sci_rows_without_codes_find_their_units(url: str) -> None:
    with Database(url).connect() as c:
        rows = _rows(c, "sci", "village")
        matches = Matcher(c, "sci").match_all(rows)
    assert len(rows) > 500
    chosen = [(r, m) for r, m in zip(rows, matches, strict=True) if m.code]
    wrong = [(r["truth"], m.code) for r, m in chosen if m.code != r["truth"]]
    assert wrong == []  # never a wrong unit
    right = sum(m.status == "exact" for _, m in chosen)
    assert right / len(rows) >= 0.99
    for r, m in zip(rows, matches, strict=True):
        if m.status == "ambiguous":  # homonyms under the same parents: the right one is there
            assert r["truth"] in [c["code"] for c in m.candidates]


def test_names_typed_the_way_people_type(url: str) -> None:
    """Arabic ي and ك, a lost ZWNJ, «آباد» joined or apart: still the same unit."""

    def typed(name: str) -> str:
        return (
            name.replace("ی", "ي").replace("ک", "ك").replace("\u200c", "").replace(" آباد", "آباد")
        )

    with Database(url).connect() as c:
        rows = _rows(c, "sci", "village")[:400]
        noisy = [{k: typed(v) if k != "truth" else v for k, v in r.items()} for r in rows]
        matches = Matcher(c, "sci").match_all(noisy)
    assert all(m.code in (None, r["truth"]) for r, m in zip(rows, matches, strict=True))
    assert sum(m.code == r["truth"] for r, m in zip(rows, matches, strict=True)) >= 0.97 * len(rows)


def test_a_wrong_county_is_said_not_hidden(url: str) -> None:
    with Database(url).connect() as c:
        rows = _rows(c, "sci", "village")
        counties = sorted({r["county"] for r in rows})
        matcher = Matcher(c, "sci")
        plain = matcher.match_all(rows)
        unique = [r for r, m in zip(rows, plain, strict=True) if m.status == "exact"][:50]
        moved = [{**r, "county": next(x for x in counties if x != r["county"])} for r in unique]
        answers = matcher.match_all(moved)
    wrong_parent = [
        (r, m) for r, m in zip(moved, answers, strict=True) if m.status == "wrong_parent"
    ]
    assert len(wrong_parent) >= len(moved) // 2
    for r, m in wrong_parent:
        assert m.code == r["truth"] and "county" in m.evidence
    assert all(m.status in {"wrong_parent", "ambiguous"} for m in answers)


def test_former_names_lead_to_the_renamed_unit(url: str) -> None:
    with Database(url).connect() as c:
        renames = c.execute(
            text(
                "SELECT ev.codes_after[1], ev.detail->>'name_before', d.level"
                " FROM division_event ev JOIN edition e ON e.id = ev.to_edition_id JOIN division d"
                "   ON d.edition_id = e.id AND d.code = ev.codes_after[1]"
                " WHERE ev.agency = 'moi' AND ev.kind = 'rename'"
            )
        ).all()
        matcher = Matcher(c, "moi")
        answers = [
            (code, matcher.match({"place": old}))
            for code, old, level in renames
            if level in {"village", "city"}
        ]
    assert answers
    found = [(code, m) for code, m in answers if m.status == "former_name"]
    assert found and all(m.code == code for code, m in found)


def test_codes_and_empty_rows(url: str) -> None:
    with Database(url).connect() as c:
        matcher = Matcher(c, "sci")
        code = next(iter(matcher.units))
        assert matcher.match({"code": code}).status == "exact"
        assert matcher.match({"place": "  "}).status == "not_found"
        assert matcher.match({"place": "ناکجاآباد زززز"}).status == "not_found"
