"""A copy kept in step from a snapshot and the numbered change files (``tagsim replicate``).

``init`` takes the latest snapshot's GeoPackage of a dataset (checked against its SHA-256)
and records, in a ``tagsim_replica`` table inside it, the feed position the snapshot holds
and the change file to continue with. ``update`` then applies the change files in order:

- file N's own state must say sequence N and start where the copy stands (the first file
  after a snapshot may start before the snapshot's position: changes up to the position
  are skipped, they are in the snapshot); anything else — a missing sequence, one applied
  already, a file out of its place — is refused and the copy is left as it was;
- the file must match its SHA-256, and its changes follow each other inside its range;
- each feature a file changes is set to its last ``after`` (removed when null), found by
  its identity (a parcel's village agency, village and number; a plate's unit, main and
  sub plate). A change carries the whole feature exactly (geometry to the bit, every
  property the collection publishes, the version id as ``fid``): the copy's rows are the
  service's rows.

Applying a file twice gives what applying it once gives, so a copy stopped anywhere —
killed between its deletes and its inserts — is brought right by the next ``update``,
which starts again from the last file recorded as applied.

Parcels and plates change feature by feature. Divisions change by whole editions and guide
plans by whole uploads, so their copies are taken from the newest snapshot (``init``).
"""

from __future__ import annotations

import gzip
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyogrio
import shapely
import shapely.geometry

from geo.changes.feed import decode_cursor
from geo.changes.replica_sources import ReplicaSource, checked
from geo.errors import Conflict, GeoError, InvalidParameter, NotFound
from geo.geodata.features.collections import Collection, get_collection
from geo.geodata.features.downloads import file_schema
from geo.models.changes import CHANGE_FILE_GRANULARITIES

__all__ = ["REPLICABLE", "ReplicaRefused", "init_replica", "read_replica", "update_replica"]

# datasets kept change by change: dataset -> the entity kind its changes carry
REPLICABLE = {"parcels": "parcel", "plates": "plate"}
STATE_TABLE = "tagsim_replica"


class ReplicaRefused(GeoError):
    """A change file cannot be applied to this copy: a gap, a repeat, a file out of place.
    The copy is left as it was."""

    code = "replica_refused"


@dataclass
class Replica:
    path: Path
    dataset: str
    granularity: str
    snapshot: str
    sequence: int  # the last file applied (or skipped as older than the snapshot)
    position: str  # the feed position the copy holds
    aligned: bool  # position is the end of file ``sequence`` (not a snapshot's position)
    applied: int  # changes applied since the snapshot

    @property
    def collection(self) -> Collection:
        return get_collection(self.dataset)


