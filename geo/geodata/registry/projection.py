"""A code of one agency projected to another agency (or the same) at a date.

Three legs, each one already known: the source agency's own events, followed from the
code's edition to the edition the crosswalk run was built on (`lineage`); the run's accepted
links, through MOI, to the target agency (`partners().crossing`); the target agency's events,
followed from the run's edition to the edition in force on the date asked. The run used is
the newest finished one built on the target edition in force then (else on an earlier one,
else the newest).

Every unit reached says how: the source code it came from, the code in the run's edition
and the links' relation. A weight is given only when it is certain (one unit, ``same``
links, no split or merge on the way: 1.0); otherwise it is null with ``weight_basis``
``unknown`` — shares of a split are never invented.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection

from geo.errors import NotFound
from geo.geodata.registry.lineage import (
    Edition,
    Lineage,
    change_type,
    in_force,
    lineage_of,
    unit_names,
    unknown_code,
)
from geo.geodata.registry.partners import partners

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
    as ``to_agency``'s units in force on ``to_date`` (the newest edition when None)."""
    source = lineage_of(conn, agency)
    held = source.editions_with(code)
    start = in_force(source, at) if at is not None else (held[-1] if held else None)
    if start is None or start not in held:
        raise unknown_code(source, code, at)
    target = source if to_agency == agency else lineage_of(conn, to_agency)
    goal = in_force(target, to_date)
    answer: dict[str, Any] = {
        "source": {"agency": agency, "code": code, "edition": start.as_dict()},
        "to_agency": to_agency,
        "to_edition": goal.as_dict(),
    }
    reached: dict[str, list[dict[str, Any]]] = {}  # unit → the ways it was reached
    if to_agency == agency:  # the agency's own events only
        trail = source.walk(code, start, goal)
        kind = change_type(source, trail)
        for unit in trail.units:
            reached[unit] = [{"source_code": code, "run_code": None, "relation": "same"}]
        answer |= {"run": None, "events": {"source": [s.as_dict() for s in trail.steps]}}
        return answer | _units(target, goal, reached, [kind])
    run = _run_for(partners().runs(conn), source, target, goal)
    run_source, run_target = _edition(source, run, agency), _edition(target, run, to_agency)
    first = source.walk(code, start, run_source)
    crossed = partners().crossing(conn, run["id"], agency, first.units, to_agency)
    target_steps = []
    kinds = [change_type(source, first)]
    for source_code in first.units:
        for run_code, relation in crossed.get(source_code, []):
            last = target.walk(run_code, run_target, goal)
            kinds.append(change_type(target, last))
            target_steps += [s for s in last.steps if s not in target_steps]
            for unit in last.units:
                how: dict[str, Any] = {
                    "source_code": source_code,
                    "run_code": run_code,
                    "relation": relation,
                }
                reached.setdefault(unit, []).append(how)
    answer |= {
        "run": {
            "id": run["id"],
            "editions": {agency: run_source.as_dict(), to_agency: run_target.as_dict()},
        },
        "events": {
            "source": [s.as_dict() for s in first.steps],
            "target": [s.as_dict() for s in target_steps],
        },
    }
    return answer | _units(target, goal, reached, kinds)


def _units(
    lineage: Lineage, goal: Edition, reached: dict[str, list[dict[str, Any]]], kinds: list[str]
) -> dict[str, Any]:
    names = {u["code"]: u for u in unit_names(lineage.conn, goal, sorted(reached))}
    certain = (
        len(reached) == 1
        and all(k in {"1:1"} for k in kinds)
        and all(h["relation"] == "same" for ways in reached.values() for h in ways)
    )
    units = [
        {
            **names.get(code, {"code": code}),
            "via": ways,
            "weight": 1.0 if certain else None,
            "weight_basis": "identity" if certain else "unknown",
        }
        for code, ways in sorted(reached.items())
    ]
    return {"units": units}


