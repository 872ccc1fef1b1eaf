"""Matching messy tables to one agency's units: rows of names typed by hand (province,
county, district, rural district, city or village), with or without codes.

Each row gets a status, the unit chosen (if one is), a score, evidence in words and up to
five candidates:

- ``exact``: the code given resolves, or the place's name (match key) and every parent
  name given agree with one unit;
- ``variant``: as exact, but some name agrees only by its loose key (spelling variants);
- ``former_name``: the name is an older edition's name of one unit (followed by the
  agency's events to the edition in force);
- ``ambiguous``: several units fit as well (homonyms: none is chosen);
- ``wrong_parent``: the name fits one unit best, but a parent given disagrees;
- ``not_found``: no unit has the name.

The agency's edition is read once into memory (names and keys by level, parents), so a
table of 100,000 rows costs dictionary lookups, not statements.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, text

from geo.geodata.persian import is_digits, loose_key, match_key, normalize_code
from geo.geodata.registry.editions import edition_in_force
from geo.geodata.registry.lineage import lineage_of
from geo.platform.bulk import bulk
from geo.platform.database import read_rows

__all__ = ["COLUMNS", "STATUSES", "Match", "Matcher"]

# The roles a table's columns may play, parents first ("place": a city or a village).
COLUMNS = ("province", "county", "district", "rural", "place")
STATUSES = ("exact", "variant", "former_name", "ambiguous", "wrong_parent", "not_found")
_PLACE_LEVELS = ("village", "city")
_LEVEL_OF = {"province": "province", "county": "county", "district": "district", "rural": "rural"}
MAX_CANDIDATES = 5
# Tables repeat their parents' names row after row: each is folded once.
_key = lru_cache(maxsize=65536)(match_key)
_loose = lru_cache(maxsize=65536)(loose_key)
_AGREEMENT_SCORE = {"agrees": 0.1, "spelling": 0.08, "against": -0.2}
_AGREES, _SPELLING, _AGAINST = (_AGREEMENT_SCORE[a] for a in ("agrees", "spelling", "against"))


@dataclass(frozen=True)
class _Unit:
    code: str
    level: str
    name: str
    key: str
    loose: str
    ancestors: tuple[str, ...]


@dataclass
class Match:
    """One row's answer."""

    status: str
    code: str | None = None
    name: str | None = None
    level: str | None = None
    score: float = 0.0
    evidence: str = ""
    candidates: list[dict[str, Any]] = field(default_factory=list)
    by_code: bool = False  # decided by the row's own code (nothing overrides it)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "name": self.name,
            "level": self.level,
            "score": round(self.score, 3),
            "evidence": self.evidence,
            "candidates": self.candidates,
        }