def init_replica(
    source: ReplicaSource,
    dataset: str,
    target: Path,
    *,
    granularity: str = "daily",
    say: Callable[[str], None] = lambda _: None,
) -> Replica:
    """Make ``target`` (a new GeoPackage) from the latest snapshot of ``dataset``."""
    if dataset not in REPLICABLE:
        raise InvalidParameter(
            f"{dataset} changes by whole editions or uploads: take its newest snapshot"
            f" (/downloads/{dataset}/latest/); copies kept in step are of"
            f" {', '.join(REPLICABLE)}",
            code="not_replicable",
        )
    if granularity not in CHANGE_FILE_GRANULARITIES:
        raise InvalidParameter(
            f"granularity is one of {', '.join(CHANGE_FILE_GRANULARITIES)}", field="granularity"
        )
    if target.exists():
        raise Conflict(f"{target} exists; `tagsim replicate update` it", code="replica_exists")
    snapshot = source.snapshot(dataset)
    gpkg = next((f for f in snapshot["files"] if f["format"] == "gpkg"), None)
    if gpkg is None:
        raise NotFound(f"snapshot {snapshot['label']} has no GeoPackage", code="unknown_file")
    say(f"{dataset}: snapshot {snapshot['label']}, {gpkg['size']:,} bytes")
    partial = target.with_name(target.name + ".part")
    try:
        source.fetch_snapshot_file(dataset, snapshot["label"], gpkg["name"], partial)
        checked(partial, gpkg["sha256"])
        sequence = _first_file(source, granularity, snapshot["position"]) - 1
        replica = Replica(
            target, dataset, granularity, snapshot["label"], sequence, snapshot["position"],
            False, 0,
        )  # fmt: skip
        with _connect(partial) as db:
            _create_state(db, replica)
        partial.rename(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    say(f"{dataset}: position {replica.position}, next {granularity} file {sequence + 1}")
    return replica


def _first_file(source: ReplicaSource, granularity: str, position: str) -> int:
    """The first file with changes after ``position``: the lowest sequence whose end lies
    past it (files are in position order, so a binary search over their states)."""
    state = source.change_state(granularity)
    if state is None:
        return 1
    at = decode_cursor(position)
    low, high = 1, int(state["sequence"]) + 1
    while low < high:
        middle = (low + high) // 2
        found = source.file_state(granularity, middle)
        if found is None:
            raise ReplicaRefused(
                f"{granularity} file {middle} is missing at the source", code="missing_sequence"
            )
        if decode_cursor(found["position"]) > at:
            high = middle
        else:
            low = middle + 1
    return low


def _create_state(db: sqlite3.Connection, replica: Replica) -> None:
    """The copy's state table (a GeoPackage attributes table) and the key index."""
    c = replica.collection
    db.execute(
        f"CREATE TABLE {STATE_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1),"
        " dataset TEXT NOT NULL, granularity TEXT NOT NULL, snapshot TEXT NOT NULL,"
        " sequence INTEGER NOT NULL, position TEXT NOT NULL, aligned INTEGER NOT NULL,"
        " applied INTEGER NOT NULL, updated_at TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO gpkg_contents (table_name, data_type, identifier, description)"
        " VALUES (?, 'attributes', ?, 'where this copy stands on the change files')",
        (STATE_TABLE, STATE_TABLE),
    )
    db.execute(
        f"INSERT INTO {STATE_TABLE} VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            replica.dataset,
            replica.granularity,
            replica.snapshot,
            replica.sequence,
            replica.position,
            int(replica.aligned),
            replica.applied,
            _now(),
        ),
    )
    keys = ", ".join(f'"{k}"' for k in c.identity)
    db.execute(f'CREATE INDEX "{c.id}_identity" ON "{c.id}" ({keys})')


@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """The GeoPackage in one SQLite transaction: committed at the end, then closed."""
    with closing(sqlite3.connect(path)) as db, db:
        yield db


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_replica(target: Path) -> Replica:
    """Where the copy at ``target`` stands."""
    if not target.is_file():
        raise NotFound(f"{target} is not a copy; `tagsim replicate init` it", code="no_replica")
    try:
        with closing(sqlite3.connect(f"file:{target}?mode=ro", uri=True)) as db:
            row = db.execute(
                f"SELECT dataset, granularity, snapshot, sequence, position, aligned, applied"
                f" FROM {STATE_TABLE}"
            ).fetchone()
    except sqlite3.DatabaseError:
        row = None
    if row is None:
        raise InvalidParameter(f"{target} is not a tagsim copy", code="no_replica")
    dataset, granularity, snapshot, sequence, position, aligned, applied = row
    return Replica(
        target, dataset, granularity, snapshot, sequence, position, bool(aligned), applied
    )


