"""Named SQL: statements kept in a ``.sql`` file beside the module that runs them.

A module's statements are read as SQL (highlighted, copied into ``psql``, reviewed as SQL)
and run by name, so building a query is separate from running it::

    -- name: lock_villages
    -- Each village's advisory lock, in code order (no deadlock between two uploads).
    SELECT pg_advisory_xact_lock(hashtextextended('village:' || :a || ':' || village, 0))
    FROM (SELECT village FROM pub_village ORDER BY 1) villages;

A block starts at a ``-- name: <identifier>`` line; the comment lines right after it are
its description; the statement runs to the next ``-- name:`` (a trailing ``;`` is
dropped). Parameters are SQLAlchemy's ``:name`` binds: values are always bound, never
spliced. The file has no macros: what varies between statements is a parameter, a SQL
function (a migration) or a temporary table one statement fills and the next reads.

``tests/test_named_sql.py`` checks every file: names unique, each one used by its module and
each one used defined, and every statement prepared by PostgreSQL against the schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import TextClause, text

__all__ = ["NamedQuery", "Queries", "parse_queries", "queries"]

_NAME = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")


@dataclass(frozen=True)
class NamedQuery:
    name: str
    doc: str
    sql: str
    line: int  # where the block starts in its file (1-based)


def parse_queries(source: str, origin: str = "<sql>") -> dict[str, NamedQuery]:
    """The named blocks of ``source``; ``ValueError`` naming the line for a block without a
    name, a repeated name or an empty statement."""
    found: dict[str, NamedQuery] = {}
    name: str | None = None
    start = 0
    doc: list[str] = []
    body: list[str] = []

    def close() -> None:
        if name is None:
            return
        sql = "\n".join(body).strip().removesuffix(";").strip()
        if not sql:
            raise ValueError(f"{origin}:{start}: query {name!r} has no statement")
        found[name] = NamedQuery(name, " ".join(doc).strip(), sql, start)

    for number, line in enumerate(source.splitlines(), start=1):
        match = _NAME.match(line.strip())
        if match:
            close()
            name, start, doc, body = match.group(1), number, [], []
            if name in found:
                raise ValueError(f"{origin}:{number}: query {name!r} is named twice")
            continue
        if name is None:
            if line.strip() and not line.strip().startswith("--"):
                raise ValueError(f"{origin}:{number}: SQL before the first '-- name:' line")
            continue
        if not body and line.strip().startswith("--"):
            doc.append(line.strip().removeprefix("--").strip())
        else:
            body.append(line)
    close()
    return found


class Queries:
    """The statements of one ``.sql`` file, as SQLAlchemy ``TextClause`` by attribute:
    ``SQL.lock_villages``. An unknown name raises ``AttributeError`` naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.named = parse_queries(path.read_text(encoding="utf-8"), str(path))
        self._clauses = {name: text(q.sql) for name, q in self.named.items()}

    def __getattr__(self, name: str) -> TextClause:
        try:
            return self.__dict__["_clauses"][name]
        except KeyError:
            raise AttributeError(f"{self.__dict__.get('path')} has no query {name!r}") from None

    def __iter__(self) -> Iterator[NamedQuery]:
        return iter(self.named.values())


@cache
def queries(module_file: str) -> Queries:
    """The queries of the ``.sql`` file beside ``module_file`` (pass ``__file__``)."""
    return Queries(Path(module_file).with_suffix(".sql"))
