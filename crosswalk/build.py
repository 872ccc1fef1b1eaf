"""Build a crosswalk run: MOI (the reference) against SCI and against HF, stored as links.

Links are pairs: an MOI unit and an SCI unit (``hf_code`` empty), or an MOI unit and an HF
unit (``sci_code`` empty). People's decisions are applied during the build, level by
level, so that they steer the matching of the units below. A finished run records its
counts and what changed since the last published release.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text

from crosswalk.errors import Conflict, NotFound
from crosswalk.history import former_names
from crosswalk.matcher import Decision, Link, Matcher
from crosswalk.partners import ACCEPTED_SQL
from crosswalk.units import load_side
from geo.platform.database import Database

__all__ = ["build", "new_run", "pick_edition", "start_run"]

Progress = Callable[[int, int, str], None]


def pick_edition(conn: Connection, agency: str, wanted: str | int | None) -> int | None:
    """An edition id from an id or a label; the newest when ``wanted`` is None."""
    if wanted is None:
        return conn.execute(
            text(
                "SELECT id FROM edition WHERE agency = :a"
                " ORDER BY coalesce(published_on, imported_at::date) DESC, id DESC LIMIT 1"
            ),
            {"a": agency},
        ).scalar()
    row = conn.execute(
        text("SELECT id FROM edition WHERE agency = :a AND (label = :w OR id::text = :w)"),
        {"a": agency, "w": str(wanted)},
    ).scalar()
    if row is None:
        raise NotFound(f"{agency} has no edition {wanted!r}", code="no_edition")
    return row


def start_run(
    db: Database,
    moi: str | int | None = None,
    sci: str | int | None = None,
    hf: str | int | None = None,
    parameters: dict[str, Any] | None = None,
) -> int:
    """Create a queued run for the chosen (or newest) editions; return its id."""
    with db.begin() as conn:
        return new_run(conn, moi, sci, hf, parameters)


def new_run(
    conn: Connection,
    moi: str | int | None = None,
    sci: str | int | None = None,
    hf: str | int | None = None,
    parameters: dict[str, Any] | None = None,
) -> int:
    """As :func:`start_run`, in the caller's transaction (which may queue its job)."""
    ids = {a: pick_edition(conn, a, w) for a, w in (("moi", moi), ("sci", sci), ("hf", hf))}
    if ids["moi"] is None:
        raise Conflict(
            "the crosswalk needs an MOI edition (the reference list)",
            code="no_reference_edition",
        )
    if ids["sci"] is None and ids["hf"] is None:
        raise Conflict("the crosswalk needs an SCI or an HF edition to map", code="nothing_to_map")
    run_id: int = conn.execute(
        text(
            "INSERT INTO crosswalk_run (moi_edition_id, sci_edition_id, hf_edition_id,"
            " parameters, status) VALUES (:m, :s, :h, :p, 'queued') RETURNING id"
        ),
        {"m": ids["moi"], "s": ids["sci"], "h": ids["hf"], "p": json.dumps(parameters or {})},
    ).scalar_one()
    return run_id


