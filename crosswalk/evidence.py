"""Evidence for one candidate pair and the score it adds up to, in words a reviewer reads."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rapidfuzz import fuzz

from crosswalk.units import Unit

__all__ = ["Evidence", "weigh"]


@dataclass(slots=True)
class Evidence:
    score: float
    method: str  # code | name | fuzzy | spatial | manual
    words: list[str]


def _km(a: Unit, b: Unit) -> float | None:
    if None in (a.lon, a.lat, b.lon, b.lat):
        return None
    dx = math.radians(b.lon - a.lon) * math.cos(math.radians((a.lat + b.lat) / 2))  # type: ignore[operator]
    dy = math.radians(b.lat - a.lat)  # type: ignore[operator]
    return 6371.0 * math.hypot(dx, dy)


def weigh(ref: Unit, other: Unit, hops: int) -> Evidence:
    """Score ``ref`` (MOI) against ``other``; ``hops`` is how far up their matched
    ancestor is (1: parents matched; 2: only the grandparents; …)."""
    former = next((f for f in ref.former if f.key == other.key), None)
    loose_former = next((f for f in ref.former if f.loose and f.loose == other.loose), None)
    if ref.key == other.key:
        score, method, words = 1.0, "name", ["same name key"]
    elif ref.loose == other.loose and ref.loose:
        score, method, words = 0.95, "name", ["same name by variant rules"]
    elif former is not None:
        score, method = 0.97, "name"
        words = [f"same as its former name «{former.name}» ({former.edition})"]
    elif loose_former is not None:
        score, method = 0.93, "name"
        words = [f"its former name «{loose_former.name}» ({loose_former.edition}) by variant rules"]
    else:
        pairs = [(ref.key, other.key), (ref.loose, other.loose)]
        pairs += [(f.key, other.key) for f in ref.former]
        sim = max(fuzz.ratio(k, ok) for k, ok in pairs) / 100
        score, method, words = 0.9 * sim, "fuzzy", [f"names {round(sim * 100)}% alike"]
    if hops <= 1:
        words.append("parent matched")
    else:
        score -= 0.05 * (hops - 1)
        words.append("moved: only the " + ("grandparent" if hops == 2 else "ancestor") + " matched")
    km = _km(ref, other)
    if km is not None:
        if km < 2:
            score += 0.03
            words.append(f"{round(km * 1000)} m apart")
        elif km > 15:
            score -= 0.15
            method = method if method != "name" else "name"
            words.append(f"{km:.0f} km apart")
        else:
            words.append(f"{km:.1f} km apart")
    if ref.population and other.population:
        ratio = ref.population / other.population
        if 0.5 <= ratio <= 2:
            score += 0.02
            words.append("similar population")
        else:
            score -= 0.03
            words.append("population differs")
    return Evidence(round(max(0.0, min(1.0, score)), 4), method, words)
