"""A copy kept in step from a snapshot and the numbered change files (``tagsim replicate``).

``init`` takes the latest snapshot of a dataset (checked against its SHA-256) into a
GeoPackage file or a PostGIS database (:mod:`geo.changes.replica_targets`) and records, in
a ``tagsim_replica`` table beside the rows, the feed position the snapshot holds and the
change file to continue with. ``update`` then applies the change files in order:

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
which starts again from the last file recorded as applied (PostGIS applies a file in one
transaction anyway).

Parcels and plates change feature by feature. Divisions change by whole editions and guide
plans by whole uploads, so their copies are taken from the newest snapshot (``init``).
"""

from __future__ import annotations

import gzip
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from geo.changes.feed import decode_cursor
from geo.changes.replica_sources import ReplicaSource, checked
from geo.changes.replica_targets import Replica, ReplicaTarget, open_target
from geo.errors import Conflict, GeoError, InvalidParameter, NotFound
from geo.models.changes import CHANGE_FILE_GRANULARITIES

__all__ = [
    "REPLICABLE",
    "Replica",
    "ReplicaRefused",
    "init_replica",
    "read_replica",
    "update_replica",
]

# datasets kept change by change: dataset -> the entity kind its changes carry
REPLICABLE = {"parcels": "parcel", "plates": "plate"}


class ReplicaRefused(GeoError):
    """A change file cannot be applied to this copy: a gap, a repeat, a file out of place.
    The copy is left as it was."""

    code = "replica_refused"


def _target(target: str | Path | ReplicaTarget) -> ReplicaTarget:
    return open_target(str(target)) if isinstance(target, str | Path) else target


def init_replica(
    source: ReplicaSource,
    dataset: str,
    target: str | Path | ReplicaTarget,
    *,
    granularity: str = "daily",
    say: Callable[[str], None] = lambda _: None,
) -> Replica:
    """Make a copy of the latest snapshot of ``dataset`` at ``target`` (a GeoPackage path or
    a ``postgresql://`` URL)."""
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
    copy = _target(target)
    if copy.exists():
        raise Conflict(
            f"{copy.name} is a copy already; `tagsim replicate update` it", code="replica_exists"
        )
    snapshot = source.snapshot(dataset)
    wanted = copy.snapshot_format
    described = next((f for f in snapshot["files"] if f["format"] == wanted), None)
    if described is None:
        raise NotFound(f"snapshot {snapshot['label']} has no {wanted} file", code="unknown_file")
    say(f"{dataset}: snapshot {snapshot['label']}, {described['size']:,} bytes")
    with tempfile.TemporaryDirectory(prefix="tagsim-replica-") as tmp:
        fetched = Path(tmp) / described["name"]
        source.fetch_snapshot_file(dataset, snapshot["label"], described["name"], fetched)
        checked(fetched, described["sha256"])
        sequence = _first_file(source, granularity, snapshot["position"]) - 1
        replica = Replica(
            copy.name, dataset, granularity, snapshot["label"], sequence, snapshot["position"],
            False, 0,
        )  # fmt: skip
        copy.create(fetched, replica)
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


def read_replica(target: str | Path | ReplicaTarget) -> Replica:
    """Where the copy at ``target`` stands."""
    return _target(target).state()


def update_replica(
    source: ReplicaSource,
    target: str | Path | ReplicaTarget,
    *,
    until: int | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> Replica:
    """Apply every change file after the copy's (up to sequence ``until``), in order;
    returns where the copy then stands."""
    copy = _target(target)
    replica = copy.state()
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
        replica = copy.apply(replica, latest, sequence, described["position"])
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