def _decisions(conn: Connection, agency: str) -> list[Decision]:
    rows = conn.execute(
        text(
            f"SELECT DISTINCT ON (level, moi_code, {agency}_code) level, moi_code,"
            f" {agency}_code, decision, note FROM crosswalk_decision"
            f" WHERE {agency}_code IS NOT NULL AND moi_code IS NOT NULL"
            f" ORDER BY level, moi_code, {agency}_code, decided_at DESC, id DESC"
        ),
    ).all()
    return [Decision(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def _store(conn: Connection, run_id: int, agency: str, links: list[Link]) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(
        "COPY crosswalk_link (run_id, level, moi_code, sci_code, hf_code, relation, confidence,"
        " method, status, evidence) FROM STDIN"
    ) as copy:
        for lk in links:
            copy.write_row(
                (
                    run_id,
                    lk.level,
                    lk.ref,
                    lk.other if agency == "sci" else None,
                    lk.other if agency == "hf" else None,
                    lk.relation,
                    lk.confidence,
                    lk.method,
                    lk.status,
                    json.dumps(lk.evidence(), ensure_ascii=False),
                )
            )


def _changes_since_release(conn: Connection, run_id: int) -> dict[str, Any]:
    release = conn.execute(
        text("SELECT number, run_id FROM crosswalk_release ORDER BY number DESC LIMIT 1")
    ).first()
    if release is None:
        return {"release": None}
    q = (
        "SELECT level, moi_code, coalesce(sci_code, '') s, coalesce(hf_code, '') h, relation,"
        f" status IN {ACCEPTED_SQL} AS accepted FROM crosswalk_link WHERE run_id = :r"
    )
    old = {
        (r[0], r[1], r[2], r[3]): (r[4], r[5]) for r in conn.execute(text(q), {"r": release.run_id})
    }
    new = {(r[0], r[1], r[2], r[3]): (r[4], r[5]) for r in conn.execute(text(q), {"r": run_id})}
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = [k for k in new if k in old and new[k] != old[k]]

    def sample(keys: list[tuple[str, str, str, str]]) -> list[dict[str, str]]:
        return [
            {"level": k[0], "moi_code": k[1], "sci_code": k[2], "hf_code": k[3]} for k in keys[:50]
        ]

    return {
        "release": release.number,
        "added": len(added),
        "removed": len(removed),
        "changed": len(changed),
        "examples": {
            "added": sample(added),
            "removed": sample(removed),
            "changed": sample(changed),
        },
    }


# The links that differ from the previous finished run go on the change feed, in the
# transaction that finishes the run: added, removed, or with another relation or status.
_ANNOUNCE = """
    WITH prev AS (SELECT max(id) AS id FROM crosswalk_run WHERE status = 'finished'
                  AND id < :r),
    n AS (SELECT level, moi_code, coalesce(sci_code, '') AS s, coalesce(hf_code, '') AS h,
                 relation, status, confidence FROM crosswalk_link
          WHERE run_id = :r AND status <> 'rejected'),
    o AS (SELECT level, moi_code, coalesce(sci_code, '') AS s, coalesce(hf_code, '') AS h,
                 relation, status, confidence FROM crosswalk_link
          WHERE run_id = (SELECT id FROM prev) AND status <> 'rejected')
    INSERT INTO change (entity_kind, entity_id, operation, cause, before, after)
    SELECT 'crosswalk',
           coalesce(n.level, o.level) || ':moi:' || coalesce(n.moi_code, o.moi_code)
           || CASE WHEN coalesce(n.s, o.s) <> '' THEN '~sci:' || coalesce(n.s, o.s)
                   ELSE '~hf:' || coalesce(n.h, o.h) END,
           CASE WHEN o.level IS NULL THEN 'insert' WHEN n.level IS NULL THEN 'delete'
                ELSE 'update' END,
           jsonb_build_object('crosswalk_run', CAST(:r AS int)),
           CASE WHEN o.level IS NOT NULL THEN jsonb_build_object('relation', o.relation,
             'status', o.status, 'confidence', o.confidence) END,
           CASE WHEN n.level IS NOT NULL THEN jsonb_build_object('relation', n.relation,
             'status', n.status, 'confidence', n.confidence) END
    FROM n FULL JOIN o ON o.level = n.level AND o.moi_code = n.moi_code AND o.s = n.s
      AND o.h = n.h
    WHERE o.level IS NULL OR n.level IS NULL
       OR (o.relation, o.status) IS DISTINCT FROM (n.relation, n.status)"""


def build(
    db: Database, run_id: int, progress: Progress | None = None, *, trace_memory: bool = False
) -> dict[str, Any]:
    """Run the queued run ``run_id`` to the end; return its counts.

    ``trace_memory`` measures the peak of Python's allocations (``peak_python_mb``) with
    tracemalloc, which slows the build by about half: for the bench, not for service."""
    report = progress or (lambda _d, _t, _m: None)
    started = time.perf_counter()
    if trace_memory:
        tracemalloc.start()
    try:
        with db.begin() as conn:
            run = conn.execute(
                text(
                    "SELECT moi_edition_id, sci_edition_id, hf_edition_id FROM crosswalk_run"
                    " WHERE id = :r"
                ),
                {"r": run_id},
            ).one()
            conn.execute(
                text(
                    "UPDATE crosswalk_run SET status = 'running', started_at = now() WHERE id = :r"
                ),
                {"r": run_id},
            )
            conn.execute(text("DELETE FROM crosswalk_link WHERE run_id = :r"), {"r": run_id})
        others = [(a, e) for a, e in (("sci", run.sci_edition_id), ("hf", run.hf_edition_id)) if e]
        total = 1 + 6 * len(others)
        done = 0
        counts: dict[str, Any] = {}
        with db.connect() as conn:
            former = former_names(conn, "moi", run.moi_edition_id)
            ref = load_side(conn, "moi", run.moi_edition_id, former)
        done += 1
        report(
            done,
            total,
            f"MOI reference loaded ({len(ref.units)} units, {len(former)} with former names)",
        )
        for agency, edition_id in others:
            with db.connect() as conn:
                other = load_side(conn, agency, edition_id)
                decisions = _decisions(conn, agency)

            def step(message: str) -> None:
                nonlocal done
                done += 1
                report(done, total, message)

            links = Matcher(ref, other, decisions, progress=step).run()
            with db.begin() as conn:
                _store(conn, run_id, agency, links)
            by = Counter((lk.level, lk.status) for lk in links)
            counts[agency] = {
                "units": {"moi": len(ref.units), agency: len(other.units)},
                "links": {f"{lvl}:{st}": n for (lvl, st), n in sorted(by.items())},
                "relations": dict(Counter(lk.relation for lk in links)),
                "needs_review": sum(1 for lk in links if lk.status == "needs_review"),
                "decisions_applied": len(decisions),
            }
        counts["seconds"] = round(time.perf_counter() - started, 2)
        if trace_memory:
            counts["peak_python_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        with db.begin() as conn:
            # the planner's statistics see the new links: without them a lookup of 100,000
            # codes right after a build was planned as a scan per code (minutes, not 0.3 s)
            conn.execute(text("ANALYZE crosswalk_link"))
            counts["changes_since_release"] = _changes_since_release(conn, run_id)
            counts["announced"] = conn.execute(text(_ANNOUNCE), {"r": run_id}).rowcount
            conn.execute(
                text(
                    "UPDATE crosswalk_run SET status = 'finished', finished_at = now(),"
                    " counts = :c WHERE id = :r"
                ),
                {"c": json.dumps(counts, ensure_ascii=False), "r": run_id},
            )
        return counts
    except Exception as exc:
        with db.begin() as conn:
            conn.execute(
                text(
                    "UPDATE crosswalk_run SET status = 'failed', finished_at = now(),"
                    " counts = :c WHERE id = :r"
                ),
                {
                    "c": json.dumps({"error": type(exc).__name__, "message": str(exc)[:500]}),
                    "r": run_id,
                },
            )
        raise
    finally:
        if trace_memory:
            tracemalloc.stop()
