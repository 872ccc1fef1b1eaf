"""Crosswalk: a national build (time, peak memory, quality against truth) vs a naive matcher.

The naive matcher is what one writes first: top-down, a unit is linked to the unit of the
same level with the same folded name under the matched parent, when exactly one exists.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.datasets import world
from bench.harness import Outcome, pair
from crosswalk import build, evaluate, start_run
from crosswalk.units import LEVEL_ORDER, Side, load_side
from data.lists import import_lists
from geo.geodata.dates import parse_date
from geo.geodata.registry import import_edition
from geo.platform import migrate
from geo.platform.config import project_root
from geo.platform.database import Database, create_database, drop_database


def _world(quick: bool) -> Path:
    return world(quick, maps=False)


def naive_pairs(ref: Side, other: Side) -> list[tuple[str, str, str]]:
    """(level, MOI code, other code): top-down, the unit of the same level with the same
    folded name under the matched parent, when exactly one exists."""
    r2o: dict[str | None, str] = {None: None}  # type: ignore[dict-item]
    pairs = []
    for level in LEVEL_ORDER:
        index: dict[tuple[str | None, str], list[str]] = defaultdict(list)
        for o in other.by_level.get(level, []):
            index[(other.units[o].parent, other.units[o].key)].append(o)
        for r in ref.by_level.get(level, []):
            u = ref.units[r]
            parent = r2o.get(u.parent) if u.parent else None
            if u.parent and parent is None:
                continue
            hits = index.get((parent, u.key), [])
            if len(hits) == 1:
                r2o[r] = hits[0]
                pairs.append((level, r, hits[0]))
    return pairs


def _sides(url: str, run_id: int) -> tuple[Side, Side]:
    with Database(url).connect() as conn:
        run = conn.execute(
            text("SELECT moi_edition_id, sci_edition_id FROM crosswalk_run WHERE id = :r"),
            {"r": run_id},
        ).one()
        return load_side(conn, "moi", run[0]), load_side(conn, "sci", run[1])


def naive(url: str, run_id: int) -> None:
    """The naive matcher's pairs stored as auto links of ``run_id``."""
    rows = [
        {"r": run_id, "l": level, "m": m, "s": s}
        for level, m, s in naive_pairs(*_sides(url, run_id))
    ]
    with Database(url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO crosswalk_link (run_id, level, moi_code, sci_code,"
                " confidence, method, status) VALUES (:r, :l, :m, :s, 1, 'name',"
                " 'auto')"
            ),
            rows,
        )
        conn.execute(
            text("UPDATE crosswalk_run SET status = 'finished' WHERE id = :r"), {"r": run_id}
        )


def real_lists(url: str) -> dict[str, Any] | None:
    """The real MOI 1401 and SCI 1399 lists (../shared/data; no truth): per level, the
    units, our auto links and review, the naive links and how many of them we also made
    (the naive links are right almost always: one we lack is a lost pair or a changed
    mind), and a sample of our auto links whose names differ, to audit by eye."""
    shared = project_root().parent / "shared" / "data"
    if not (shared / "sci" / "sci_geography_1399.csv").exists():
        return None
    real = create_database(url, f"tagsim_bench_real_{uuid.uuid4().hex[:6]}")
    try:
        migrate.upgrade(real)
        for agency, label, path in [
            ("moi", "1401-08-25", shared / "moi" / "moi_divisions_1401-08-25.csv"),
            ("sci", "1399-05-01", shared / "sci" / "sci_geography_1399.csv"),
        ]:
            import_edition(
                Database(real), agency, label, path.read_bytes(), published_on=parse_date(label)
            )
        run_id = start_run(Database(real), hf=None)
        started = time.perf_counter()
        build(Database(real), run_id)
        seconds = time.perf_counter() - started
        ref, other = _sides(real, run_id)
        naive_set = set(naive_pairs(ref, other))
        with Database(real).connect() as conn:
            links = conn.execute(
                text(
                    "SELECT level, moi_code, sci_code, status, evidence->>'text'"
                    " FROM crosswalk_link WHERE run_id = :r AND status <> 'rejected'"
                ),
                {"r": run_id},
            ).all()
    finally:
        drop_database(real)
    ours = {(r[0], r[1], r[2]) for r in links if r[3] == "auto"}
    levels = {}
    for level in ("county", "district", "rural", "city"):
        mine = {x for x in ours if x[0] == level}
        theirs = {x for x in naive_set if x[0] == level}
        levels[level] = {
            "moi": len(ref.by_level[level]),
            "sci": len(other.by_level[level]),
            "auto": len(mine),
            "review": sum(1 for r in links if r[0] == level and r[3] == "needs_review"),
            "naive": len(theirs),
            "naive_also_ours": len(theirs & mine),
        }
    differ = [
        f"{r[0]}: {ref.units[r[1]].name} ↔ {other.units[r[2]].name} ({r[4]})"
        for r in links
        if r[3] == "auto" and r[0] != "province" and ref.units[r[1]].key != other.units[r[2]].key
    ]
    return {"seconds": round(seconds, 1), "levels": levels, "names_differ": len(differ),
            "sample": random.Random(1401).sample(differ, min(40, len(differ)))}  # fmt: skip


