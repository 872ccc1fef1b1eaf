"""An edition's units in memory, indexed for candidate search by ancestor and level."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from crosswalk.history import Former
from geo.models.crosswalk import LINK_AGENCIES
from geo.models.registry import LEVELS

__all__ = ["CROSSWALK_AGENCIES", "LEVEL_ORDER", "Side", "Unit", "load_side"]

LEVEL_ORDER = LEVELS  # (one list of levels: geo.models.registry)
CROSSWALK_AGENCIES = LINK_AGENCIES  # (the link's columns: geo.models.crosswalk)


@dataclass(slots=True)
class Unit:
    code: str
    level: str
    name: str
    key: str
    loose: str
    parent: str | None
    ancestors: tuple[str, ...]
    national_id: str | None
    lon: float | None
    lat: float | None
    population: int | None
    former: tuple[Former, ...] = ()  # names in the agency's older editions


@dataclass
class Side:
    """One agency's edition: its units, and ``under[(ancestor, level)]`` → codes."""

    agency: str
    edition_id: int
    units: dict[str, Unit]
    under: dict[tuple[str, str], list[str]] = field(default_factory=lambda: defaultdict(list))
    by_level: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def index(self) -> Side:
        for u in self.units.values():
            self.by_level[u.level].append(u.code)
            for a in u.ancestors:
                self.under[(a, u.level)].append(u.code)
        return self

    def children(self, code: str, level: str) -> list[str]:
        return [c for c in self.under.get((code, level), []) if self.units[c].parent == code]


def load_side(
    conn: Connection,
    agency: str,
    edition_id: int,
    former: dict[str, tuple[Former, ...]] | None = None,
) -> Side:
    """Every unit of the edition (farm points of SCI left out: they have no counterpart),
    with the former names given in ``former`` (see `crosswalk.history`)."""
    former = former or {}
    rows = conn.execute(
        text(
            "SELECT code, level, name, name_key, name_loose, parent_code, ancestors, national_id,"
            " ST_X(point), ST_Y(point), population FROM division WHERE edition_id = :e"
            " AND NOT coalesce((attrs->>'farm_point')::boolean, false)"
        ),
        {"e": edition_id},
    ).all()
    units = {
        r[0]: Unit(
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            r[5],
            tuple(r[6]),
            r[7],
            r[8],
            r[9],
            r[10],
            former=former.get(r[0], ()),
        )
        for r in rows
    }
    return Side(agency, edition_id, units).index()
