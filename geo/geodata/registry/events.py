"""Events between two editions of one agency: create, abolish, rename, recode, move, split, merge.

Units are followed from the old edition to the new one by, in order: national id; the same
code at the same level; the same name key under the (followed) same parent; the same name
key under the same grandparent (a move). Then:

- rename: followed, name key changed ("same code, new name");
- recode: followed, code changed, parent unchanged ("same name and parent, new code");
- move: followed, parent changed ("same name, new parent");
- split: a new unit whose children mostly came from one old unit that still exists
  ("one unit's children now under two");
- merge: an old unit gone whose children now sit under one surviving unit, or (villages,
  where populations are given) whose population reappears in a sibling;
- create / abolish: what is left unfollowed.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from geo.models.registry import LEVEL_DEPTH

__all__ = ["Event", "Unit", "diff_editions", "follow", "load_units", "record_events"]


@dataclass(frozen=True)
class Unit:
    code: str
    level: str
    name: str
    key: str
    parent: str | None
    national_id: str | None
    population: int | None


@dataclass
class Event:
    kind: str
    before: list[str]
    after: list[str]
    detail: dict[str, Any]


def load_units(conn: Connection, edition_id: int) -> dict[str, Unit]:
    rows = conn.execute(
        text(
            "SELECT code, level, name, name_key, parent_code, national_id, population"
            " FROM division WHERE edition_id = :e"
        ),
        {"e": edition_id},
    ).all()
    return {r[0]: Unit(*r) for r in rows}


def follow(old: dict[str, Unit], new: dict[str, Unit]) -> dict[str, str]:
    """old code → new code for every unit followed across the editions."""
    link: dict[str, str] = {}
    taken: set[str] = set()

    def bind(o: str, n: str) -> None:
        link[o] = n
        taken.add(n)

    by_nid = {u.national_id: u.code for u in new.values() if u.national_id}
    for u in old.values():
        same_id = by_nid.get(u.national_id) if u.national_id else None
        if same_id and same_id not in taken and new[same_id].level == u.level:
            bind(u.code, same_id)
    for u in old.values():
        if u.code in link or u.code not in new or u.code in taken:
            continue
        now = new[u.code]
        if now.level == u.level and (
            not u.national_id or not now.national_id or u.national_id == now.national_id
        ):
            bind(u.code, u.code)
    # Top-down, so that parents are followed before their children are looked for.
    index: dict[tuple[str, str, str | None], list[str]] = defaultdict(list)
    grand: dict[tuple[str, str, str | None], list[str]] = defaultdict(list)
    for n in new.values():
        index[(n.level, n.key, n.parent)].append(n.code)
        gp = new[n.parent].parent if n.parent in new else None
        grand[(n.level, n.key, gp)].append(n.code)
    for u in sorted(old.values(), key=lambda x: LEVEL_DEPTH.get(x.level, 9)):
        if u.code in link:
            continue
        parent = link.get(u.parent) if u.parent else None
        hits = [c for c in index.get((u.level, u.key, parent), []) if c not in taken]
        if not hits and u.parent and u.parent in old:
            above = old[u.parent].parent
            gp = link.get(above) if above else None
            hits = [c for c in grand.get((u.level, u.key, gp), []) if c not in taken]
        if len(hits) == 1:
            bind(u.code, hits[0])
    return link


def diff_editions(old: dict[str, Unit], new: dict[str, Unit]) -> list[Event]:
    """The events that turn ``old`` into ``new``."""
    link = follow(old, new)
    back = {n: o for o, n in link.items()}
    events: list[Event] = []
    for o, n in link.items():
        a, b = old[o], new[n]
        moved_from = link.get(a.parent) if a.parent else None
        if a.key != b.key:
            events.append(
                Event(
                    "rename",
                    [o],
                    [n],
                    {
                        "evidence": "same unit, new name",
                        "name_before": a.name,
                        "name_after": b.name,
                    },
                )
            )
        if a.parent and moved_from != b.parent:
            events.append(
                Event(
                    "move",
                    [o],
                    [n],
                    {
                        "evidence": "same name, new parent",
                        "parent_before": a.parent,
                        "parent_after": b.parent,
                        "level": a.level,
                    },
                )
            )
        elif o != n:
            events.append(
                Event(
                    "recode",
                    [o],
                    [n],
                    {"evidence": "same name and parent, new code", "level": a.level},
                )
            )
    created = [c for c in new if c not in back]
    gone = [c for c in old if c not in link]
    children_old: dict[str, list[str]] = defaultdict(list)
    for u in old.values():
        if u.parent:
            children_old[u.parent].append(u.code)
    children_new: dict[str, list[str]] = defaultdict(list)
    for u in new.values():
        if u.parent:
            children_new[u.parent].append(u.code)

    explained: set[str] = set()
    for c in created:
        sources = Counter(old[back[k]].parent for k in children_new.get(c, []) if k in back)
        if sources:
            src, count = sources.most_common(1)[0]
            if src in link and count >= max(1, len(children_new[c]) // 2):
                events.append(
                    Event(
                        "split",
                        [src],
                        [link[src], c],
                        {
                            "evidence": f"{count} children of {src} now under {c}",
                            "level": new[c].level,
                        },
                    )
                )
                explained.add(c)
                for e in events:
                    if e.kind == "move" and e.detail.get("parent_after") == c:
                        e.detail["cause"] = f"split of {src}"
    absorbed: set[str] = set()
    for g in gone:
        kids = [link[k] for k in children_old.get(g, []) if k in link]
        targets = Counter(new[k].parent for k in kids)
        if targets:
            tgt, count = targets.most_common(1)[0]
            if tgt in back and count >= max(1, len(kids) // 2):
                events.append(
                    Event(
                        "merge",
                        [g, back[tgt]],
                        [tgt],
                        {
                            "evidence": f"{count} children of {g} now under {tgt}",
                            "level": old[g].level,
                        },
                    )
                )
                absorbed.add(g)
                for e in events:
                    if e.kind == "move" and e.detail.get("parent_before") == g:
                        e.detail["cause"] = f"merge of {g} into {tgt}"
                continue
        u = old[g]
        if u.population and u.parent in link:  # a village whose people moved to a sibling
            for sib in children_old.get(u.parent, []):
                if sib == g or sib not in link:
                    continue
                before, after = old[sib].population, new[link[sib]].population
                if (
                    before is not None
                    and after is not None
                    and u.population > 0
                    and abs((after - before) - u.population) <= 0.2 * u.population
                ):
                    events.append(
                        Event(
                            "merge",
                            [g, sib],
                            [link[sib]],
                            {
                                "evidence": f"population of {g} ({u.population})"
                                f" now in {link[sib]}",
                                "level": u.level,
                            },
                        )
                    )
                    absorbed.add(g)
                    break
    for c in created:
        if c not in explained:
            events.append(Event("create", [], [c], {"level": new[c].level, "name": new[c].name}))
    for g in gone:
        if g not in absorbed:
            events.append(Event("abolish", [g], [], {"level": old[g].level, "name": old[g].name}))
    return events


def _neighbours(conn: Connection, agency: str, edition_id: int) -> tuple[int | None, int | None]:
    """The agency's editions just before and just after ``edition_id`` in publication order."""
    rows = (
        conn.execute(
            text(
                "SELECT id FROM edition WHERE agency = :a"
                " ORDER BY coalesce(published_on, imported_at::date), id"
            ),
            {"a": agency},
        )
        .scalars()
        .all()
    )
    i = rows.index(edition_id)
    return (rows[i - 1] if i > 0 else None), (rows[i + 1] if i + 1 < len(rows) else None)


def _store(conn: Connection, agency: str, before_id: int, after_id: int) -> dict[str, int]:
    conn.execute(text("DELETE FROM division_event WHERE to_edition_id = :e"), {"e": after_id})
    events = diff_editions(load_units(conn, before_id), load_units(conn, after_id))
    if events:
        conn.execute(
            text(
                "INSERT INTO division_event (agency, from_edition_id, to_edition_id, kind,"
                " codes_before, codes_after, detail) VALUES (:a, :f, :t, :k, :b, :af, :d)"
            ),
            [
                {
                    "a": agency,
                    "f": before_id,
                    "t": after_id,
                    "k": e.kind,
                    "b": e.before,
                    "af": e.after,
                    "d": json.dumps(e.detail, ensure_ascii=False),
                }
                for e in events
            ],
        )
    return dict(Counter(e.kind for e in events))


def record_events(conn: Connection, agency: str, edition_id: int) -> dict[str, int]:
    """Compute and store the new edition's events (and its successor's, if it has one)."""
    before, after = _neighbours(conn, agency, edition_id)
    counts = _store(conn, agency, before, edition_id) if before else {}
    if after:
        _store(conn, agency, edition_id, after)
    return counts
