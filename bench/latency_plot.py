"""Latency against result size, tagsim beside the thin wrapper: sequential requests (no
load), the median of a few per size, for items by bbox and for coverage; a PNG of both."""

from __future__ import annotations

import json
import math
import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.harness import RESULTS


def _time(url: str, key: str = "", body: bytes | None = None) -> tuple[float, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=body, headers=headers)
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as answer:
        data = answer.read()
    return time.perf_counter() - started, data


def _median_ms(url: str, key: str = "", body: bytes | None = None, n: int = 5) -> float:
    _time(url, key, body)  # warm
    return statistics.median(_time(url, key, body)[0] for _ in range(n)) * 1000


def round_plot(lon: float, lat: float, radius_m: float) -> bytes:
    """A round plot of ``radius_m`` around a point (100 m ≈ 3.1 ha), as GeoJSON lon/lat."""
    dlat = radius_m / 111_320
    dlon = dlat / math.cos(math.radians(lat))
    ring = [
        [lon + dlon * math.cos(a / 32 * 2 * math.pi), lat + dlat * math.sin(a / 32 * 2 * math.pi)]
        for a in range(32)
    ]
    return json.dumps({"type": "Polygon", "coordinates": [[*ring, ring[0]]]}).encode()


def sweep(ours: str, thin: str, key: str, lon: float, lat: float) -> dict[str, Any]:
    """Items in boxes of growing size and coverage of plots of growing radius around a point
    inside a village; each point: (features returned, tagsim ms, thin ms)."""
    items = []
    for half in (0.0003, 0.0008, 0.0015, 0.003, 0.006):
        box = f"{lon - half},{lat - half},{lon + half},{lat + half}"
        _, data = _time(f"{ours}/collections/parcels/items?bbox={box}&limit=10000", key)
        size = json.loads(data)["numberReturned"]
        items.append(
            (
                size,
                _median_ms(f"{ours}/collections/parcels/items?bbox={box}&limit=10000", key),
                _median_ms(f"{thin}/items?bbox={box}&limit=10000"),
            )
        )
    coverage = []
    for radius in (20, 60, 120, 250, 500):
        body = round_plot(lon, lat, radius)
        _, data = _time(f"{ours}/coverage", key, body)
        size = len(json.loads(data)["parcels"])
        coverage.append(
            (
                size,
                _median_ms(f"{ours}/coverage", key, body),
                _median_ms(f"{thin}/coverage", "", body),
            )
        )
    return {"items": items, "coverage": coverage}


def plot(points: dict[str, Any], mode: str) -> Path:
    """``bench/results/latency_<mode>.png``: two panels, latency (ms) against features."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (name, rows) in zip(axes, points.items(), strict=True):
        sizes = [r[0] for r in rows]
        ax.plot(sizes, [r[1] for r in rows], "o-", label="tagsim")
        ax.plot(sizes, [r[2] for r in rows], "s--", label="thin wrapper")
        ax.set_title(f"{name}: median latency, one request at a time")
        ax.set_xlabel("features in the answer")
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    out = RESULTS / f"latency_{mode}.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    (RESULTS / f"latency_{mode}.json").write_text(json.dumps(points, indent=1))
    return out