def update_replica(
    source: ReplicaSource,
    target: Path,
    *,
    until: int | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Replica:
    """Apply every change file after the copy's (up to sequence ``until``), in order;
    returns where the copy then stands."""
    replica = read_replica(target)
    state = source.change_state(replica.granularity)
    last = int(state["sequence"]) if state else 0
    if until is not None:
        last = min(last, until)
    while replica.sequence < last:
        sequence = replica.sequence + 1
        described = source.file_state(replica.granularity, sequence)
        if described is None:
            raise ReplicaRefused(
                f"{replica.granularity} file {sequence} is missing (the source is at {last});"
                f" the copy stays at {replica.sequence}",
                code="missing_sequence",
            )
        _check_place(replica, sequence, described)
        changes = _read_file(source, replica, sequence, described)
        latest = _latest(replica, changes)
        _apply(replica, latest)
        replica = _record(replica, sequence, described["position"], len(latest))
        say(
            f"{replica.granularity} {sequence}: {len(changes):,} changes,"
            f" {len(latest):,} features set; position {replica.position}"
        )
    return replica


def _check_place(replica: Replica, sequence: int, described: dict[str, Any]) -> None:
    """File ``sequence`` continues the copy exactly, or it is refused."""
    if int(described.get("sequence", -1)) != sequence:
        raise ReplicaRefused(
            f"the file in place of {replica.granularity} {sequence} says it is"
            f" {described.get('sequence')}; the copy stays at {replica.sequence}",
            code="wrong_sequence",
        )
    start, end = decode_cursor(described["from"]), decode_cursor(described["position"])
    here = decode_cursor(replica.position)
    fits = start == here if replica.aligned else start <= here <= end
    if not fits:
        code = "repeated_changes" if start < here else "gap"
        raise ReplicaRefused(
            f"{replica.granularity} file {sequence} runs from {described['from']}, but the copy"
            f" stands at {replica.position}",
            code=code,
        )


def _read_file(
    source: ReplicaSource, replica: Replica, sequence: int, described: dict[str, Any]
) -> list[dict[str, Any]]:
    """The file's changes after the copy's position, of the copy's kind, checked."""
    with tempfile.TemporaryDirectory(prefix="tagsim-replica-") as tmp:
        path = Path(tmp) / described["name"]
        path.write_bytes(source.change_file(replica.granularity, sequence))
        checked(path, described["sha256"])
        lines = gzip.decompress(path.read_bytes()).splitlines()
    start, end = decode_cursor(described["from"]), decode_cursor(described["position"])
    here, kind = decode_cursor(replica.position), REPLICABLE[replica.dataset]
    previous, kept = start, []
    for line in lines:
        change = orjson.loads(line)
        at = decode_cursor(change["cursor"])
        if not previous < at <= end:
            raise ReplicaRefused(
                f"{replica.granularity} file {sequence}: change {change['cursor']} is out of"
                " its place",
                code="corrupt_file",
            )
        previous = at
        if at > here and change["entity_kind"] == kind:
            kept.append(change)
    return kept


def _latest(replica: Replica, changes: list[dict[str, Any]]) -> dict[tuple[str, ...], Any]:
    """Each feature's last state in the file (None: removed), by its identity."""
    identity = replica.collection.identity
    latest: dict[tuple[str, ...], Any] = {}
    for change in changes:
        state = change["after"] or change["before"]
        key = tuple(str(state[k]) for k in identity)
        latest[key] = change["after"]
    return latest


def _apply(replica: Replica, latest: dict[tuple[str, ...], Any]) -> None:
    """Remove every feature the file touches, then write their last states (GDAL writes the
    rows, as it wrote the snapshot's)."""
    if not latest:
        return
    c = replica.collection
    keys = ", ".join(f'"{k}"' for k in c.identity)
    marks = ", ".join("?" for _ in c.identity)
    with _connect(replica.path) as db:
        db.execute(f"CREATE TEMP TABLE gone ({keys})")
        db.executemany(f"INSERT INTO temp.gone VALUES ({marks})", list(latest))
        db.execute(f'DELETE FROM "{c.id}" WHERE ({keys}) IN (SELECT * FROM temp.gone)')
    kept = [state for state in latest.values() if state is not None]
    if kept:
        pyogrio.write_arrow(
            _table(c, kept),
            replica.path,
            layer=c.id,
            driver="GPKG",
            append=True,
            geometry_name="geometry",
            geometry_type=c.geometry_type,
            crs="EPSG:4326",
        )


def _table(c: Collection, states: list[dict[str, Any]]) -> pa.Table:
    """The states as rows of the snapshot's own schema."""
    schema = file_schema(c)
    columns = []
    for f in schema:
        if f.name == "fid":
            values: list[Any] = [s["id"] for s in states]
        elif f.name == "geometry":
            values = [
                shapely.to_wkb(shapely.geometry.shape(s["geometry"]), output_dimension=2)
                for s in states
            ]
        elif pa.types.is_timestamp(f.type):
            values = [datetime.fromisoformat(s[f.name]) if s[f.name] else None for s in states]
        else:
            values = [s[f.name] for s in states]
        columns.append(pa.array(values, type=f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _record(replica: Replica, sequence: int, position: str, applied: int) -> Replica:
    with _connect(replica.path) as db:
        db.execute(
            f"UPDATE {STATE_TABLE} SET sequence = ?, position = ?, aligned = 1,"
            " applied = applied + ?, updated_at = ?",
            (sequence, position, applied, _now()),
        )
    return Replica(
        replica.path,
        replica.dataset,
        replica.granularity,
        replica.snapshot,
        sequence,
        position,
        True,
        replica.applied + applied,
    )
