"""Lineage of one agency's units across its editions: a code followed forward to its
successors or back to its predecessors through the events between consecutive editions.

An edition holds a code or not; between two consecutive editions a code either takes part
in events (rename, move, recode, split, merge, abolish: it becomes their ``codes_after``)
or, untouched, continues under the same code when the next edition still has it. Following
that edition by edition gives the units a code became (or came from), with the events on
the way; the change type says how many units on each side share them (``1:1``, ``split``,
``merge``, ``n:m``; ``abolished`` forward or ``created`` back when nothing is reached).

A code asked at a date (or now) that its agency's edition in force no longer holds, but an
earlier edition did, is :class:`UnitGone` (HTTP 410) with its successors in force then —
not a 404 with look-alikes (DESIGN §12).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, NamedTuple

from sqlalchemy import Connection, text

from geo.errors import Gone, InvalidParameter, NotFound
from geo.geodata.registry.agencies import require_agency
from geo.platform.database import read_rows

__all__ = [
    "Edition",
    "Lineage",
    "Step",
    "Trail",
    "UnitGone",
    "basis_of",
    "change_type",
    "follow_back",
    "follow_forward",
    "gone_or_unknown",
    "in_force",
    "lineage_of",
    "unit_names",
    "unknown_code",
]

_ORDER = "coalesce(published_on, imported_at::date), id"


class UnitGone(Gone):
    """The code existed in an earlier edition and is not in the one in force."""

    code = "unit_gone"


@dataclass(frozen=True)
class Edition:
    id: int
    label: str
    published_on: date | None
    in_force_from: date  # published, else imported (as `editions.edition_in_force` reads it)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "published_on": self.published_on}


@dataclass(frozen=True)
class Step:
    """One event on a trail, between two consecutive editions."""

    kind: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    from_edition: Edition | None
    to_edition: Edition
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "codes_before": list(self.before),
            "codes_after": list(self.after),
            "from_edition": self.from_edition.as_dict() if self.from_edition else None,
            "to_edition": self.to_edition.as_dict(),
            "date": self.to_edition.published_on,
            "detail": self.detail,
        }


@dataclass
class Trail:
    """Where a code led from one edition to another: the units at the end, the events."""

    agency: str
    code: str
    start: Edition
    end: Edition
    units: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    # each end unit's share of the start's unit (forward; back: of the end unit's in the
    # start's), None when unknown, and what the shares rest on
    weights: dict[str, float | None] = field(default_factory=dict)
    bases: dict[str, set[str]] = field(default_factory=dict)


class Lineage:
    """An agency's editions in order and its events, read once per question."""

    def __init__(self, conn: Connection, agency: str) -> None:
        self.conn = conn
        self.agency = agency
        self.editions = [
            Edition(r.id, r.label, r.published_on, r.in_force_from)
            for r in conn.execute(
                text(
                    "SELECT id, label, published_on,"
                    f" coalesce(published_on, imported_at::date) AS in_force_from"
                    f" FROM edition WHERE agency = :a ORDER BY {_ORDER}"
                ),
                {"a": agency},
            )
        ]
        self.position = {e.id: i for i, e in enumerate(self.editions)}
        self._shares_cache: dict[Any, list[dict[str, Any]]] = {}
        self.events: dict[int, list[Step]] = {}  # by the edition they lead to
        rows = conn.execute(
            text(
                "SELECT kind, codes_before, codes_after, from_edition_id, to_edition_id, detail"
                " FROM division_event WHERE agency = :a ORDER BY id"
            ),
            {"a": agency},
        )
        by_id = {e.id: e for e in self.editions}
        for r in rows:
            if r.to_edition_id not in by_id:
                continue
            self.events.setdefault(r.to_edition_id, []).append(
                Step(
                    r.kind,
                    tuple(r.codes_before),
                    tuple(r.codes_after),
                    by_id.get(r.from_edition_id),
                    by_id[r.to_edition_id],
                    dict(r.detail or {}),
                )
            )

    def present(self, edition: Edition, codes: Iterable[str]) -> set[str]:
        """Which of ``codes`` (digits) the edition holds."""
        wanted = sorted(set(codes))
        if not wanted:
            return set()
        return {
            code
            for (code,) in read_rows(
                self.conn,
                "SELECT d.code FROM unnest(string_to_array(:c, ',')) AS q(code)"
                " JOIN division d ON d.edition_id = :e AND d.code = q.code",
                {"e": edition.id, "c": ",".join(wanted)},
            )
        }

    def walk_many(
        self, codes: Iterable[str], start: Edition, end: Edition
    ) -> dict[str, dict[str, Weighted]]:
        """:meth:`walk` of many codes at once (one presence query per edition crossed):
        each code of ``start`` to the codes it reaches in ``end`` with their weights and
        bases, without the events."""
        i, j = self.position[start.id], self.position[end.id]
        forward = j >= i
        reach: dict[str, dict[str, Weighted]] = {c: {c: _IDENTITY} for c in codes}
        for k in range(i, j) if forward else range(i, j, -1):
            here, there = self.editions[k], self.editions[k + 1 if forward else k - 1]
            touching: dict[str, list[Step]] = {}
            for s in self.events.get(there.id if forward else here.id, []):
                for c in s.before if forward else s.after:
                    touching.setdefault(c, []).append(s)
            frontier = {u for now in reach.values() for u in now}
            kept = self.present(there, frontier - touching.keys())
            # where each unit touched by an event goes (the others stay, or are gone)
            self.prefetch_shares({id(s): s for c in frontier for s in touching.get(c, [])}.values())
            step = {
                c: [
                    (other, share, basis)
                    for s in found
                    for other, (share, basis) in self._shares(s, c, forward).items()
                ]
                for c, found in touching.items()
                if c in frontier
            }
            moved: dict[str, dict[str, Weighted]] = {}
            for code, now in reach.items():
                if len(now) == 1:  # most codes: one unit, untouched by this edition's events
                    ((c, _),) = now.items()
                    if c not in step:
                        moved[code] = now if c in kept else {}
                        continue
                weight: dict[str, float | None] = {}
                bases: dict[str, set[str]] = {}
                for c, (carried, basis) in now.items():
                    goes = step.get(c, [(c, 1.0, "identity")] if c in kept else [])
                    for other, share, how in goes:
                        _add(weight, bases, other, carried, share, set(basis) | {how})
                moved[code] = {u: (weight[u], frozenset(bases[u])) for u in weight}
            reach = moved
        return reach

    def before(self, a: Edition, b: Edition, *, inclusive: bool = False) -> bool:
        """Edition ``a`` comes before ``b`` (or is ``b``, when ``inclusive``)."""
        i, j = self.position[a.id], self.position[b.id]
        return i <= j if inclusive else i < j

    def editions_with(self, code: str) -> list[Edition]:
        ids = set(
            self.conn.execute(
                text("SELECT edition_id FROM division WHERE edition_id = ANY(:e) AND code = :c"),
                {"e": list(self.position), "c": code},
            ).scalars()
        )
        return [e for e in self.editions if e.id in ids]

    def walk(self, code: str, start: Edition, end: Edition) -> Trail:
        """Follow ``code`` of edition ``start`` to edition ``end`` (later or earlier), with
        each end unit's weight (:meth:`shares` of the splits and merges on the way)."""
        trail = Trail(self.agency, code, start, end)
        i, j = self.position[start.id], self.position[end.id]
        weight: dict[str, float | None] = {code: 1.0}
        bases: dict[str, set[str]] = {code: {"identity"}}
        forward = j >= i
        for k in range(i, j) if forward else range(i, j, -1):
            here, there = self.editions[k], self.editions[k + 1 if forward else k - 1]
            joining = self.events.get(there.id if forward else here.id, [])
            next_weight: dict[str, float | None] = {}
            next_bases: dict[str, set[str]] = {}
            untouched = set()
            for c in sorted(weight):
                touching = [s for s in joining if c in (s.before if forward else s.after)]
                for s in touching:
                    if s not in trail.steps:
                        trail.steps.append(s)
                    for other, (share, basis) in self._shares(s, c, forward).items():
                        _add(next_weight, next_bases, other, weight[c], share, bases[c] | {basis})
                if not touching:
                    untouched.add(c)
            for c in self.present(there, untouched):
                _add(next_weight, next_bases, c, weight[c], 1.0, bases[c])
            weight, bases = next_weight, next_bases
        trail.units = sorted(weight)
        trail.weights, trail.bases = weight, bases
        return trail

    def _shares(self, step: Step, code: str, forward: bool) -> dict[str, tuple[float | None, str]]:
        """Where ``step`` takes ``code`` and which share of it goes there (forward: of the
        source; back: of the target that came from each source)."""
        shares = {(w["from"], w["to"]): w for w in self.shares(step)}
        out: dict[str, tuple[float | None, str]] = {}
        for other in step.after if forward else step.before:
            pair = (code, other) if forward else (other, code)
            w = shares.get(pair)
            if w is None:
                out[other] = (1.0, "identity") if step.kind not in _SHARED else (None, "unknown")
            else:
                out[other] = (w["share_of_source" if forward else "share_of_target"], w["basis"])
        return out

    def prefetch_shares(self, steps: Iterable[Step]) -> None:
        """Compute the shares of many steps with one read of their units (a national walk
        crosses hundreds of splits and merges: one statement each cost a tenth of a
        second)."""
        todo = [
            s
            for s in steps
            if s.kind in _SHARED
            and s.from_edition is not None
            and self._key(s) not in self._shares_cache
        ]
        known = _sides_of(self.conn, todo)
        for s in todo:
            self._shares_cache[self._key(s)] = _shares_of(self.conn, s, known)

    @staticmethod
    def _key(step: Step) -> tuple[Any, ...]:
        assert step.from_edition is not None
        return (step.from_edition.id, step.to_edition.id, step.before, step.after)

    def shares(self, step: Step) -> list[dict[str, Any]]:
        """The shares of a split or merge between each unit before and each after: of the
        source that went to the target and of the target that came from the source, by
        boundary areas when both sides have them, else by population (a split's targets'
        or a merge's sources'), else unknown — never invented. Other events: none."""
        if step.kind not in _SHARED or step.from_edition is None:
            return []
        key = self._key(step)
        if key not in self._shares_cache:
            self._shares_cache[key] = _shares_of(self.conn, step)
        return self._shares_cache[key]


