"""The benchmark suite still runs (quick mode); it asserts nothing about speed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_bench_runs_and_writes_ratios() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ratio" in done.stdout
    result = json.loads((ROOT / "bench" / "results" / "quick.json").read_text())
    cases = {c["case"]: c for c in result["cases"]}
    assert {"registry import (SCI layout)", "batch resolve (HTTP, JSON)"} <= set(cases)
    for c in cases.values():
        assert c["ratio"] > 0 and len(c["ours_s"]) == len(c["baseline_s"]) == c["rounds"]
    if "items by bbox vs thin [generator, c=8]" in cases:  # the serving case ran (wrk, ogr2ogr)
        for dataset in ("generator", "tiling"):  # every shape on both maps (c=1: full mode)
            for shape in ("items by bbox", "one item by id", "a village's parcels", "MVT z14"):
                assert f"{shape} vs thin [{dataset}, c=8]" in cases
            assert f"MVT z14 no tile cache vs thin [{dataset}, c=8]" in cases
        tiling = [c for c in cases if c.startswith("parcel ingest, tiling")]
        assert len(tiling) == 2  # the tiling's shapefile and GeoPackage are ingested too
        picture = ROOT / "bench" / "results" / "latency_quick.png"
        assert picture.stat().st_size > 10_000
        points = json.loads((ROOT / "bench" / "results" / "latency_quick.json").read_text())
        assert [r[0] for r in points["items"]] == sorted(r[0] for r in points["items"])