def _run_for(
    runs: list[dict[str, Any]], source: Lineage, target: Lineage, goal: Edition
) -> dict[str, Any]:
    """The newest finished run linking both agencies built on the target's edition
    ``goal``; else the newest whose target edition came before it; else the newest."""
    linking = [
        r
        for r in runs
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
    built_on_goal = [r for r in linking if r["editions"][target.agency] == goal.id]
    by_then = [
        r
        for r in linking
        if target.position[r["editions"][target.agency]] <= target.position[goal.id]
    ]
    return (built_on_goal or by_then or linking)[-1]


def _edition(lineage: Lineage, run: dict[str, Any], agency: str) -> Edition:
    return lineage.editions[lineage.position[run["editions"][agency]]]


def project_many(
    conn: Connection,
    agency: str,
    codes: list[str],
    to_agency: str,
    *,
    at: date | None = None,
    to_date: date | None = None,
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """:func:`project` of many codes of the edition in force on ``at``, by the same legs
    walked for all at once: what the projection used (editions, run) and, per code that
    edition holds, its units (``code``, ``name``, ``level``, ``via``, ``weight``)."""
    source = lineage_of(conn, agency)
    start = in_force(source, at)
    held = sorted(source.present(start, {c for c in codes if c.isdigit()}))
    target = source if to_agency == agency else lineage_of(conn, to_agency)
    goal = in_force(target, to_date)
    used: dict[str, Any] = {
        "from_edition": start.as_dict(),
        "to_agency": to_agency,
        "to_edition": goal.as_dict(),
        "run": None,
    }
    ways: dict[str, dict[str, list[dict[str, Any]]]] = {c: {} for c in held}
    if to_agency == agency:
        reach = source.walk_many(held, start, goal)
        back = source.walk_many(set().union(*reach.values()) if reach else set(), goal, start)
        for code, units in reach.items():
            for unit in units:
                how = {"source_code": code, "run_code": None, "relation": "same"}
                ways[code].setdefault(unit, []).append(how)
        certain = {c for c, u in reach.items() if len(u) == 1 and back[next(iter(u))] == {c}}
    else:
        run = _run_for(partners().runs(conn), source, target, goal)
        run_source, run_target = _edition(source, run, agency), _edition(target, run, to_agency)
        used["run"] = {
            "id": run["id"],
            "editions": {agency: run_source.as_dict(), to_agency: run_target.as_dict()},
        }
        first = source.walk_many(held, start, run_source)
        first_back = source.walk_many(set().union(*first.values()), run_source, start)
        crossed = partners().crossing(
            conn, run["id"], agency, sorted(set().union(*first.values())), to_agency
        )
        in_run = {rc for pairs in crossed.values() for rc, _ in pairs}
        last = target.walk_many(in_run, run_target, goal)
        last_back = target.walk_many(
            set().union(*last.values()) if last else set(), goal, run_target
        )
        certain = set()
        for code, mids in first.items():
            for mid in mids:
                for run_code, relation in crossed.get(mid, []):
                    for unit in last[run_code]:
                        how = {"source_code": mid, "run_code": run_code, "relation": relation}
                        ways[code].setdefault(unit, []).append(how)
            (unit, hows), *more = list(ways[code].items()) or [("", [])]
            if (
                not more
                and len(hows) == 1
                and hows[0]["relation"] == "same"
                and first_back[hows[0]["source_code"]] == {code}
                and mids == {hows[0]["source_code"]}
                and last[hows[0]["run_code"]] == {unit}
                and last_back[unit] == {hows[0]["run_code"]}
            ):
                certain.add(code)
    every = sorted({u for reached in ways.values() for u in reached})
    names = {u["code"]: u for u in unit_names(conn, goal, every)}
    out = {
        code: [
            {
                **names.get(unit, {"code": unit}),
                "via": hows,
                "weight": 1.0 if code in certain else None,
                "weight_basis": "identity" if code in certain else "unknown",
            }
            for unit, hows in sorted(reached.items())
        ]
        for code, reached in ways.items()
    }
    return used, out
