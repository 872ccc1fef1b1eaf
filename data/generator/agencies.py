"""Each agency's list of the world, in its real file layout, with its own codes and spellings.

- MOI: ``row,type,name,province,county,district,rural,hierarchicalCode,nationalId``;
  province 2 digits from 10, county +2, district +2, rural district +2, city +3 from
  500, and (our extension: the published list stops at cities) village +3 under its
  rural district, with the type word «آبادی». Names carry PDF-extraction defects.
- SCI: the geography-file layout with Persian headers and CODEREC.
- HF: the generic layout ``code,name,level,parent_code,lat,lon,population,national_id``,
  only villages with a guide plan and some small towns, with their parents.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from data.generator.evolve import Event
from data.generator.truth import Unit, World
from data.generator.variants import COMMON, PDF_ONLY, vary
from geo.geodata.persian import match_key
from geo.models.registry import LEVELS

MOI_TYPES = {
    "province": "استان",
    "county": "شهرستان",
    "district": "بخش",
    "rural": "دهستان",
    "city": "شهر",
    "village": "آبادی",
}
SCI_HEADER = [
    "کد استان",
    "نام استان",
    "کد شهرستان",
    "نام شهرستان",
    "کد بخش",
    "نام بخش",
    "کد دهستان/ شهر",
    "نام دهستان/ شهر",
    "کد آبادی",
    "نام",
    "CODEREC",
    "DIAG",
]
GENERIC_HEADER = ["code", "name", "level", "parent_code", "lat", "lon", "population", "national_id"]
LEVEL_ORDER = LEVELS


@dataclass
class Spelling:
    """One agency's spelling of each unit, chosen once so editions agree."""

    kinds: Mapping[str, Callable[[str], str | None]]
    rate: float
    rng: random.Random
    names: dict[str, str] = field(default_factory=dict)
    used: Counter[str] = field(default_factory=Counter)
    per_unit: dict[str, list[str]] = field(default_factory=dict)

    def of(self, unit: Unit) -> str:
        key = f"{unit.uid}|{unit.name}"
        if key not in self.names:
            name, applied = vary(unit.name, self.rng, self.rate, self.kinds)  # type: ignore[arg-type]
            self.names[key] = name
            self.used.update(applied)
            if applied:
                self.per_unit[unit.uid] = applied
        return self.names[key]


def _walk(world: World) -> list[Unit]:
    """Units in hierarchical order (depth first, children by level then original order)."""
    out: list[Unit] = []

    def visit(uid: str) -> None:
        unit = world.units[uid]
        out.append(unit)
        kids = sorted(unit.children, key=lambda c: LEVEL_ORDER.index(world.units[c].level))
        for c in kids:
            visit(c)

    for p in world.province_order:
        if p in world.units:
            visit(p)
    return out


class MoiCoder:
    """MOI hierarchical codes and national ids, stable for units that stay in place."""

    def __init__(self, real_codes: dict[str, str]) -> None:
        self.real = real_codes  # province/county name path key -> real MOI code
        self.codes: dict[str, tuple[str, str]] = {}  # uid -> (parent uid, code)
        self.national: dict[str, str] = {}
        self.next_child: Counter[str] = Counter()
        self.next_national = 1_000_000_000
        self.used_roots: set[str] = set()

    def forget(self, uid: str) -> None:
        """Give ``uid`` a new code under the same parent next time (a recode)."""
        self.codes.pop(uid, None)

    def code(self, world: World, unit: Unit) -> str:
        previous = self.codes.get(unit.uid)
        if previous and previous[0] == (unit.parent or ""):
            return previous[1]
        if unit.level == "province":
            code = self.real.get(match_key(unit.name)) or ""
            if not code or code in self.used_roots:
                self.next_child["root"] += 1
                code = str(40 + self.next_child["root"])
            self.used_roots.add(code)
        else:
            parent = self.code(world, world.units[unit.parent])  # type: ignore[index]
            if unit.level == "city":
                slot = "city:" + parent
                base, width = 500, 3
            elif unit.level == "village":
                slot, base, width = "village:" + parent, 0, 3
            else:
                slot, base, width = parent, 9, 2
            self.next_child[slot] += 1
            code = parent + str(base + self.next_child[slot]).zfill(width)
        self.codes[unit.uid] = (unit.parent or "", code)
        if unit.uid not in self.national:
            self.next_national += 17
            self.national[unit.uid] = str(self.next_national)
        return code