def run(url: str, quick: bool) -> list[Outcome]:
    world = _world(quick)
    import_lists(Database(url), world)  # MOI's older edition too: its former names are evidence
    runs: dict[str, list[int]] = {"ours": [], "naive": []}
    memory: list[float] = []

    def ours() -> None:
        run_id = start_run(Database(url))
        build(Database(url), run_id)
        runs["ours"].append(run_id)

    def baseline() -> None:
        run_id = start_run(Database(url), hf=None)
        naive(url, run_id)
        runs["naive"].append(run_id)

    started = time.perf_counter()
    outcome = pair(
        "crosswalk build (MOI↔SCI↔HF)",
        ("crosswalk.build", ours),
        ("naive exact-name", baseline),
        1 if not quick else 2,
        size={"world": world.name},
    )
    del started
    # memory apart: tracemalloc would slow the timed builds
    traced = start_run(Database(url))
    memory.append(build(Database(url), traced, trace_memory=True)["peak_python_mb"])
    truth = world / "truth" / "crosswalk.csv"
    quality = {
        "ours": evaluate(Database(url), runs["ours"][-1], truth),
        "naive": evaluate(Database(url), runs["naive"][-1], truth),
    }
    outcome.size["peak_python_mb"] = max(memory)
    outcome.note = json.dumps(quality, ensure_ascii=False)
    for who in ("ours", "naive"):
        for agency, q in quality[who].items():
            for level, v in q["levels"].items():
                print(
                    f"  {who:<5} moi↔{agency} {level:<8} precision {v['precision']:.4f} "
                    f"recall {v['recall']:.4f}  review {v['review']:>5}  true {v['true_pairs']}"
                )
    for agency, q in quality["ours"].items():
        kinds = ", ".join(f"{k} {v['recall']:.3f}" for k, v in q["variants"].items())
        print(f"  ours  moi↔{agency} recall by variant: {kinds}")
        print(f"  ours  moi↔{agency} review queue: {q['review_queue']}")
    print(f"  ours  peak Python memory {max(memory)} MB")
    if not quick and (real := real_lists(url)) is not None:
        quality["real_lists"] = real
        outcome.note = json.dumps(quality, ensure_ascii=False)
        print(f"  real MOI 1401 ↔ SCI 1399 (no truth), build {real['seconds']} s:")
        for level, v in real["levels"].items():
            print(
                f"    {level:<8} MOI {v['moi']:>5} SCI {v['sci']:>5}  auto {v['auto']:>5}"
                f"  review {v['review']:>4}  naive {v['naive']:>5}"
                f" (of them ours too: {v['naive_also_ours']})"
            )
        print(f"    auto links whose names differ: {real['names_differ']}; a sample to audit:")
        for line in real["sample"]:
            print(f"      {line}")
    return [outcome]
