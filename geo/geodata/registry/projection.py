"""A code of one agency projected to another agency (or the same) at a date.

Three legs, each one already known: the source agency's own events, followed from the
code's edition to the edition the crosswalk run was built on (`lineage`); the run's accepted
links, through MOI, to the target agency (`partners().crossing`); the target agency's events,
followed from the run's edition to the edition in force on the date asked. The run used is
the finished one built on the target edition in force then (else on the latest earlier
one, else the newest); among those, the one built on the source edition nearest the
code's, then the newest.

Every unit reached says how: the source code it came from, the code in the run's edition
and the links' relation. Its weight is the share of the asked unit it stands for: the
shares of the splits and merges on both legs (by boundary areas or population, see
`lineage.Lineage.shares`) times 1 for a ``same`` link, summed over the ways; null with
``weight_basis: unknown`` as soon as one share on the way is unknown or a link is not
``same`` — never invented.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from geo.errors import NotFound
from geo.geodata.registry.lineage import (
    Edition,
    Lineage,
    Weighted,
    basis_of,
    in_force,
    lineage_of,
    unit_names,
    unknown_code,
)
from geo.geodata.registry.partners import partners
from geo.platform.bulk import bulk

__all__ = ["project", "project_many"]


def project(
    conn: Connection,
    agency: str,
    code: str,
    to_agency: str,
    *,
    at: date | None = None,
    to_date: date | None = None,
) -> dict[str, Any]:
    """``agency``'s ``code`` (as it was on ``at``; the newest edition holding it when None)
    as ``to_agency``'s units in force on ``to_date`` (the newest edition when None), with
    the events on both legs."""
    source = lineage_of(conn, agency)
    held = source.editions_with(code)
    start = in_force(source, at) if at is not None else (held[-1] if held else None)
    if start is None or start not in held:
        raise unknown_code(source, code, at)
    legs = _Legs(conn, source, agency, to_agency, start, to_date)
    first = source.walk(code, start, legs.run_source)
    mids = {u: (first.weights[u], frozenset(first.bases[u])) for u in first.units}
    crossed = legs.cross(first.units)
    lasts = {}
    target_steps = []
    for run_code in sorted({rc for pairs in crossed.values() for rc, _ in pairs}):
        last = legs.target.walk(run_code, legs.run_target, legs.goal)
        lasts[run_code] = {u: (last.weights[u], frozenset(last.bases[u])) for u in last.units}
        target_steps += [s for s in last.steps if s not in target_steps]
    units = legs.units(mids, crossed, lasts)
    events: dict[str, Any] = {"source": [s.as_dict() for s in first.steps]}
    if legs.run is not None:
        events["target"] = [s.as_dict() for s in target_steps]
    return {
        "source": {"agency": agency, "code": code, "edition": start.as_dict()},
        **legs.used(),
        "events": events,
        "units": units,
    }


@bulk
def project_many(
    conn: Connection,
    agency: str,
    codes: list[str],
    to_agency: str,
    *,
    at: date | None = None,
    to_date: date | None = None,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """:func:`project` of many codes of the edition in force on ``at``, the legs walked
    for all at once (no events): what the projection used (editions, run) and, per code
    that edition holds, its units (``code``, ``name``, ``level``, ``via``, ``weight``)."""
    source = lineage_of(conn, agency)
    start = in_force(source, at)
    held = sorted(source.present(start, {c for c in codes if c.isdigit()}))
    legs = _Legs(conn, source, agency, to_agency, start, to_date)
    first = source.walk_many(held, start, legs.run_source)
    crossed = legs.cross(sorted({m for mids in first.values() for m in mids}))
    in_run = {rc for pairs in crossed.values() for rc, _ in pairs}
    lasts = legs.target.walk_many(in_run, legs.run_target, legs.goal)
    reached = sorted({u for ends in lasts.values() for u in ends})
    names = {u["code"]: u for u in unit_names(conn, legs.goal, reached)}  # once for all codes
    units = {code: legs.units(first[code], crossed, lasts, names) for code in held}
    return {"from_edition": start.as_dict(), **legs.used()}, units


class _Legs:
    """The run and editions a projection goes through, and how it weighs what it reaches."""

    def __init__(
        self,
        conn: Connection,
        source: Lineage,
        agency: str,
        to_agency: str,
        start: Edition,
        to_date: date | None,
    ) -> None:
        self.conn, self.agency, self.to_agency = conn, agency, to_agency
        self.target = source if to_agency == agency else lineage_of(conn, to_agency)
        self.goal = in_force(self.target, to_date)
        self.run: dict[str, Any] | None = None
        if to_agency == agency:  # the agency's own events only: no crossing
            self.run_source = self.run_target = self.goal
        else:
            self.run = _run_for(partners().runs(conn), source, self.target, self.goal, start)
            self.run_source = _edition(source, self.run, agency)
            self.run_target = _edition(self.target, self.run, to_agency)

    def cross(self, codes: list[str]) -> dict[str, list[tuple[str, str]]]:
        if self.run is None:
            return {c: [(c, "same")] for c in codes}
        return partners().crossing(self.conn, self.run["id"], self.agency, codes, self.to_agency)

    def used(self) -> dict[str, Any]:
        run = None
        if self.run is not None:
            run = {
                "id": self.run["id"],
                "editions": {
                    self.agency: self.run_source.as_dict(),
                    self.to_agency: self.run_target.as_dict(),
                },
            }
        return {"to_agency": self.to_agency, "to_edition": self.goal.as_dict(), "run": run}

    def units(
        self,
        mids: dict[str, Weighted],
        crossed: dict[str, list[tuple[str, str]]],
        lasts: dict[str, dict[str, Weighted]],
        names: dict[str, dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The units reached from the source's units ``mids`` (in the run's edition), each
        with its ways and its weight (summed over the ways); ``names``: the target units'
        names and levels when already read."""
        ways: dict[str, list[dict[str, Any]]] = {}
        weight: dict[str, float | None] = {}
        bases: dict[str, frozenset[str]] = {}
        run = self.run is not None
        for mid, (w1, b1) in sorted(mids.items()) if len(mids) > 1 else mids.items():
            for run_code, relation in crossed.get(mid, []):
                same = relation == "same"
                ends = lasts.get(run_code, {})
                for unit, (w3, b3) in sorted(ends.items()) if len(ends) > 1 else ends.items():
                    how = {
                        "source_code": mid,
                        "run_code": run_code if run else None,
                        "relation": relation,
                    }
                    ways.setdefault(unit, []).append(how)
                    part = None if w1 is None or w3 is None or not same else w1 * w3
                    known = weight.get(unit, 0.0)
                    weight[unit] = None if part is None or known is None else known + part
                    link = _SAME if same else _UNKNOWN
                    bases[unit] = bases.get(unit, frozenset()) | b1 | b3 | link
        if names is None:
            names = {u["code"]: u for u in unit_names(self.conn, self.goal, sorted(ways))}
        return [
            {
                **names.get(unit, {"code": unit}),
                "via": hows,
                "weight": None if weight[unit] is None else round(weight[unit], 6),  # type: ignore[arg-type]
                "weight_basis": _basis(bases[unit]),
            }
            for unit, hows in (sorted(ways.items()) if len(ways) > 1 else ways.items())
        ]