def _add(
    weight: dict[str, float | None],
    bases: dict[str, set[str]],
    code: str,
    carried: float | None,
    share: float | None,
    basis: set[str],
) -> None:
    part = None if carried is None or share is None else carried * share
    if code in weight:
        known = weight[code]
        weight[code] = None if known is None or part is None else known + part
    else:
        weight[code] = part
    bases.setdefault(code, set()).update(basis)


_SHARED = ("split", "merge")
Weighted = tuple[float | None, frozenset[str]]  # a unit's weight and what it rests on
_IDENTITY: Weighted = (1.0, frozenset({"identity"}))


class _Side(NamedTuple):
    code: str
    population: Any  # int or None (the share rules test it before dividing)
    has_polygon: bool
    m2: Any  # float or None (no polygon)


def _sides_of(conn: Connection, steps: Iterable[Step]) -> dict[tuple[int, str], _Side]:
    """The units on both sides of the steps (population, boundary, area) in one statement,
    by (edition, code)."""
    wanted: set[tuple[int, str]] = set()
    for step in steps:
        assert step.from_edition is not None
        wanted |= {(step.from_edition.id, c) for c in step.before}
        wanted |= {(step.to_edition.id, c) for c in step.after}
    if not wanted:
        return {}
    pairs = sorted(wanted)
    rows = read_rows(
        conn,
        "SELECT d.edition_id, d.code, d.population, d.polygon IS NOT NULL,"
        " ST_Area(d.polygon::geography) FROM unnest(CAST(:e AS int[]),"
        " string_to_array(:c, ',')) AS q(e, code)"
        " JOIN division d ON d.edition_id = q.e AND d.code = q.code",
        {"e": [e for e, _ in pairs], "c": ",".join(c for _, c in pairs)},
    )
    return {(e, code): _Side(code, pop, has, m2) for e, code, pop, has, m2 in rows}


