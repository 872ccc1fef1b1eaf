"""Dated snapshots: a dataset's files as they stood at one point of the change feed.

A snapshot is written inside one ``REPEATABLE READ`` transaction, so every file (GeoPackage,
GeoParquet, FlatGeobuf, CSV) holds the same rows, and the transaction's snapshot gives the
feed position the files are consistent with (:func:`geo.changes.feed.feed_position`): every
change of a transaction older than the snapshot is in the files. Changes after the position
may include a few already in them (transactions that committed while older ones were still
running); a copy applies a change by its entity (a parcel's agency:village:number) to the
state its ``after`` gives, so applying one twice changes nothing.

The files go to ``<downloads>/<dataset>/<label>/`` (the label is the Tehran date and time)
with ``snapshot.json`` (the position, each file's size and SHA-256: the folder describes
itself, for a copy carried on a disk), written into a staging folder first and renamed
whole, then recorded with their sizes and SHA-256 in ``snapshot``; nothing is ever
rewritten. The newest ``keep`` snapshots of each dataset are kept; older ones are removed,
row and folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from geo.changes.feed import feed_position
from geo.errors import Conflict, InvalidParameter, NotFound, ValidationError
from geo.geodata.features.collections import get_collection
from geo.geodata.features.downloads import FORMATS, csv_chunks, write_file
from geo.geodata.features.query import FeatureQuery
from geo.geodata.features.tile_archive import PMTILES_MEDIA_TYPE, write_pmtiles
from geo.geodata.registry.partners import partners
from geo.models.changes import SNAPSHOT_DATASETS
from geo.platform.config import settings
from geo.platform.database import Database
from geo.platform.jobs import periodic, task, worker_database

__all__ = [
    "DAILY_UTC",
    "MANIFEST",
    "SNAPSHOT_FORMATS",
    "default_formats",
    "find_snapshot",
    "latest_snapshot",
    "list_snapshots",
    "sha256_of",
    "take_snapshot",
]

SNAPSHOT_FORMATS = ("gpkg", "parquet", "fgb", "csv", "pmtiles", "xlsx")
TABLE_FORMATS = ("csv", "xlsx")  # the crosswalk's: a table, no geometry
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# PMTiles (a map without a tile server) of the layers a map shows whole: parcels, divisions
TILED = ("parcels", "divisions")
MANIFEST = "snapshot.json"  # in each snapshot's folder: its position, files and checksums
KEEP = 7  # snapshots kept per dataset, by default
DAILY_UTC = "30 23 * * *"  # 03:00 in Tehran (UTC+3:30; no daylight saving since 1401)
TEHRAN = ZoneInfo("Asia/Tehran")
_COLUMNS = "id, dataset, label, taken_at, position, features, files, taken_by"


def take_snapshot(
    db: Database,
    dataset: str,
    folder: Path,
    *,
    formats: Sequence[str] | None = None,
    taken_by: str = "schedule",
    keep: int = KEEP,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Write ``dataset``'s files under ``folder`` and record them; returns the snapshot.
    ``formats`` by default: every format, PMTiles for the datasets of :data:`TILED`."""
    if dataset not in SNAPSHOT_DATASETS:
        raise InvalidParameter(
            f"dataset is one of {', '.join(SNAPSHOT_DATASETS)}", code="unknown_dataset"
        )
    if formats is None:
        formats = default_formats(dataset)
    allowed = offered_formats(dataset)
    unknown = [f for f in formats if f not in allowed]
    if unknown or not formats:
        raise InvalidParameter(
            f"{dataset}'s formats are among {', '.join(allowed)}", code="unknown_format"
        )
    if keep < 1:
        raise InvalidParameter("keep at least one snapshot", field="keep")
    label = (now or datetime.now(UTC)).astimezone(TEHRAN).strftime("%Y-%m-%dT%H%M%S")
    with db.connect() as conn:
        taken = conn.execute(
            text("SELECT 1 FROM snapshot WHERE dataset = :d AND label = :l"),
            {"d": dataset, "l": label},
        ).first()
    if taken is not None:
        raise _exists(dataset, label)
    home = folder / dataset
    home.mkdir(parents=True, exist_ok=True)
    staging = home / f".staging-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        if dataset == "crosswalk":
            position, features, release = _write_release(db, formats, staging)
        else:
            (position, features), release = _write(db, dataset, formats, staging), None
        files = [
            {**_described(staging / _file_name(dataset, fmt), fmt), **release_of(release)}
            for fmt in formats
        ]
        manifest = {"dataset": dataset, "label": label, "position": position}
        (staging / MANIFEST).write_text(
            json.dumps({**manifest, "features": features, "files": files})
        )
        final = home / label
        if final.exists():
            raise _exists(dataset, label)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    try:
        with db.begin() as conn:
            row = (
                conn.execute(
                    text(
                        "INSERT INTO snapshot (dataset, label, position, features, files,"
                        " taken_by) VALUES (:d, :l, :p, :n, CAST(:f AS jsonb), :by)"
                        f" RETURNING {_COLUMNS}"
                    ),
                    {
                        "d": dataset,
                        "l": label,
                        "p": position,
                        "n": features,
                        "f": json.dumps(files),
                        "by": taken_by,
                    },
                )
                .mappings()
                .one()
            )
    except IntegrityError:  # (the same label recorded meanwhile, by another process)
        shutil.rmtree(final, ignore_errors=True)
        raise _exists(dataset, label) from None
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    _prune(db, dataset, folder, keep)
    return dict(row)


