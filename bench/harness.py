"""Run pairs alternately, take medians, print ratios, write JSON and Markdown.

A case is measured as ``ours`` and ``baseline`` in turns (ours, baseline, ours, …) so that
whatever else the machine is doing hits both alike; the ratio ours/baseline of the medians
is what to read, not the seconds.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Outcome:
    case: str
    ours: str
    baseline: str
    rounds: int
    ours_s: list[float] = field(default_factory=list)
    baseline_s: list[float] = field(default_factory=list)
    size: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def ours_median(self) -> float:
        return statistics.median(self.ours_s)

    @property
    def baseline_median(self) -> float:
        return statistics.median(self.baseline_s)

    @property
    def ratio(self) -> float:
        return self.ours_median / self.baseline_median if self.baseline_median else float("inf")


def pair(
    case: str,
    ours: tuple[str, Callable[[], Any]],
    baseline: tuple[str, Callable[[], Any]],
    rounds: int,
    size: dict[str, Any] | None = None,
    note: str = "",
    setup: Callable[[], Any] | None = None,
) -> Outcome:
    """Time ``ours`` and ``baseline`` ``rounds`` times each, alternating."""
    out = Outcome(case, ours[0], baseline[0], rounds, size=size or {}, note=note)
    for i in range(rounds):
        order = [(ours[1], out.ours_s), (baseline[1], out.baseline_s)]
        if i % 2:
            order.reverse()
        for fn, sink in order:
            if setup:
                setup()
            started = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - started)
    line = (
        f"{case:<34} ours {out.ours_median * 1000:9.1f} ms   {baseline[0]} "
        f"{out.baseline_median * 1000:9.1f} ms   ratio {out.ratio:6.2f}"
    )
    print(line, flush=True)
    return out


def write(outcomes: list[Outcome], mode: str) -> Path:
    """``bench/results/<mode>.json`` and ``.md``; returns the Markdown path."""
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "mode": mode,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    data = {
        "meta": meta,
        "cases": [
            {
                **asdict(o),
                "ours_median_s": o.ours_median,
                "baseline_median_s": o.baseline_median,
                "ratio": o.ratio,
            }
            for o in outcomes
        ],
    }
    (RESULTS / f"{mode}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    lines = [
        f"# tagsim bench ({mode}, {meta['when']})",
        "",
        "| case | ours | median | baseline | median | ratio | size |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        size = ", ".join(f"{k} {v}" for k, v in o.size.items())
        lines.append(
            f"| {o.case} | {o.ours} | {o.ours_median * 1000:.1f} ms | {o.baseline} | "
            f"{o.baseline_median * 1000:.1f} ms | {o.ratio:.2f} | {size} |"
        )
    md = RESULTS / f"{mode}.md"
    md.write_text("\n".join(lines) + "\n")
    return md