def _shares_of(
    conn: Connection, step: Step, known: dict[tuple[int, str], _Side] | None = None
) -> list[dict[str, Any]]:
    assert step.from_edition is not None
    known = _sides_of(conn, [step]) if known is None else known
    sides = {
        "before": {
            c: known[(step.from_edition.id, c)]
            for c in step.before
            if (step.from_edition.id, c) in known
        },
        "after": {
            c: known[(step.to_edition.id, c)]
            for c in step.after
            if (step.to_edition.id, c) in known
        },
    }
    before, after = sides["before"], sides["after"]
    pairs = [(b, a) for b in step.before for a in step.after]
    if (
        all(u.has_polygon for u in [*before.values(), *after.values()])
        and len(before) == len(step.before)
        and len(after) == len(step.after)
    ):
        overlap = {
            (r.b, r.a): r.m2
            for r in conn.execute(
                text(
                    "SELECT b.code AS b, a.code AS a,"
                    " ST_Area(ST_Intersection(b.polygon, a.polygon)::geography) AS m2"
                    " FROM division b, division a WHERE b.edition_id = :f AND b.code = ANY(:bc)"
                    " AND a.edition_id = :t AND a.code = ANY(:ac)"
                ),
                {
                    "f": step.from_edition.id,
                    "t": step.to_edition.id,
                    "bc": list(step.before),
                    "ac": list(step.after),
                },
            )
        }
        return [
            _share(b, a, overlap[(b, a)] / before[b].m2, overlap[(b, a)] / after[a].m2, "area")
            for b, a in pairs
        ]
    counted = after if step.kind == "split" else before
    codes = step.after if step.kind == "split" else step.before
    if len(counted) == len(codes) and all(u.population for u in counted.values()):
        total = sum(u.population for u in counted.values())
        if step.kind == "split":  # the source's people divided among its targets
            return [_share(b, a, after[a].population / total, 1.0, "population") for b, a in pairs]
        return [_share(b, a, 1.0, before[b].population / total, "population") for b, a in pairs]
    return [_share(b, a, None, None, "unknown") for b, a in pairs]


