"""How good a run is against known truth (the generator's ``truth/crosswalk.csv``).

Precision and recall of the automatically accepted links, per level and agency pair; the
recall of the true pairs carrying each spelling variant kind; the review queue's size.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from sqlalchemy import text

from crosswalk.partners import ACCEPTED_STATUSES
from geo.models.registry import LEVELS
from geo.platform.database import Database

__all__ = ["evaluate"]


def _truth(
    path: Path, agency: str
) -> tuple[dict[str, set[tuple[str, str]]], dict[tuple[str, str], list[str]]]:
    pairs: dict[str, set[tuple[str, str]]] = defaultdict(set)
    kinds: dict[tuple[str, str], list[str]] = {}
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            m, o = row["moi_code"], row[f"{agency}_code"]
            if m and o:
                pairs[row["level"]].add((m, o))
                kinds[(m, o)] = [v.split(":")[1] for v in row["variants"].split(";") if v]
    return pairs, kinds


def evaluate(db: Database, run_id: int, truth_csv: Path) -> dict[str, Any]:
    """Precision/recall per agency and level, recall per variant kind, review sizes."""
    out: dict[str, Any] = {}
    with db.connect() as conn:
        for agency in ("sci", "hf"):
            rows = conn.execute(
                text(
                    f"SELECT level, moi_code, {agency}_code, status FROM crosswalk_link"
                    f" WHERE run_id = :r AND {agency}_code IS NOT NULL"
                ),
                {"r": run_id},
            ).all()
            if not rows:
                continue
            truth, kinds = _truth(truth_csv, agency)
            levels: dict[str, Any] = {}
            for level in LEVELS:
                auto = {(r[1], r[2]) for r in rows if r[0] == level and r[3] in ACCEPTED_STATUSES}
                review = {(r[1], r[2]) for r in rows if r[0] == level and r[3] == "needs_review"}
                true = truth.get(level, set())
                if not true and not auto:
                    continue
                hit = len(auto & true)
                levels[level] = {
                    "true_pairs": len(true),
                    "auto": len(auto),
                    "auto_correct": hit,
                    "precision": round(hit / len(auto), 4) if auto else 1.0,
                    "recall": round(hit / len(true), 4) if true else 1.0,
                    "review": len(review),
                    "review_correct": len(review & true),
                    "missed": len(true - auto - review),
                }
            accepted = {(r[1], r[2]) for r in rows if r[3] in ACCEPTED_STATUSES}
            per_kind: dict[str, list[int]] = defaultdict(lambda: [0, 0])
            for pair, ks in kinds.items():
                for k in ks:
                    per_kind[k][1] += 1
                    per_kind[k][0] += pair in accepted
            out[agency] = {
                "levels": levels,
                "variants": {
                    k: {"pairs": n, "recall": round(h / n, 4)}
                    for k, (h, n) in sorted(per_kind.items())
                },
                "review_queue": sum(1 for r in rows if r[3] == "needs_review"),
            }
    return out
