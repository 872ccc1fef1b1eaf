"""Named SQL (geo/platform/sql.py): every ``.sql`` file parses, its names and its module's
``SQL.<name>`` uses agree, and PostgreSQL accepts every statement against the schema."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from sqlalchemy import text

from geo.platform.database import Database
from geo.platform.sql import Queries, parse_queries

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(p for top in ("geo", "crosswalk", "api") for p in (ROOT / top).rglob("*.sql"))
_BIND = re.compile(r"(?<![:\w]):(\w+)")


def _used_names(module: Path) -> set[str]:
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "SQL"
    }


def test_there_are_named_queries() -> None:
    assert FILES, "no .sql file found under geo/, crosswalk/, api/"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_names_and_uses_agree(path: Path) -> None:
    module = path.with_suffix(".py")
    assert module.exists(), f"{path.name} has no module beside it"
    defined = set(Queries(path).named)
    used = _used_names(module)
    assert used - {"text"} <= defined, f"used but not in {path.name}: {used - defined}"
    assert defined <= used, f"in {path.name} but never run: {defined - used}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_postgresql_accepts_every_statement(path: Path, db_url: str) -> None:
    """In file order, in a transaction rolled back: a temporary table is made (empty: every
    parameter NULL) so that the statements after it that read it are checked too; every
    other statement is planned with EXPLAIN (names, types and functions resolved; nothing
    run)."""
    with Database(db_url).connect() as conn, conn.begin() as trans:
        for query in Queries(path):
            binds = {name: None for name in _BIND.findall(query.sql)}
            head = query.sql.lstrip().upper()
            statement = (
                query.sql
                if head.startswith(("CREATE TEMP", "ANALYZE"))
                else ("EXPLAIN " + query.sql)
            )
            try:
                with conn.begin_nested():
                    conn.execute(text(statement), binds)
            except Exception as exc:  # reported with the query's name
                pytest.fail(f"{path.name}:{query.line} {query.name}: {exc}")
        trans.rollback()


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("SELECT 1;\n-- name: a\nSELECT 2", "before the first"),
        ("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2", "named twice"),
        ("-- name: a\n-- only a comment\n", "no statement"),
    ],
)
def test_a_malformed_file_is_refused_with_its_line(source: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_queries(source, "x.sql")


def test_a_block_keeps_its_description_and_drops_the_semicolon() -> None:
    found = parse_queries("-- name: one\n-- The first.\n-- Really.\nSELECT 1;\n")
    assert found["one"].doc == "The first. Really." and found["one"].sql == "SELECT 1"
    assert found["one"].line == 1