class Matcher:
    """One agency's edition in force (on ``as_of``), ready to match rows against."""

    def __init__(self, conn: Connection, agency: str, as_of: date | None = None) -> None:
        self.agency = agency
        self.edition = edition_in_force(conn, agency, as_of)
        self.units: dict[str, _Unit] = {}
        self.by_key: dict[tuple[str, str], list[str]] = {}
        self.by_loose: dict[tuple[str, str], list[str]] = {}
        for code, level, name, key, loose, ancestors in read_rows(
            conn,
            "SELECT code, level, name, name_key, name_loose, ancestors FROM division"
            " WHERE edition_id = :e ORDER BY code",
            {"e": self.edition["id"]},
        ):
            unit = _Unit(code, level, name, key, loose, tuple(ancestors or ()))
            self.units[code] = unit
            self.by_key.setdefault((level, key), []).append(code)
            self.by_loose.setdefault((level, loose), []).append(code)
        self._parents: dict[str, dict[str, _Unit]] = {}
        self._former = _FormerNames(conn, agency, self.edition["id"])

    def match(self, row: Mapping[str, str | None]) -> Match:
        """Match one row: its ``code`` (of this agency) and its names by role
        (:data:`COLUMNS`); roles absent or empty are ignored."""
        code = normalize_code(row.get("code") or "")
        if code and is_digits(code) and code in self.units:
            unit = self.units[code]
            found = self._chosen("exact", unit, 1.0, f"code {code} is «{unit.name}»")
            found.by_code = True
            return found
        names = {r: (row.get(r) or "").strip() for r in COLUMNS}
        names = {r: v for r, v in names.items() if v}
        if not names:
            return Match("not_found", evidence="no name and no known code")
        leaf_role = next(r for r in reversed(COLUMNS) if r in names)
        leaf = names[leaf_role]
        levels = _PLACE_LEVELS if leaf_role == "place" else (_LEVEL_OF[leaf_role],)
        exact = {c for lv in levels for c in self.by_key.get((lv, _key(leaf)), [])}
        loose = {c for lv in levels for c in self.by_loose.get((lv, _loose(leaf)), [])} - exact
        parents = _fold({r: v for r, v in names.items() if r != leaf_role})
        scored = [self._score(c, c in exact, parents) for c in [*exact, *loose]]
        if not scored:
            return self._former_or_not_found(leaf, levels, parents)
        scored.sort(key=lambda s: (-s.score, s.code))
        fitting = [s for s in scored if not s.against]
        if len(fitting) == 1:
            best = fitting[0]
            status = "exact" if best.exact and not best.loosely else "variant"
            return self._chosen(
                status, self.units[best.code], best.score, self._evidence(best), scored
            )
        if len(fitting) > 1:
            top = [s for s in fitting if s.score == fitting[0].score]
            if len(top) == 1:  # more parents agree with one of them
                best = top[0]
                status = "exact" if best.exact and not best.loosely else "variant"
                return self._chosen(
                    status, self.units[best.code], best.score, self._evidence(best), scored
                )
            return Match(
                "ambiguous",
                score=fitting[0].score,
                evidence=f"{len(fitting)} units named «{leaf}» fit what the row says",
                candidates=self._candidates(scored),
            )
        best = scored[0]
        if len(scored) > 1 and scored[1].score == best.score:
            return Match(
                "ambiguous",
                score=best.score,
                evidence=f"{len(scored)} units named «{leaf}», none under the parents given",
                candidates=self._candidates(scored),
            )
        return self._chosen(
            "wrong_parent", self.units[best.code], best.score, self._evidence(best), scored
        )

    @bulk
    def match_all(self, rows: Iterable[Mapping[str, str | None]]) -> list[Match]:
        return [self.match(r) for r in rows]

    def _score(self, code: str, exact: bool, parents: _Parents) -> _Scored:
        """A candidate's score against the row's parents (the words come later, for the
        few candidates shown: most rows have many homonyms)."""
        score = 0.6 if exact else 0.45
        against: list[str] = []
        loosely = not exact
        above = self._above(code)
        for role, _given, level, key, loose in parents:  # (inline: ~8 candidates a row)
            parent = above.get(level)
            if parent is None:
                continue
            # `_agreement` written out: 3 million comparisons for 100,000 rows
            if parent.key == key:
                score += _AGREES
            elif parent.loose == loose:
                score += _SPELLING
                loosely = True
            else:
                score += _AGAINST
                against.append(role)
        return _Scored(code, max(0.0, min(1.0, score)), exact, loosely, against, parents)

    def _parents_said(self, code: str, parents: _Parents) -> Iterator[tuple[str, str, _Unit, str]]:
        """Each parent the row names that the unit has at that level: (role, the name
        given, the unit's parent, ``agrees`` / ``spelling`` / ``against``). A parent level
        the unit lacks says nothing."""
        above = self._above(code)
        for role, given, level, key, loose in parents:
            parent = above.get(level)
            if parent is not None:
                yield role, given, parent, _agreement(parent, key, loose)

    def _above(self, code: str) -> dict[str, _Unit]:
        found = self._parents.get(code)
        if found is None:
            unit = self.units[code]
            found = {self.units[a].level: self.units[a] for a in unit.ancestors if a in self.units}
            self._parents[code] = found
        return found

    def _evidence(self, scored: _Scored) -> str:
        unit = self.units[scored.code]
        words = [f"«{unit.name}» ({'its name' if scored.exact else 'a spelling of its name'})"]
        for role, given, parent, agreement in self._parents_said(scored.code, scored.parents):
            if agreement == "agrees":
                words.append(f"{role} «{parent.name}» agrees")
            elif agreement == "spelling":
                words.append(f"{role} «{given}» is a spelling of «{parent.name}»")
            else:
                words.append(f"{role} «{given}» given, but it lies in «{parent.name}»")
        return "; ".join(words)

    def _chosen(
        self,
        status: str,
        unit: _Unit,
        score: float,
        evidence: str,
        scored: list[_Scored] | None = None,
    ) -> Match:
        others = [s for s in scored or [] if s.code != unit.code]
        return Match(
            status,
            unit.code,
            unit.name,
            unit.level,
            score,
            evidence,
            self._candidates(others),
        )

    def _candidates(self, scored: list[_Scored]) -> list[dict[str, Any]]:
        return [
            {
                "code": s.code,
                "name": self.units[s.code].name,
                "level": self.units[s.code].level,
                "parents": [
                    self.units[a].name for a in self.units[s.code].ancestors if a in self.units
                ],
                "score": round(s.score, 3),
            }
            for s in scored[:MAX_CANDIDATES]
        ]

    def _former_or_not_found(self, leaf: str, levels: tuple[str, ...], parents: _Parents) -> Match:
        now = sorted(c for c in self._former.codes_now(_key(leaf), levels) if c in self.units)
        if len(now) == 1:
            unit = self.units[now[0]]
            return self._chosen(
                "former_name", unit, 0.5, f"«{leaf}» is a former name of «{unit.name}»"
            )
        if len(now) > 1:
            return Match(
                "ambiguous",
                score=0.5,
                evidence=f"«{leaf}» is a former name of {len(now)} units",
                candidates=self._candidates([self._score(c, False, parents) for c in now]),
            )
        return Match("not_found", evidence=f"no unit of {self.agency} is named «{leaf}»")


