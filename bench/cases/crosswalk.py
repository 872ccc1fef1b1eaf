"""Crosswalk: a national build (time, peak memory, quality against truth) vs a naive matcher.

The naive matcher is what one writes first: top-down, a unit is linked to the unit of the
same level with the same folded name under the matched parent, when exactly one exists.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

from sqlalchemy import text

from bench.datasets import world
from bench.harness import Outcome, pair
from crosswalk import build, evaluate, start_run
from crosswalk.units import LEVEL_ORDER, load_side
from data.lists import import_lists
from geo.db import engine


def _world(quick: bool) -> Path:
    return world(quick, maps=False)


def naive(url: str, run_id: int) -> None:
    """Exact folded names under matched parents, unique only; stored as auto links."""
    with engine(url).connect() as conn:
        run = conn.execute(
            text("SELECT moi_edition_id, sci_edition_id FROM crosswalk_run WHERE id = :r"),
            {"r": run_id},
        ).one()
        ref, other = load_side(conn, "moi", run[0]), load_side(conn, "sci", run[1])
    r2o: dict[str | None, str] = {None: None}  # type: ignore[dict-item]
    rows = []
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
                rows.append({"r": run_id, "l": level, "m": r, "s": hits[0]})
    with engine(url).begin() as conn:
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


def run(url: str, quick: bool) -> list[Outcome]:
    world = _world(quick)
    import_lists(url, world)  # MOI's older edition too: its former names are evidence
    runs: dict[str, list[int]] = {"ours": [], "naive": []}
    memory: list[float] = []

    def ours() -> None:
        run_id = start_run(url)
        build(url, run_id)
        runs["ours"].append(run_id)

    def baseline() -> None:
        run_id = start_run(url, hf=None)
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
    traced = start_run(url)
    memory.append(build(url, traced, trace_memory=True)["peak_python_mb"])
    truth = world / "truth" / "crosswalk.csv"
    quality = {
        "ours": evaluate(url, runs["ours"][-1], truth),
        "naive": evaluate(url, runs["naive"][-1], truth),
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
    return [outcome]
