"""The names the reference units had in the reference agency's older editions.

Lists lag: the SCI geography file of 1399 still writes a village under the name it had
before MOI renamed it in 1400. Following each unit of the reference edition back into the
agency's older editions (by national id, then code, then name under the followed parent:
the same rules as the registry's events) gives its former names, and a former name equal
to the other list's name is evidence a reviewer can read ("its name in MOI 1400-06-01").
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from geo.geodata.persian import loose_key
from geo.geodata.registry.events import follow, load_units

__all__ = ["Former", "former_names"]

MAX_EDITIONS = 3  # the older editions looked at, newest first


@dataclass(frozen=True, slots=True)
class Former:
    name: str
    key: str
    loose: str
    edition: str  # the older edition's label


def _older(conn: Connection, agency: str, edition_id: int) -> list[tuple[int, str]]:
    return [
        (r[0], r[1])
        for r in conn.execute(
            text(
                "WITH e AS (SELECT coalesce(published_on, imported_at::date) AS d, id"
                " FROM edition WHERE id = :e)"
                " SELECT o.id, o.label FROM edition o, e WHERE o.agency = :a AND o.id <> e.id"
                " AND (coalesce(o.published_on, o.imported_at::date), o.id) < (e.d, e.id)"
                " ORDER BY coalesce(o.published_on, o.imported_at::date) DESC, o.id DESC"
                " LIMIT :n"
            ),
            {"a": agency, "e": edition_id, "n": MAX_EDITIONS},
        )
    ]


def former_names(conn: Connection, agency: str, edition_id: int) -> dict[str, tuple[Former, ...]]:
    """code in ``edition_id`` → the other names it had in the agency's older editions."""
    older = _older(conn, agency, edition_id)
    if not older:
        return {}
    current = load_units(conn, edition_id)
    out: dict[str, list[Former]] = {}
    for old_id, label in older:
        old = load_units(conn, old_id)
        for o, n in follow(old, current).items():
            before, now = old[o], current[n]
            if before.key == now.key:
                continue
            seen = out.setdefault(n, [])
            if all(f.key != before.key for f in seen):
                seen.append(Former(before.name, before.key, loose_key(before.name), label))
    return {code: tuple(names) for code, names in out.items()}