def offered_formats(dataset: str) -> tuple[str, ...]:
    """What ``dataset`` can be written in: a table (the crosswalk) as CSV and XLSX, a layer
    in every feature format."""
    return TABLE_FORMATS if dataset == "crosswalk" else SNAPSHOT_FORMATS[:-1]


def default_formats(dataset: str) -> tuple[str, ...]:
    if dataset == "crosswalk":
        return TABLE_FORMATS
    return tuple(
        f for f in SNAPSHOT_FORMATS if f != "xlsx" and (f != "pmtiles" or dataset in TILED)
    )


def release_of(release: int | None) -> dict[str, int]:
    """What a crosswalk snapshot's file says of its release (nothing for other datasets)."""
    return {} if release is None else {"release": release}


def _write_release(db: Database, formats: Sequence[str], into: Path) -> tuple[str, int, int]:
    """The newest crosswalk release's table (CSV and XLSX), from one snapshot; (its feed
    position, rows, release number)."""
    with db.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            position = feed_position(conn)
            release = partners().latest_release(conn)
            if release is None:
                raise NotFound("no crosswalk release yet", code="no_release")
            rows = partners().write_release(conn, release, into)
    for fmt in TABLE_FORMATS:
        if fmt not in formats:
            (into / _file_name("crosswalk", fmt)).unlink()
    return position, rows, release


def _exists(dataset: str, label: str) -> Conflict:
    return Conflict(
        f"{dataset} already has a snapshot labelled {label} (one a second at most)",
        code="snapshot_exists",
    )


def _write(db: Database, dataset: str, formats: Sequence[str], into: Path) -> tuple[str, int]:
    """Every format from one REPEATABLE READ snapshot; (its feed position, features)."""
    q = FeatureQuery(collection=get_collection(dataset), limit=None)
    counts: set[int] = set()
    with db.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            position = feed_position(conn)
            for fmt in formats:
                target = into / _file_name(dataset, fmt)
                if fmt == "csv":
                    with target.open("wb") as out:
                        lines = -1  # (the header)
                        for chunk in csv_chunks(conn, q):
                            out.write(chunk)
                            lines += chunk.count(b"\n")
                    counts.add(lines)
                    continue
                if fmt == "pmtiles":
                    write_pmtiles(conn, q, target)
                    continue
                download = write_file(conn, q, fmt)
                try:
                    shutil.move(download.path, target)
                finally:
                    shutil.rmtree(download.folder, ignore_errors=True)
                counts.add(download.features)
            if not counts:  # (PMTiles alone: the features counted, not the tiles)
                where, params = q.where(conn)
                counts.add(
                    conn.execute(
                        text(f"SELECT count(*) FROM {q.collection.table} WHERE {where}"), params
                    ).scalar_one()
                )
    return position, max(counts)


def _file_name(dataset: str, fmt: str) -> str:
    return f"{dataset}.{fmt if fmt in ('pmtiles', 'xlsx') else FORMATS[fmt].extension}"


