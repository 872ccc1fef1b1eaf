"""Between two editions the divisions change: rename, move, split, merge, create, abolish.

:func:`evolve` copies the world and applies such events at the given rates, returning
the new world and the events as ground truth (in truth ids).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

from data.generator.truth import Unit, World


@dataclass(frozen=True)
class Event:
    """A change between editions, in truth ids (``before`` in the old world)."""

    kind: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    note: str = ""


@dataclass(frozen=True)
class Rates:
    """Share of villages (rural districts for splits) changed between two editions."""

    rename: float = 0.01
    move: float = 0.01
    merge: float = 0.004
    create: float = 0.006
    abolish: float = 0.005
    split_rural: float = 0.03
    merge_rural: float = 0.02


def _detach(world: World, uid: str) -> None:
    unit = world.units[uid]
    if unit.parent:
        world.units[unit.parent].children.remove(uid)


def _attach(world: World, uid: str, parent: str) -> None:
    world.units[uid].parent = parent
    world.units[parent].children.append(uid)


def evolve(world: World, rng: random.Random, rates: Rates) -> tuple[World, list[Event]]:
    """A later world and the events that lead to it."""
    new = copy.deepcopy(world)
    events: list[Event] = []
    villages = [u for u in new.units.values() if u.level == "village" and not u.farm]
    names = [u.name for u in villages]
    touched: set[str] = set()
    counter = 0

    def fresh_uid() -> str:
        nonlocal counter
        counter += 1
        return f"n{counter:06d}"

    def pick(share: float) -> list[Unit]:
        chosen = [v for v in villages if v.uid not in touched and rng.random() < share]
        touched.update(v.uid for v in chosen)
        return chosen

    for v in pick(rates.rename):
        old = v.name
        v.name = rng.choice(names)
        if v.name != old:
            events.append(Event("rename", (v.uid,), (v.uid,), f"{old} → {v.name}"))
    for v in pick(rates.move):
        rural = new.units[v.parent]  # type: ignore[index]
        district = new.units[rural.parent]  # type: ignore[index]
        options = [c for c in district.children if new.units[c].level == "rural" and c != rural.uid]
        if not options:
            continue
        target = rng.choice(options)
        _detach(new, v.uid)
        _attach(new, v.uid, target)
        events.append(Event("move", (v.uid,), (v.uid,), f"{rural.uid} → {target}"))
    for v in pick(rates.merge):
        siblings = [
            c
            for c in new.units[v.parent].children  # type: ignore[index]
            if c != v.uid
            and c not in touched
            and not new.units[c].farm
            and new.units[c].level == "village"
        ]
        if not siblings:
            continue
        keeper = rng.choice(siblings)
        touched.add(keeper)
        _detach(new, v.uid)
        new.units[keeper].population += v.population
        del new.units[v.uid]
        events.append(Event("merge", (v.uid, keeper), (keeper,)))
    for v in pick(rates.abolish):
        _detach(new, v.uid)
        del new.units[v.uid]
        events.append(Event("abolish", (v.uid,), ()))
    rurals = [u for u in new.units.values() if u.level == "rural"]

    def real_villages(rural: Unit) -> list[str]:  # farm points are SCI's only: not counted
        return [
            c for c in rural.children if new.units[c].level == "village" and not new.units[c].farm
        ]

    eligible = [r for r in rurals if len(real_villages(r)) >= 6]
    split = {r.uid for r in eligible if rng.random() < rates.split_rural}
    if eligible and not split:  # every world big enough shows at least one split
        split.add(max(eligible, key=lambda r: len(r.children)).uid)
    for rural in rurals:
        kids = real_villages(rural)
        if rural.uid not in split:
            continue
        uid = fresh_uid()
        name = new.units[rng.choice(kids)].name  # new rural districts are named after a village
        new.units[uid] = Unit(uid=uid, level="rural", name=name, parent=rural.parent)
        new.units[rural.parent].children.append(uid)  # type: ignore[index]
        for c in kids[len(kids) // 2 :]:
            _detach(new, c)
            _attach(new, c, uid)
        events.append(Event("split", (rural.uid,), (rural.uid, uid)))
    merged_rural = False
    for rural in [u for u in new.units.values() if u.level == "rural"]:
        if (
            rural.uid in split
            or rural.uid not in new.units
            or rural.uid.startswith("n")
            or len(real_villages(rural)) < 2
        ):  # a merge shows through moved villages
            continue
        district = new.units[rural.parent]  # type: ignore[index]
        siblings = [
            c
            for c in district.children
            if c != rural.uid
            and c not in split
            and new.units[c].level == "rural"
            and not c.startswith("n")
        ]
        if not siblings or (rng.random() >= rates.merge_rural and merged_rural):
            continue
        keeper = rng.choice(siblings)
        for c in list(rural.children):
            _detach(new, c)
            _attach(new, c, keeper)
        _detach(new, rural.uid)
        del new.units[rural.uid]
        split.add(keeper)  # not split or merged again in this edition
        merged_rural = True
        events.append(Event("merge", (rural.uid, keeper), (keeper,)))
    for rural in [u for u in new.units.values() if u.level == "rural"]:
        if rng.random() < rates.create * max(1, len(rural.children)):
            uid = fresh_uid()
            sibling = new.units[rural.children[0]] if rural.children else None
            new.units[uid] = Unit(
                uid=uid,
                level="village",
                name=rng.choice(names),
                parent=rural.uid,
                lon=(sibling.lon + rng.uniform(-0.02, 0.02)) if sibling and sibling.lon else None,
                lat=(sibling.lat + rng.uniform(-0.02, 0.02)) if sibling and sibling.lat else None,
                population=int(rng.lognormvariate(4.5, 1.0)),
            )
            rural.children.append(uid)
            events.append(Event("create", (), (uid,)))
    return new, events