@dataclass(frozen=True)
class _Scored:
    code: str
    score: float
    exact: bool
    loosely: bool
    against: list[str]
    parents: _Parents


# The parents a row names, each folded once: (role, name given, level, match key, loose key).
_Parents = tuple[tuple[str, str, str, str, str], ...]


def _fold(parents: dict[str, str]) -> _Parents:
    return tuple(
        (role, given, _LEVEL_OF.get(role, role), _key(given), _loose(given))
        for role, given in parents.items()
    )


def _agreement(parent: _Unit, key: str, loose: str) -> str:
    """How a parent the row names compares with the unit's: the one comparison of both
    the score and the evidence."""
    if parent.key == key:
        return "agrees"
    if parent.loose == loose:
        return "spelling"
    return "against"


class _FormerNames:
    """Names of the agency's older editions, followed to the edition in force (lazily)."""

    def __init__(self, conn: Connection, agency: str, edition_id: int) -> None:
        self.conn, self.agency, self.edition_id = conn, agency, edition_id
        self._by_key: dict[tuple[str, str], set[str]] | None = None

    def codes_now(self, key: str, levels: tuple[str, ...]) -> set[str]:
        if self._by_key is None:
            self._by_key = self._load()
        return set().union(*(self._by_key.get((lv, key), set()) for lv in levels))

    def _load(self) -> dict[tuple[str, str], set[str]]:
        lineage = lineage_of(self.conn, self.agency)
        now = next((e for e in lineage.editions if e.id == self.edition_id), None)
        found: dict[tuple[str, str], set[str]] = {}
        if now is None:
            return found
        for old in [e for e in lineage.editions if lineage.before(e, now)]:
            rows = self.conn.execute(
                text(
                    "SELECT o.code, o.level, o.name_key FROM division o WHERE o.edition_id = :o"
                    " AND NOT EXISTS (SELECT 1 FROM division n WHERE n.edition_id = :n"
                    "   AND n.name_key = o.name_key AND n.level = o.level)"
                ),
                {"o": old.id, "n": now.id},
            ).all()
            reach = lineage.walk_many({r.code for r in rows}, old, now)
            for code, level, key in rows:
                found.setdefault((level, key), set()).update(reach.get(code, {}))
        return found