# a link's part in a weight: 1 for ``same`` (identity), unknown for any other relation
_SAME, _UNKNOWN = frozenset({"identity"}), frozenset({"unknown"})
_basis = lru_cache(maxsize=256)(basis_of)  # (a few distinct sets of bases recur)


def _run_for(
    runs: list[dict[str, Any]], source: Lineage, target: Lineage, goal: Edition, start: Edition
) -> dict[str, Any]:
    """The finished run linking both agencies built on the target's edition ``goal``; else
    on the latest target edition before it; else the newest. Among runs on the same target
    edition, the one built on the source edition nearest ``start`` (the fewest events to
    walk), then the newest."""
    linking = [
        (i, r)
        for i, r in enumerate(runs)
        if source.agency in r["editions"]
        and target.agency in r["editions"]
        and r["editions"][source.agency] in source.position
        and r["editions"][target.agency] in target.position
    ]
    if not linking:
        raise NotFound(
            f"no finished crosswalk run links {source.agency} and {target.agency}",
            code="no_crosswalk",
        )

    def target_at(r: dict[str, Any]) -> int:
        return target.position[r["editions"][target.agency]]

    def source_from_start(r: dict[str, Any]) -> int:
        return abs(source.position[r["editions"][source.agency]] - source.position[start.id])

    by_then = [(i, r) for i, r in linking if target_at(r) <= target.position[goal.id]]
    if not by_then:
        return linking[-1][1]
    return max(by_then, key=lambda ir: (target_at(ir[1]), -source_from_start(ir[1]), ir[0]))[1]


def _edition(lineage: Lineage, run: dict[str, Any], agency: str) -> Edition:
    return lineage.editions[lineage.position[run["editions"][agency]]]