def sha256_of(path: Path) -> str:
    """A file's SHA-256 (hex), read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _described(path: Path, fmt: str) -> dict[str, Any]:
    return {
        "name": path.name,
        "format": fmt,
        "media_type": {"pmtiles": PMTILES_MEDIA_TYPE, "xlsx": XLSX}.get(fmt)
        or FORMATS[fmt].media_type,
        "size": path.stat().st_size,
        "sha256": sha256_of(path),
    }


def _prune(db: Database, dataset: str, folder: Path, keep: int) -> None:
    """Remove the snapshots of ``dataset`` past the newest ``keep`` (rows, then folders)."""
    with db.begin() as conn:
        gone = conn.execute(
            text(
                "DELETE FROM snapshot WHERE dataset = :d AND id NOT IN ("
                " SELECT id FROM snapshot WHERE dataset = :d ORDER BY taken_at DESC, id DESC"
                " LIMIT :k) RETURNING label"
            ),
            {"d": dataset, "k": keep},
        ).scalars()
        labels = list(gone)
    for label in labels:
        shutil.rmtree(folder / dataset / label, ignore_errors=True)


def list_snapshots(db: Database, dataset: str | None = None) -> list[dict[str, Any]]:
    """The snapshots kept, newest first (of one dataset, or of all)."""
    with db.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM snapshot WHERE (CAST(:d AS text) IS NULL OR dataset = :d)"
                " ORDER BY dataset, taken_at DESC, id DESC"
            ),
            {"d": dataset},
        ).mappings()
        return [dict(r) for r in rows]


def latest_snapshot(conn: Connection, dataset: str) -> dict[str, Any] | None:
    """The newest snapshot of ``dataset`` (None: none kept), on a connection at hand."""
    row = (
        conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM snapshot WHERE dataset = :d"
                " ORDER BY taken_at DESC, id DESC LIMIT 1"
            ),
            {"d": dataset},
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def find_snapshot(db: Database, dataset: str, when: str) -> dict[str, Any]:
    """The snapshot ``when`` names: ``latest``, a date (``2026-12-05``: that day's last, in
    Tehran) or a label (``2026-12-05T101500``)."""
    kept = list_snapshots(db, dataset)
    if when == "latest":
        found = kept[:1]
    elif len(when) == 10:
        found = [s for s in kept if s["label"].startswith(when + "T")][:1]
    else:
        found = [s for s in kept if s["label"] == when]
    if not found:
        raise NotFound(
            f"no snapshot of {dataset} at {when!r}; ask /downloads for the list",
            code="unknown_snapshot",
        )
    return found[0]


def new_release(db: Database) -> bool:
    """Whether a crosswalk release has no snapshot yet."""
    with db.connect() as conn:
        release = partners().latest_release(conn)
    kept = list_snapshots(db, "crosswalk")
    held = kept[0]["files"][0].get("release") if kept else None
    return release is not None and release != held


def check_request(dataset: str, formats: Sequence[str] | None) -> None:
    """Refuse now (not in the job) a snapshot that could never be taken."""
    if dataset not in SNAPSHOT_DATASETS:
        raise InvalidParameter(
            f"dataset is one of {', '.join(SNAPSHOT_DATASETS)}", code="unknown_dataset"
        )
    allowed = offered_formats(dataset)
    if formats is not None and (not formats or set(formats) - set(allowed)):
        raise ValidationError(  # (well-formed names: not ones this dataset is made in)
            f"{dataset}'s formats are among {', '.join(allowed)}",
            code="format_not_offered",
            field="formats",
        )


@task("snapshot")
def snapshot_job(
    context: Any, dataset: str, folder: str, formats: list[str] | None = None, by: str = "admin"
) -> None:
    """A snapshot an admin asked for (``POST /downloads/{dataset}``), taken by a worker."""
    db = worker_database()
    made = take_snapshot(db, dataset, Path(folder), formats=formats, taken_by=by)
    with db.begin() as conn:
        conn.execute(
            text("UPDATE job_progress SET done = 1, total = 1, result = CAST(:r AS jsonb)"
                 " WHERE job_id = :id"),
            {"id": context.job.id, "r": json.dumps({"dataset": dataset, "label": made["label"]})},
        )  # fmt: skip


@periodic("snapshots", DAILY_UTC)
def scheduled_snapshots(context: Any, timestamp: int) -> None:
    """The daily snapshot of every dataset, taken by whichever worker is running at 03:00
    Tehran time; a dataset that fails does not keep the others from theirs."""
    db, taken = worker_database(), datetime.fromtimestamp(timestamp, UTC)
    failed = []
    for dataset in SNAPSHOT_DATASETS:
        if dataset == "crosswalk" and not new_release(db):
            continue  # (a snapshot per release, not one a day of the same)
        try:
            take_snapshot(db, dataset, settings().downloads_folder, now=taken)
        except Exception as exc:  # (reported below, after the other datasets)
            failed.append(f"{dataset}: {exc}")
    if failed:
        raise RuntimeError("snapshots failed: " + "; ".join(failed))
