"""An upload from bytes to a published parcel map: read, place, stage, validate, publish.

Each step reports progress on the ``upload`` row. A file that cannot be used ends
``failed`` with a stable code; a file with errors ends ``invalid`` with its report; a
valid dry run ends ``validated`` and waits for :func:`publish_upload`. Nothing published
changes until the publish transaction commits.
"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, text

from geo.errors import Conflict, GeoError, NotFound, ValidationError
from geo.geodata.parcels.checks import Checker
from geo.geodata.parcels.crs_choice import choose_crs
from geo.geodata.parcels.errors import UploadRejected
from geo.geodata.parcels.extents import VillageExtent, seen_rows
from geo.geodata.parcels.first_load import (
    drop_loader,
    index_loader,
    plan_load,
    release_partitions,
)
from geo.geodata.parcels.placement import Placement, check_locations, place
from geo.geodata.parcels.prepare import Codes
from geo.geodata.parcels.profile import resolve_fields
from geo.geodata.parcels.publish import publish_loaded, publish_stage, stage_provinces
from geo.geodata.parcels.readers import Layers, LayerSource, open_upload
from geo.geodata.parcels.stage import (
    ParcelRows,
    PreparedBatch,
    StageRows,
    StageStats,
    Target,
    prepared_batches,
    write_batches,
)
from geo.geodata.parcels.upload_file import fetch_file, store_beside, store_file
from geo.geodata.parcels.version_ids import IdBlocks
from geo.platform.database import Database

__all__ = [
    "IngestOptions",
    "attach_job",
    "create_upload",
    "get_upload",
    "process_upload",
    "publish_upload",
    "record_upload",
]

Progress = Callable[[float, str], None]
PROGRESS_S = 1.0  # seconds between progress writes to the upload row


@dataclass
class IngestOptions:
    village: str | None = None  # AGENCY:CODE
    crs: int | None = None
    dry_run: bool = False
    repair: bool = False
    mapping: dict[str, str] = field(default_factory=dict)
    confirm_removals: bool = False  # a publish may remove over 20% of a village's parcels


def create_upload(
    db: Database,
    source: bytes | Path | IO[bytes],
    file_name: str,
    options: IngestOptions,
    principal_id: int | None = None,
    *,
    store: bool = True,
) -> int:
    """Record an upload (it starts ``received``) with its file (bytes, a path or a binary
    stream), stored a chunk at a time, in a transaction of its own. ``store=False``, for a
    local path processed where it lies: :func:`process_upload` stores the file while it
    reads it."""
    with db.begin() as conn:
        return record_upload(conn, source, file_name, options, principal_id, store=store)


def record_upload(
    conn: Connection,
    source: bytes | Path | IO[bytes],
    file_name: str,
    options: IngestOptions,
    principal_id: int | None = None,
    *,
    store: bool = True,
) -> int:
    """As :func:`create_upload`, in the caller's transaction (which may add the upload's
    job before it commits). ``source`` must be local (bytes, a file, a spooled copy of a
    request body): reading a client's network stream here would hold the transaction
    open for as long as the client takes."""
    upload_id: int = conn.execute(
        text(
            "INSERT INTO upload (principal_id, file_name, options) VALUES (:p, :n, :o) RETURNING id"
        ),
        {"p": principal_id, "n": file_name, "o": json.dumps(asdict(options))},
    ).scalar_one()
    if store:
        store_file(conn, upload_id, source)
    return upload_id


def attach_job(conn: Connection, upload_id: int, job_id: int) -> None:
    """Name the job that processes the upload (in the transaction that queued it)."""
    conn.execute(text("UPDATE upload SET job_id = :j WHERE id = :u"), {"j": job_id, "u": upload_id})


def get_upload(conn: Connection, upload_id: int) -> dict[str, Any]:
    row = (
        conn.execute(
            text(
                "SELECT id, file_name, file_size, checksum, village_agency, village_code,"
                " detected_crs, crs_source, status, progress, report, options, job_id, created_at,"
                " updated_at FROM upload WHERE id = :u"
            ),
            {"u": upload_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no upload {upload_id}", code="unknown_upload")
    return dict(row)


def _set(db: Database, upload_id: int, conn: Connection | None = None, **values: Any) -> None:
    """Update the upload row (in ``conn``'s transaction when given, else on its own)."""
    sets = ", ".join(f"{k} = :{k}" for k in values)
    values = {
        k: json.dumps(v, ensure_ascii=False, default=str) if k == "report" else v
        for k, v in values.items()
    }
    statement = text(f"UPDATE upload SET {sets}, updated_at = now() WHERE id = :id")
    if conn is not None:
        conn.execute(statement, {**values, "id": upload_id})
        return
    with db.begin() as own:
        own.execute(statement, {**values, "id": upload_id})


def _zone_placement(
    zone: LayerSource, placement: Placement, crs: int | None
) -> tuple[Placement, dict[str, str | None]] | None:
    """The zone layer's own CRS and villages (the single village, or the zone's village
    field) and its fields; None when its features cannot be tied to villages."""
    fields = resolve_fields(zone.columns, {"parcel_no": zone.columns[0]} if zone.columns else {})
    if placement.single is None and not fields.get("village"):
        return None
    choice = choose_crs(zone.crs, zone.bounds, crs or placement.choice.epsg, None)
    return Placement(choice, placement.agency, placement.single, fields.get("village")), fields


@dataclass
class StreamStart:
    """What is known before the parcels stream: their fields, where they belong, and the
    batches (the first one read already)."""

    fields: dict[str, str | None]
    placement: Placement
    batches: Iterator[pa.RecordBatch]
    first: pa.RecordBatch


class _Unpublishable(Exception):
    """The upload has errors: its direct publish is abandoned (rolled back)."""


def _start(db: Database, layers: Layers, options: IngestOptions) -> StreamStart:
    parcels = layers.parcels
    fields = resolve_fields(parcels.columns, options.mapping)
    batches = parcels.batches()
    first = next(batches, None)
    if first is None:
        raise UploadRejected("the parcel layer has no features", code="no_parcels")
    with db.connect() as conn:
        placement = place(conn, parcels, first, fields, options.village, options.crs)
    return StreamStart(fields, placement, itertools.chain([first], batches), first)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused while an upload streams. The stream allocates
    millions of short-lived containers (a tuple per row here and there) while it holds
    hundreds of thousands of objects (villages' features waiting for their checks): each
    full collection walked them all, ~10% of the stream's CPU. The stream makes no
    cycles worth collecting mid-way; the collector runs again after it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_collector_paused()
def _stream(
    conn: Connection,
    pool: ThreadPoolExecutor,
    db: Database,
    upload_id: int,
    layers: Layers,
    options: IngestOptions,
    start: StreamStart,
    target: Target,
    on_progress: Progress,
) -> tuple[list[str], dict[str, Any], StageStats]:
    """Write the zone (staged) and the parcels (into ``target``), checking them as they
    stream; the villages, the report and what writing saw. Into a target that takes no
    errors (``parcel`` rows) the first batch with an error is not written: it raises
    :class:`_Unpublishable`."""
    parcels, placement, repair = layers.parcels, start.placement, options.repair
    checker = Checker(pool)
    # The zone first: each village's parcels are checked against it as their run ends.
    placed = _zone_placement(layers.zone, placement, options.crs) if layers.zone else None
    if layers.zone is not None and placed is not None:
        zone, zone_fields = placed
        zone_target = StageRows(upload_id, "zone")
        made = prepared_batches(
            pool,
            layers.zone.batches(),
            zone.choice.epsg,
            zone_fields,
            zone.villages_of,
            repair=repair,
            target=zone_target,
        )
        write_batches(conn, zone_target, made, lambda m: checker.add_zone(m.prepared))
    total = max(parcels.count, 1)

    last_written = [0.0]

    def written(m: PreparedBatch) -> None:
        if m.payload is None:
            raise _Unpublishable
        checker.add(m.prepared)
        fraction = 0.15 + 0.5 * min(checker.features / total, 1.0)
        if time.monotonic() - last_written[0] >= PROGRESS_S:  # the row: once a second at most
            last_written[0] = time.monotonic()
            _set(db, upload_id, progress=round(fraction, 3))
        on_progress(fraction, f"written and checked {checker.features} of {parcels.count} features")

    epsg = placement.choice.epsg
    made = prepared_batches(
        pool,
        start.batches,
        epsg,
        start.fields,
        placement.villages_of,
        repair=repair,
        target=target,
    )
    stats = write_batches(conn, target, made, written)
    villages, findings = check_locations(conn, placement, stats)
    checker.findings.extend(findings)
    for group in checker.regather():  # villages whose features came back later
        again = prepared_batches(
            pool,
            parcels.batches(),
            epsg,
            start.fields,
            placement.villages_of,
            repair=repair,
            keep=functools.partial(_among, group),
        )
        checker.check_again(group, (m.prepared for m in again))
    return villages, checker.report(), stats


def _described(
    report: dict[str, Any], layers: Layers, start: StreamStart, villages: list[str]
) -> dict[str, Any]:
    single = villages[0] if len(villages) == 1 else None
    placement = start.placement
    return {
        **report,
        "format": layers.format,
        "encoding": layers.encoding,
        "crs": placement.choice.as_dict(),
        "fields": start.fields,
        "village": {"agency": placement.agency, "code": single} if single else None,
        "villages": len(villages),
        "notes": layers.notes,  # e.g. encoding_mismatch: what was read otherwise than said
    }


def _placed(start: StreamStart, villages: list[str]) -> dict[str, Any]:
    """The upload row's columns that say where the file belongs."""
    return {
        "village_agency": start.placement.agency,
        "village_code": villages[0] if len(villages) == 1 else None,
        "detected_crs": f"EPSG:{start.placement.choice.epsg}",
        "crs_source": start.placement.choice.source,
    }


def _stage(
    db: Database, upload_id: int, layers: Layers, options: IngestOptions, on_progress: Progress
) -> tuple[StreamStart, list[str], dict[str, Any]]:
    """Stage the zone and the parcels in one transaction (a file that turns out unusable
    half-way leaves no staged rows behind), checking them as they stream."""
    start = _start(db, layers, options)
    on_progress(
        0.15, f"staging {layers.parcels.count} features in EPSG:{start.placement.choice.epsg}"
    )
    with db.begin() as conn, ThreadPoolExecutor(max_workers=2) as pool:
        conn.execute(text("DELETE FROM parcel_stage WHERE upload_id = :u"), {"u": upload_id})
        target = StageRows(upload_id, "parcels")
        villages, report, _ = _stream(
            conn, pool, db, upload_id, layers, options, start, target, on_progress
        )
    return start, villages, _described(report, layers, start, villages)


def _load(
    db: Database,
    upload: dict[str, Any],
    layers: Layers,
    options: IngestOptions,
    on_progress: Progress,
    stored: Callable[[], None],
) -> None:
    """Check and publish, the parcels written straight into ``parcel`` rows: nothing is
    staged and copied again. Rows of provinces without a partition go into tables of their
    own, committed unattached and indexed before the publishing transaction attaches them;
    otherwise it is one transaction. An upload with errors raises
    :class:`_Unpublishable`, nothing kept. ``stored`` waits for the file's stored copy (it
    commits with the publish)."""
    upload_id = upload["id"]
    start = _start(db, layers, options)
    agency = start.placement.agency
    on_progress(
        0.15, f"loading {layers.parcels.count} features in EPSG:{start.placement.choice.epsg}"
    )
    # A file in one batch names its villages now: only their provinces are considered.
    whole = layers.parcels.count <= start.first.num_rows
    named = set(start.placement.villages_of(start.first).names) if whole else None
    with (
        db.connect() as conn,
        ThreadPoolExecutor(max_workers=2) as pool,
        IdBlocks(db) as ids,
    ):
        loading = conn.begin()
        loader = None
        try:
            provinces, loader = plan_load(conn, upload_id, agency, named)
            target = ParcelRows(agency, upload_id, provinces, loader.table, ids.take)
            villages, report, stats = _stream(
                conn, pool, db, upload_id, layers, options, start, target, on_progress
            )
            if not report["valid"]:
                raise _Unpublishable
            seen = {
                code: VillageExtent(provinces.get(code, ""), sum(map(len, rows)), stats.boxes[code])
                for code, rows in stats.ids.items()
            }
            indexed = None
            if loader.tables:  # new provinces: their tables indexed on two connections
                # What commits here is scratch (tables not attached: nothing is published
                # yet): no need to wait for its WAL to reach the disk. The publish's own
                # commit waits, for all of it (WAL is flushed in order).
                conn.execute(text("SET LOCAL synchronous_commit = off"))
                loading.commit()
                on_progress(0.75, "indexing the new provinces' parcels")
                indexed = index_loader(db, loader, seen_rows(seen))
                loading = conn.begin()
            on_progress(0.8, "publishing")
            cause = {"upload": upload_id, "file": upload["file_name"]}
            changes = publish_loaded(
                conn,
                upload_id,
                agency,
                cause,
                loader,
                seen,
                stats.ids,
                indexed=indexed,
                confirm_removals=options.confirm_removals,
            )
            report = {**_described(report, layers, start, villages), "published": changes}
            stored()
            _set(
                db,
                upload_id,
                conn=conn,
                status="published",
                progress=1.0,
                report=report,
                **_placed(start, villages),
            )
            loading.commit()
        finally:
            if loading.is_active:
                loading.rollback()
            if loader is None or loader.tables:  # the partitions' lock is the session's
                with conn.begin():
                    if loader is not None:  # what a failure left of it
                        drop_loader(conn, loader)
                    release_partitions(conn)
    on_progress(1.0, f"published: {changes}")


def process_upload(
    db: Database, upload_id: int, progress: Progress | None = None, *, path: Path | None = None
) -> dict[str, Any]:
    """Read, place, check and publish an upload (or only stage and check it: a dry run,
    or an upload with errors, whose report then names them all).

    ``path``: a local copy of the file (the command line has one; when the upload was
    recorded without it, it is stored meanwhile); otherwise the file is fetched from the
    database into a temporary folder.
    """
    on_progress = progress or (lambda _f, _m: None)
    with db.connect() as conn:
        up = get_upload(conn, upload_id)
    options = IngestOptions(**up["options"])
    _set(db, upload_id, status="validating", progress=0.05)
    stored: Callable[[], None] = lambda: None  # noqa: E731
    if up["file_size"] is None:  # recorded without its file: only a local path will do
        if path is None:
            _set(db, upload_id, status="failed", progress=1.0, report={"error": "file_missing"})
            raise UploadRejected(f"upload {upload_id} has no stored file", code="file_missing")
        stored = store_beside(db, upload_id, path)
    try:
        with tempfile.TemporaryDirectory(prefix="tagsim-upload-") as tmp:
            on_progress(0.05, "reading the file")
            local = path or fetch_file(db, upload_id, Path(tmp) / "upload.bin")
            layers = open_upload(local, Path(tmp), up["file_name"])
            if not options.dry_run:
                try:
                    _load(db, up, layers, options, on_progress, stored)
                    return get_upload_state(db, upload_id)
                except _Unpublishable:
                    on_progress(0.15, "errors found: checking the whole file for the report")
            start, villages, report = _stage(db, upload_id, layers, options, on_progress)
        stored()
        status = "validated" if report["valid"] else "invalid"
        _set(
            db,
            upload_id,
            status=status,
            progress=1.0 if options.dry_run or not report["valid"] else 0.7,
            report=report,
            **_placed(start, villages),
        )
        on_progress(
            0.7,
            f"{status}: {report['summary']['errors']} errors, "
            f"{report['summary']['warnings']} warnings",
        )
    except GeoError as exc:
        _drop_stage(db, upload_id)
        _set(
            db,
            upload_id,
            status="failed",
            progress=1.0,
            report={
                "error": exc.code,
                "message": exc.message,
                **{k: v for k, v in exc.details.items() if k != "report"},
            },
        )
        raise
    except Exception as exc:
        _drop_stage(db, upload_id)
        _set(
            db,
            upload_id,
            status="failed",
            progress=1.0,
            report={"error": "internal_error", "message": type(exc).__name__},
        )
        raise
    if report["valid"] and not options.dry_run:
        return publish_upload(db, upload_id, progress=on_progress)
    return get_upload_state(db, upload_id)


def _drop_stage(db: Database, upload_id: int) -> None:
    """A failed upload keeps no staged rows."""
    with db.begin() as conn:
        conn.execute(text("DELETE FROM parcel_stage WHERE upload_id = :u"), {"u": upload_id})


def get_upload_state(db: Database, upload_id: int) -> dict[str, Any]:
    with db.connect() as conn:
        return get_upload(conn, upload_id)


def publish_upload(
    db: Database,
    upload_id: int,
    progress: Progress | None = None,
    *,
    confirm_removals: bool | None = None,
) -> dict[str, Any]:
    """Validate the staged upload again and publish it in one transaction.
    ``confirm_removals``: a village may lose more than 20% of its parcels (default: as the
    upload's options say). A refusal is kept in the report (``publish_refused``)."""
    on_progress = progress or (lambda _f, _m: None)
    with db.connect() as conn:
        up = get_upload(conn, upload_id)
    if confirm_removals is None:
        confirm_removals = bool(up["options"].get("confirm_removals"))
    if up["status"] == "published":
        raise ValidationError(f"upload {upload_id} is already published", code="already_published")
    if up["status"] not in {"validated", "publishing"}:  # publishing: claimed by the API
        raise Conflict(
            f"upload {upload_id} is {up['status']}; only a validated upload can be published",
            code="not_validated",
        )
    _set(db, upload_id, status="publishing", progress=0.8)
    on_progress(0.8, "publishing")
    try:
        with db.begin() as conn:
            provinces = stage_provinces(conn, upload_id, up["village_agency"])
            report = up["report"]
            # The staged rows are the ones validated (nothing changes them before publish),
            # so the report stands; a stage emptied since then is refused.
            staged = conn.execute(
                text(
                    "SELECT count(*) FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels'"
                ),
                {"u": upload_id},
            ).scalar_one()
            if not report.get("summary") or staged != report["summary"]["features"]:
                raise ValidationError(
                    "the staged features are gone; upload the file again", code="stage_missing"
                )
            if not report["valid"]:
                raise ValidationError(
                    "the upload no longer validates",
                    code="invalid_upload",
                    report=report["summary"],
                )
            changes = publish_stage(
                conn,
                upload_id,
                up["village_agency"],
                {"upload": upload_id, "file": up["file_name"]},
                provinces,
                confirm_removals=confirm_removals,
            )
            conn.execute(
                text(
                    "UPDATE upload SET status = 'published', progress = 1, updated_at = now(),"
                    " report = (report - 'publish_refused')"
                    " || jsonb_build_object('published', CAST(:c AS jsonb))"
                    " WHERE id = :u"
                ),
                {"u": upload_id, "c": json.dumps(changes)},
            )
    except GeoError as exc:
        refused = {"code": exc.code, "message": exc.message, **exc.details}
        _set(
            db,
            upload_id,
            status="validated",
            progress=0.7,
            report={**(up["report"] or {}), "publish_refused": refused},
        )
        raise
    except Exception:
        _set(db, upload_id, status="validated", progress=0.7)
        raise
    on_progress(1.0, f"published: {changes}")
    return get_upload_state(db, upload_id)


def _among(group: set[str], _batch: pa.RecordBatch, codes: Codes) -> np.ndarray:
    """Which features of a batch belong to the villages of ``group`` (checked again)."""
    return codes.among(group)
