"""Numbered change files: what an agency applies to its own copy, without webhooks.

OpenStreetMap's replication model. For each granularity (``hourly``, ``daily``) the files
are numbered 1, 2, 3 … with no gap. File N holds exactly the feed's changes after its
``from`` position up to its ``to`` position, and file N+1 starts where N ended. The first
file starts at the earliest snapshot's position (or at the feed's position then, when no
snapshot is kept), so a copy made from any snapshot finds the file to continue with.

A file is gzipped GeoJSON-style JSON Lines, one change a line, exactly as ``GET /changes``
gives it: ``id``, ``cursor``, ``entity_kind``, ``entity_id``, ``operation``,
``occurred_at``, ``cause``, ``before`` and ``after``. ``state.json`` beside the files says
the last sequence, its position and time (OSM's ``state.txt``); ``NNNNNNNNN.state.json``
beside each file says its own sequence, ``from`` and ``to`` positions, size and SHA-256, so
a folder copied as it is (an air-gapped agency's) is enough for ``tagsim replicate``.
Nothing is rewritten: a file's size and SHA-256 are also recorded in ``change_file``.
"""

from __future__ import annotations

import gzip
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import text

from geo.changes.feed import decode_cursor, feed_position, read_changes
from geo.changes.snapshots import sha256_of
from geo.errors import InvalidParameter, NotFound
from geo.models.changes import CHANGE_FILE_GRANULARITIES
from geo.platform.config import settings
from geo.platform.database import Database
from geo.platform.jobs import periodic, worker_database

__all__ = [
    "change_file",
    "change_state",
    "file_state",
    "list_change_files",
    "state_name",
    "write_change_file",
]

PAGE = 10_000
_COLUMNS = "granularity, sequence, from_position, to_position, made_at, changes, name, size, sha256"


def write_change_file(
    db: Database, folder: Path, granularity: str, *, now: datetime | None = None
) -> dict[str, Any]:
    """Write the next file of ``granularity``: the changes since the last file's end."""
    if granularity not in CHANGE_FILE_GRANULARITIES:
        raise InvalidParameter(
            f"granularity is one of {', '.join(CHANGE_FILE_GRANULARITIES)}", field="granularity"
        )
    home = folder / "changes" / granularity
    home.mkdir(parents=True, exist_ok=True)
    with db.begin() as conn:
        # one writer per granularity: a second waits here and then continues after the first
        conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('tagsim change_file ' || :g))"),
            {"g": granularity},
        )
        last = conn.execute(
            text(
                "SELECT sequence, to_position FROM change_file WHERE granularity = :g"
                " ORDER BY sequence DESC LIMIT 1"
            ),
            {"g": granularity},
        ).first()
        sequence = 1 if last is None else last.sequence + 1
        start = last.to_position if last is not None else _first_position(conn)
        name = f"{sequence:09d}.jsonl.gz"
        path = home / name
        position, count = start, 0
        with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
            while True:
                page = read_changes(conn, position, limit=PAGE)
                for change in page["changes"]:
                    out.write(orjson.dumps(change, default=_plain) + b"\n")
                count += page["count"]
                position = page["next"]
                if page["count"] < PAGE:
                    break
        row = (
            conn.execute(
                text(
                    "INSERT INTO change_file (granularity, sequence, from_position, to_position,"
                    " made_at, changes, name, size, sha256) VALUES (:g, :s, :f, :t,"
                    " coalesce(CAST(:at AS timestamptz), now()), :n, :name, :size, :sha)"
                    f" RETURNING {_COLUMNS}"
                ),
                {
                    "g": granularity,
                    "s": sequence,
                    "f": start,
                    "t": position,
                    "at": now,
                    "n": count,
                    "name": name,
                    "size": path.stat().st_size,
                    "sha": sha256_of(path),
                },
            )
            .mappings()
            .one()
        )
    made = dict(row)
    _write_json(home / state_name(sequence), file_state(made))
    _write_json(home / "state.json", _state(made))
    return made


def _first_position(conn: Any) -> str:
    """Where the first file starts: the earliest snapshot's position, else the feed's now."""
    kept = conn.execute(text("SELECT position FROM snapshot")).scalars().all()
    if kept:
        return min(kept, key=decode_cursor)
    return feed_position(conn)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _state(made: dict[str, Any]) -> dict[str, Any]:
    return {
        "granularity": made["granularity"],
        "sequence": made["sequence"],
        "position": made["to_position"],
        "made_at": made["made_at"].isoformat(),
        "changes": made["changes"],
    }


def state_name(sequence: int) -> str:
    """The name of file ``sequence``'s own state document."""
    return f"{sequence:09d}.state.json"


def file_state(made: dict[str, Any]) -> dict[str, Any]:
    """One file's state: its sequence, the positions it runs between, its size and SHA-256."""
    return {
        **_state(made),
        "from": made["from_position"],
        "name": made["name"],
        "size": made["size"],
        "sha256": made["sha256"],
    }


def _write_json(path: Path, document: dict[str, Any]) -> None:
    """A JSON document replaced whole (a folder copied meanwhile never holds half of one)."""
    temporary = path.with_name(f".{path.name}-{os.getpid()}")
    temporary.write_text(json.dumps(document))
    temporary.replace(path)


def change_state(db: Database, granularity: str) -> dict[str, Any]:
    """The last file of ``granularity``: its sequence, the position it ends at, its time."""
    files = list_change_files(db, granularity, limit=1)
    if not files:
        raise NotFound(f"no {granularity} change file yet", code="no_change_files")
    return _state(files[0])


def list_change_files(db: Database, granularity: str, limit: int = 100) -> list[dict[str, Any]]:
    """The newest ``limit`` files of ``granularity``, newest first."""
    with db.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM change_file WHERE granularity = :g"
                " ORDER BY sequence DESC LIMIT :l"
            ),
            {"g": granularity, "l": limit},
        ).mappings()
        return [dict(r) for r in rows]


def change_file(db: Database, granularity: str, sequence: int) -> dict[str, Any]:
    with db.connect() as conn:
        row = (
            conn.execute(
                text(
                    f"SELECT {_COLUMNS} FROM change_file WHERE granularity = :g AND sequence = :s"
                ),
                {"g": granularity, "s": sequence},
            )
            .mappings()
            .first()
        )
    if row is None:
        raise NotFound(f"no {granularity} change file {sequence}", code="unknown_change_file")
    return dict(row)


@periodic("change_files_hourly", "0 * * * *")
def hourly_change_file(context: Any, timestamp: int) -> None:
    """Each hour's file, written by whichever worker runs at the hour."""
    taken = datetime.fromtimestamp(timestamp, UTC)
    write_change_file(worker_database(), settings().downloads_folder, "hourly", now=taken)


@periodic("change_files_daily", "30 23 * * *")
def daily_change_file(context: Any, timestamp: int) -> None:
    """Each day's file, at 03:00 Tehran time (beside the daily snapshots)."""
    taken = datetime.fromtimestamp(timestamp, UTC)
    write_change_file(worker_database(), settings().downloads_folder, "daily", now=taken)