def _share(
    source: str, target: str, of_source: float | None, of_target: float | None, basis: str
) -> dict[str, Any]:
    rounded = [None if v is None else round(v, 6) for v in (of_source, of_target)]
    return {
        "from": source,
        "to": target,
        "share_of_source": rounded[0],
        "share_of_target": rounded[1],
        "basis": basis,
    }


def change_type(lineage: Lineage, trail: Trail) -> str:
    """How the units at the trail's two ends relate, in time order (each end unit followed
    back to the start)."""
    forward = lineage.position[trail.end.id] >= lineage.position[trail.start.id]
    if not trail.units:  # nothing at the end: followed forward, it ended; back, it began
        return "abolished" if forward else "created"
    back = lineage.walk_many(trail.units, trail.end, trail.start)
    sources = {source for reached in back.values() for source in reached}
    # (in time order: a trail followed back reads from its end to its start)
    many_ends, many_starts = len(trail.units) > 1, len(sources) > 1
    many_after, many_before = (many_ends, many_starts) if forward else (many_starts, many_ends)
    if many_after and many_before:
        return "n:m"
    return "split" if many_after else "merge" if many_before else "1:1"


def unit_names(conn: Connection, edition: Edition, codes: list[str]) -> list[dict[str, Any]]:
    rows = read_rows(
        conn,
        "SELECT code, level, name FROM division WHERE edition_id = :e"
        " AND code = ANY(string_to_array(:c, ',')) ORDER BY code",
        {"e": edition.id, "c": ",".join(codes)},
    )
    return [{"code": code, "level": level, "name": name} for code, level, name in rows]


def _answer(lineage: Lineage, trail: Trail) -> dict[str, Any]:
    units = [
        {
            **unit,
            "weight": trail.weights[unit["code"]],
            "weight_basis": basis_of(trail.bases[unit["code"]]),
        }
        for unit in unit_names(lineage.conn, trail.end, trail.units)
    ]
    return {
        "agency": trail.agency,
        "code": trail.code,
        "from_edition": trail.start.as_dict(),
        "to_edition": trail.end.as_dict(),
        "change_type": change_type(lineage, trail),
        "units": units,
        "events": [{**s.as_dict(), "shares": lineage.shares(s)} for s in trail.steps],
    }


def basis_of(bases: set[str] | frozenset[str]) -> str:
    """What a weight rests on: ``identity`` (no split or merge on the way), ``area``,
    ``population`` (``+``-joined when several), or ``unknown``."""
    if "unknown" in bases:
        return "unknown"
    return "+".join(sorted(bases - {"identity"})) or "identity"


