"""Runs and releases: which run answers, publishing a run as a numbered release."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from crosswalk.errors import NoRun, ValidationError
from crosswalk.partners import LATEST_RUN_SQL
from geo.geodata.dates import jalali

__all__ = ["get_run", "latest_run", "list_releases", "list_runs", "publish", "run_of_release"]


def latest_run(conn: Connection) -> int:
    run = conn.execute(text(f"SELECT {LATEST_RUN_SQL}")).scalar()
    if run is None:
        raise NoRun("no finished crosswalk run yet: run `tagsim crosswalk build`")
    return run


def run_of_release(conn: Connection, number: int | None) -> int:
    """The run of release ``number`` (the newest release when None; else the newest run)."""
    if number is None:
        row = conn.execute(
            text("SELECT run_id FROM crosswalk_release ORDER BY number DESC LIMIT 1")
        ).scalar()
        return row if row is not None else latest_run(conn)
    row = conn.execute(
        text("SELECT run_id FROM crosswalk_release WHERE number = :n"), {"n": number}
    ).scalar()
    if row is None:
        raise NoRun(f"no crosswalk release {number}", code="no_release")
    return row


def get_run(conn: Connection, run_id: int) -> dict[str, Any]:
    row = (
        conn.execute(
            text(
                "SELECT r.id, r.status, r.moi_edition_id, r.sci_edition_id, r.hf_edition_id,"
                " r.parameters, r.started_at, r.finished_at, r.counts,"
                " (SELECT number FROM crosswalk_release WHERE run_id = r.id LIMIT 1) AS release"
                " FROM crosswalk_run r WHERE r.id = :r"
            ),
            {"r": run_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NoRun(f"no crosswalk run {run_id}", code="no_crosswalk_run")
    return dict(row)


def list_runs(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT id, status, started_at, finished_at, moi_edition_id, sci_edition_id,"
            " hf_edition_id FROM crosswalk_run ORDER BY id DESC LIMIT :l"
        ),
        {"l": limit},
    )
    return [dict(r) for r in rows.mappings()]


def list_releases(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT number, run_id, published_at, published_jalali, published_by, note, counts"
            " FROM crosswalk_release ORDER BY number DESC"
        )
    )
    return [dict(r) for r in rows.mappings()]


def publish(
    conn: Connection, run_id: int | None = None, by: str | None = None, note: str | None = None
) -> dict[str, Any]:
    """Freeze a finished run (the newest when None) as the next numbered release."""
    run_id = run_id or latest_run(conn)
    run = get_run(conn, run_id)
    if run["status"] != "finished":
        raise ValidationError(
            f"run {run_id} is {run['status']}, not finished", code="run_not_finished"
        )
    if run["release"] is not None:
        raise ValidationError(
            f"run {run_id} is already release {run['release']}", code="already_released"
        )
    counts: dict[str, int] = dict(
        conn.execute(
            text("SELECT status, count(*) FROM crosswalk_link WHERE run_id = :r GROUP BY status"),
            {"r": run_id},
        ).all()
    )
    today = date.today()
    row = (
        conn.execute(
            text(
                "INSERT INTO crosswalk_release (number, run_id, published_jalali, published_by,"
                " note, counts) VALUES ("
                "(SELECT coalesce(max(number), 0) + 1 FROM crosswalk_release),"
                " :r, :j, :by, :note, :c) RETURNING number, published_at, published_jalali"
            ),
            {"r": run_id, "j": jalali(today), "by": by, "note": note, "c": json.dumps(counts)},
        )
        .mappings()
        .one()
    )
    conn.execute(
        text("UPDATE crosswalk_run SET released = true, released_at = now() WHERE id = :r"),
        {"r": run_id},
    )
    return {
        "number": row["number"],
        "run_id": run_id,
        "published_at": row["published_at"],
        "published_jalali": row["published_jalali"],
        "counts": counts,
    }