def write_moi(path: Path, world: World, coder: MoiCoder, spelling: Spelling) -> dict[str, str]:
    """Write an MOI list; return uid -> code."""
    codes: dict[str, str] = {}
    with path.open("w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            [
                "row",
                "type",
                "name",
                "province",
                "county",
                "district",
                "rural",
                "hierarchicalCode",
                "nationalId",
            ]
        )
        row = 0
        for unit in _walk(world):
            if unit.farm:
                continue
            code = coder.code(world, unit)
            codes[unit.uid] = code
            chain = {lvl: "" for lvl in ("province", "county", "district", "rural")}
            parent = world.units.get(unit.parent) if unit.parent else None
            while parent is not None:
                chain[parent.level] = spelling.of(parent)
                parent = world.units.get(parent.parent) if parent.parent else None
            row += 1
            w.writerow(
                [
                    row,
                    MOI_TYPES[unit.level],
                    spelling.of(unit),
                    chain["province"],
                    chain["county"],
                    chain["district"],
                    chain["rural"],
                    code,
                    coder.national[unit.uid],
                ]
            )
    return codes


def write_sci(path: Path, world: World, rng: random.Random) -> dict[str, str]:
    """Write the SCI geography file (codes are the real SCI codes); return uid -> code."""
    codes: dict[str, str] = {}
    recs = {"province": "1", "county": "2", "district": "3", "rural": "4", "city": "5"}
    with path.open("w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(SCI_HEADER)
        for unit in _walk(world):
            code = unit.sci_code or unit.uid
            codes[unit.uid] = code
            names = {}
            node: Unit | None = unit
            while node is not None:
                names[node.level] = node.name
                node = world.units.get(node.parent) if node.parent else None
            parts = [code[0:2], code[2:4], code[4:6], code[6:10], code[10:16]]
            rec = "8" if unit.farm else recs.get(unit.level, "6")
            local = names.get("rural") or names.get("city", "")
            w.writerow(
                [
                    parts[0],
                    names.get("province", ""),
                    parts[1],
                    names.get("county", "") if parts[1] else "",
                    parts[2],
                    names.get("district", "") if parts[2] else "",
                    parts[3],
                    local if parts[3] else "",
                    parts[4],
                    unit.name,
                    rec,
                    str(rng.randint(1000, 9999)) if unit.farm else "",
                ]
            )
    return codes


def choose_hf(world: World, rng: random.Random, share: float) -> set[str]:
    """Villages with an executed guide plan (bigger ones likelier) and some small towns."""
    chosen: set[str] = set()
    for unit in world.units.values():
        if unit.level == "village" and not unit.farm and unit.population > 0:
            weight = min(1.0, share * (0.5 + min(unit.population, 2000) / 800))
            if rng.random() < weight:
                chosen.add(unit.uid)
        elif unit.level == "city" and unit.population < 25_000 and rng.random() < 0.5:
            chosen.add(unit.uid)
    return chosen


def write_hf(
    path: Path, world: World, chosen: set[str], spelling: Spelling, rng: random.Random
) -> dict[str, str]:
    """Write HF's list in the generic layout; return uid -> HF code."""
    keep: set[str] = set()
    for uid in chosen:
        node: str | None = uid
        while node is not None and node not in keep:
            keep.add(node)
            node = world.units[node].parent
    codes: dict[str, str] = {}
    counters: Counter[str] = Counter()
    widths = {"province": 2, "county": 3, "district": 2, "rural": 3, "village": 4, "city": 4}
    provinces = sorted(
        (u for u in world.units.values() if u.level == "province" and u.uid in keep),
        key=lambda u: u.name,
    )
    for i, p in enumerate(provinces, start=1):
        codes[p.uid] = f"{i:02d}"
    with path.open("w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(GENERIC_HEADER)
        for unit in _walk(world):
            if unit.uid not in keep:
                continue
            if unit.level != "province":
                parent = codes[unit.parent]  # type: ignore[index]
                counters[parent + unit.level] += 1
                n = counters[parent + unit.level] + (9000 if unit.level == "city" else 0)
                codes[unit.uid] = parent + str(n).zfill(widths[unit.level])
            lat = lon = pop = ""
            if unit.level in {"village", "city"} and unit.lon is not None:
                lat = f"{unit.lat + rng.gauss(0, 0.0008):.6f}"  # type: ignore[operator]
                lon = f"{unit.lon + rng.gauss(0, 0.0008):.6f}"
                pop = str(max(0, int(unit.population * rng.uniform(0.9, 1.15))))
            w.writerow(
                [
                    codes[unit.uid],
                    spelling.of(unit),
                    unit.level,
                    codes.get(unit.parent or "", ""),
                    lat,
                    lon,
                    pop,
                    "",
                ]
            )
    return codes


def write_truth(
    path: Path,
    old: World,
    new: World,
    events: list[Event],
    moi: dict[str, str],
    sci: dict[str, str],
    hf: dict[str, str],
    variants: dict[str, dict[str, list[str]]],
) -> Counter[str]:
    """The ground-truth crosswalk: one row per link (MOI newest edition, SCI, HF)."""
    split_of = {e.after[1]: e.before[0] for e in events if e.kind == "split"}
    split_src = {e.before[0] for e in events if e.kind == "split"}
    merged_into = {e.before[0]: e.after[0] for e in events if e.kind == "merge"}
    merge_keepers = {e.after[0] for e in events if e.kind == "merge"}
    relations: Counter[str] = Counter()

    def notes(uid: str) -> str:
        return ";".join(f"{a}:{k}" for a, v in variants.items() for k in v.get(uid, []))

    with path.open("w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["level", "truth_id", "moi_code", "sci_code", "hf_code", "relation", "variants"])
        for unit in _walk(new):
            uid = unit.uid
            if uid in split_of:
                row = [uid, moi.get(uid, ""), sci.get(split_of[uid], ""), hf.get(uid, ""), "split"]
            elif uid in split_src:
                row = [uid, moi.get(uid, ""), sci.get(uid, ""), hf.get(uid, ""), "split"]
            elif uid in merge_keepers:
                row = [uid, moi.get(uid, ""), sci.get(uid, ""), hf.get(uid, ""), "merge"]
            elif uid in old.units:
                rel = "same" if uid in moi and uid in sci else "unmatched"
                row = [uid, moi.get(uid, ""), sci.get(uid, ""), hf.get(uid, ""), rel]
            else:
                row = [uid, moi.get(uid, ""), "", hf.get(uid, ""), "unmatched"]
            relations[row[4]] += 1
            w.writerow([unit.level, *row, notes(uid)])
        for uid, keeper in merged_into.items():
            relations["merge"] += 1
            w.writerow(
                [
                    old.units[uid].level,
                    uid,
                    moi.get(keeper, ""),
                    sci.get(uid, ""),
                    hf.get(keeper, ""),
                    "merge",
                    notes(uid),
                ]
            )
        for e in events:
            if e.kind == "abolish":
                relations["unmatched"] += 1
                w.writerow(
                    [
                        "village",
                        e.before[0],
                        "",
                        sci.get(e.before[0], ""),
                        "",
                        "unmatched",
                        notes(e.before[0]),
                    ]
                )
    return relations


def write_events(
    path: Path,
    events: list[Event],
    moi_old: dict[str, str],
    moi_new: dict[str, str],
    levels: dict[str, str],
) -> None:
    """The MOI events between the two editions, in MOI codes, as ground truth."""
    with path.open("w", encoding="utf-8", newline="") as out:
        w = csv.writer(out, lineterminator="\n")
        w.writerow(["kind", "level", "codes_before", "codes_after", "note"])
        for e in events:
            before = " ".join(moi_old.get(u, "") for u in e.before)
            after = " ".join(moi_new.get(u, "") for u in e.after)
            w.writerow([e.kind, levels.get((e.before or e.after)[0], ""), before, after, e.note])


__all__ = [
    "COMMON",
    "PDF_ONLY",
    "MoiCoder",
    "Spelling",
    "choose_hf",
    "write_events",
    "write_hf",
    "write_moi",
    "write_sci",
    "write_truth",
]