def follow_forward(
    conn: Connection,
    agency: str,
    code: str,
    *,
    since: date | None = None,
    until: date | None = None,
) -> dict[str, Any]:
    """What the code became: from the edition in force on ``since`` (the first holding it
    when None) to the edition in force on ``until`` (the newest when None), with the events
    between."""
    lineage = lineage_of(conn, agency)
    end = in_force(lineage, until)
    held = lineage.editions_with(code)
    if since is not None:
        start = in_force(lineage, since)
        if start not in held:
            raise unknown_code(lineage, code, since)
    else:
        first = next((e for e in held if lineage.before(e, end, inclusive=True)), None)
        if first is None:
            raise unknown_code(lineage, code, until)
        start = first
    if not lineage.before(start, end, inclusive=True):
        raise InvalidParameter("since is after until", field="since")
    return _answer(lineage, lineage.walk(code, start, end))


def follow_back(
    conn: Connection,
    agency: str,
    code: str,
    *,
    at: date | None = None,
    since: date | None = None,
) -> dict[str, Any]:
    """Where the code came from: from the edition in force on ``at`` (the newest holding
    it when None) back to the edition in force on ``since`` (the first when None), with the
    events between."""
    lineage = lineage_of(conn, agency)
    held = lineage.editions_with(code)
    if at is not None:
        start = in_force(lineage, at)
        if start not in held:
            raise unknown_code(lineage, code, at)
    elif held:
        start = held[-1]
    else:
        raise unknown_code(lineage, code, None)
    end = in_force(lineage, since) if since is not None else lineage.editions[0]
    if not lineage.before(end, start, inclusive=True):
        raise InvalidParameter("since is after at", field="since")
    return _answer(lineage, lineage.walk(code, start, end))


def gone_or_unknown(
    conn: Connection, agency: str, code: str, edition_id: int, at: date | None
) -> NotFound | UnitGone | None:
    """Why edition ``edition_id`` (in force on ``at``) lacks ``code``: :class:`UnitGone`
    with its successors when an earlier edition held it, a ``NotFound`` saying when it
    first appears when only later ones do; None when no edition ever held it."""
    lineage = lineage_of(conn, agency)
    end = next((e for e in lineage.editions if e.id == edition_id), None)
    held = lineage.editions_with(code)
    if end is None or not held:
        return None
    before = [e for e in held if lineage.before(e, end)]
    if not before:
        first = held[0]
        return NotFound(
            f"{agency} code {code} first appears in edition {first.label}, after {end.label}",
            code="not_yet_in_force",
            agency=agency,
            requested=code,
            first_edition=_json(first.as_dict()),
        )
    answer = _answer(lineage, lineage.walk(code, before[-1], end))
    successors = answer["units"]
    said = ", ".join(f"{u['code']} {u['name']}" for u in successors) or "none"
    when = f" on {at}" if at else ""
    return UnitGone(
        f"{agency} code {code} was last in edition {before[-1].label}; in force{when}:"
        f" {end.label}, where it became {said}",
        agency=agency,
        requested=code,
        last_edition=_json(before[-1].as_dict()),
        edition=_json(end.as_dict()),
        change_type=answer["change_type"],
        successors=_json(successors),
        events=_json(answer["events"]),
    )


def _json(value: Any) -> Any:
    """Dates as ISO text (problem details are JSON)."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value.isoformat() if isinstance(value, date) else value


def lineage_of(conn: Connection, agency: str) -> Lineage:
    require_agency(conn, agency)
    lineage = Lineage(conn, agency)
    if not lineage.editions:
        raise NotFound(f"{agency} has no edition", code="no_edition", agency=agency)
    return lineage


def in_force(lineage: Lineage, at: date | None) -> Edition:
    if at is None:
        return lineage.editions[-1]
    found = [e for e in lineage.editions if e.in_force_from <= at]
    if not found:
        raise NotFound(
            f"{lineage.agency} has no edition in force on {at}",
            code="no_edition",
            agency=lineage.agency,
        )
    return found[-1]


def unknown_code(lineage: Lineage, code: str, at: date | None) -> NotFound:
    when = f" up to {at}" if at else ""
    return NotFound(
        f"{lineage.agency} has no code {code} in any edition{when}",
        code="unknown_code",
        agency=lineage.agency,
        requested=code,
    )
