"""Big tables matched (`match_table`) or converted (`conversion`) as background jobs.

A table of more than ``AT_ONCE_ROWS`` rows (or any, when the client prefers) is stored with
its options and its job in one transaction (`submit`): the job exists when and only when
the table does. The worker matches or converts it, reporting progress every thousand rows,
and stores the answer file — or the error, with its stable code, when the table itself is
at fault (an unknown column, an unknown agency): such a job has nothing to retry.

A table job is seen only by the agency whose key sent it (and by admins): any other caller
is told there is no such job. Jobs are kept ``TABLE_JOB_DAYS`` days.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import procrastinate
from sqlalchemy import Connection, text

from geo.errors import InvalidParameter, NotFound, ValidationError
from geo.geodata.registry.conversion import ConversionSpec, convert
from geo.geodata.registry.formats import XLSX_MEDIA, read_table, write_csv, write_xlsx
from geo.geodata.registry.match_table import match_table
from geo.platform.database import Database
from geo.platform.jobs import enqueue, job_state, report_progress, task, worker_database

__all__ = [
    "AT_ONCE_ROWS",
    "TABLE_JOB_DAYS",
    "Sender",
    "convert_file",
    "run_table_job",
    "spec_options",
    "submit",
    "table_job_answer",
    "table_job_state",
]

AT_ONCE_ROWS = 20_000  # larger tables are answered by a job (about 1.5 s of matching)
TABLE_JOB_DAYS = 7
_CSV = "text/csv; charset=utf-8"


@dataclass(frozen=True)
class Sender:
    """Who sends or reads a table job: the key's principal and agency (``None``: no key,
    who sees no job) and whether it is an admin's (who sees every job)."""

    principal_id: int | None
    agency: str | None
    admin: bool = False


def submit(
    conn: Connection,
    kind: str,
    sender: Sender,
    file_name: str,
    content: bytes,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Store the table and queue its job in the caller's transaction; the jobs older than
    ``TABLE_JOB_DAYS`` go."""
    conn.execute(
        text("DELETE FROM table_job WHERE created_at < now() - make_interval(days => :d)"),
        {"d": TABLE_JOB_DAYS},
    )
    table_job_id = conn.execute(
        text(
            "INSERT INTO table_job (kind, principal_id, agency, file_name, options, content)"
            " VALUES (:k, :p, :a, :f, CAST(:o AS jsonb), :c) RETURNING id"
        ),
        {
            "k": kind,
            "p": sender.principal_id,
            "a": sender.agency,
            "f": file_name,
            "o": _json_text(options),
            "c": content,
        },
    ).scalar_one()
    job_id = enqueue(conn, "tagsim:table_job", kind=f"table_{kind}", table_job_id=table_job_id)
    conn.execute(
        text("UPDATE table_job SET job_id = :j WHERE id = :i"), {"j": job_id, "i": table_job_id}
    )
    return {"id": table_job_id, "job_id": job_id}


def convert_file(
    conn: Connection,
    content: bytes,
    spec: ConversionSpec,
    fmt: str,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[bytes, str, dict[str, Any]]:
    """A table file converted (`conversion.convert`) as a file: CSV (the converted rows),
    XLSX (a second sheet of the rows not converted); with the summary."""
    done = convert(conn, read_table(content), spec, progress=progress)
    if fmt == "xlsx":
        body = write_xlsx({"converted": done.table(), "not converted": done.refused_table()})
        return body, XLSX_MEDIA, done.summary
    return write_csv(done.table()), _CSV, done.summary


def run_table_job(db: Database, table_job_id: int, job_id: int) -> None:
    """Match or convert the stored table, storing the answer or the table's error."""
    with db.connect() as conn:
        row = conn.execute(
            text("SELECT kind, options, content FROM table_job WHERE id = :i"),
            {"i": table_job_id},
        ).one()

        def progress(done: int, total: int) -> None:
            report_progress(db, job_id, done, total, f"{done:,} of {total:,} rows")

        try:
            if row.kind == "match":
                o = row.options
                matched = match_table(
                    conn,
                    row.content,
                    o["agency"],
                    o["columns"],
                    as_of=_date(o.get("as_of")),
                    progress=progress,
                    fmt=o.get("format"),
                )
                found = (matched.body, matched.media_type, matched.extension, matched.summary)
            else:
                spec = _spec(row.options)
                fmt = row.options["format"]
                body, media, summary = convert_file(conn, row.content, spec, fmt, progress)
                found = (body, media, fmt, summary)
        except (ValidationError, InvalidParameter, NotFound) as exc:  # the table's fault
            error = {"code": exc.code, "detail": exc.message, **exc.details}
            _finish(db, table_job_id, error=error)
            return
    body, media, extension, summary = found
    _finish(db, table_job_id, answer=(body, media, extension), summary=summary)


def _finish(
    db: Database,
    table_job_id: int,
    *,
    answer: tuple[bytes, str, str] | None = None,
    summary: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    body, media, extension = answer or (None, None, None)
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE table_job SET answer = :b, media_type = :m, file_extension = :x,"
                " summary = CAST(:s AS jsonb), error = CAST(:e AS jsonb), finished_at = now()"
                " WHERE id = :i"
            ),
            {
                "i": table_job_id,
                "b": body,
                "m": media,
                "x": extension,
                "s": _json_text(summary or {}),
                "e": None if error is None else _json_text(error),
            },
        )


def _visible(conn: Connection, table_job_id: int, reader: Sender) -> Any:
    row = conn.execute(
        text(
            "SELECT id, kind, agency, file_name, job_id, summary, error, created_at,"
            " finished_at, answer IS NOT NULL AS answered, media_type, file_extension"
            " FROM table_job WHERE id = :i"
        ),
        {"i": table_job_id},
    ).first()
    if row is None or reader.agency is None or (not reader.admin and reader.agency != row.agency):
        raise NotFound(f"no table job {table_job_id}", code="unknown_table_job")
    return row


def table_job_state(
    conn: Connection, db: Database, table_job_id: int, reader: Sender
) -> dict[str, Any]:
    """What became of a table job: ``queued``, ``running`` (with rows done of total),
    ``done`` (with its summary) or ``failed`` (with the error)."""
    row = _visible(conn, table_job_id, reader)
    job = job_state(db, row.job_id) if row.job_id is not None else {}
    if row.answered:
        status = "done"
    elif row.error is not None or job.get("status") == "failed":
        status = "failed"
    elif job.get("status") == "doing":
        status = "running"
    else:
        status = "queued"
    return {
        "id": row.id,
        "kind": row.kind,
        "file_name": row.file_name,
        "status": status,
        "done": job.get("done"),
        "total": job.get("total"),
        "fraction": job.get("fraction"),
        "summary": row.summary if row.answered else None,
        "error": row.error
        or ({"code": "job_failed", "detail": "the job failed"} if status == "failed" else None),
        "created_at": row.created_at,
        "finished_at": row.finished_at,
    }


def table_job_answer(conn: Connection, table_job_id: int, reader: Sender) -> tuple[bytes, str, str]:
    """The answer file of a finished table job: (bytes, media type, file name)."""
    row = _visible(conn, table_job_id, reader)
    if not row.answered:
        raise NotFound(f"table job {table_job_id} has no answer (yet)", code="table_job_not_done")
    body = conn.execute(
        text("SELECT answer FROM table_job WHERE id = :i"), {"i": table_job_id}
    ).scalar_one()
    stem = row.file_name.rsplit(".", 1)[0] or "table"
    suffix = "matched" if row.kind == "match" else "converted"
    return bytes(body), row.media_type, f"{stem}.{suffix}.{row.file_extension}"


def spec_options(spec: ConversionSpec, fmt: str) -> dict[str, Any]:
    """A conversion's options as stored with its job."""
    return {
        "agency": spec.agency,
        "code": spec.code,
        "counts": list(spec.counts),
        "categories": list(spec.categories),
        "at": spec.at,
        "to_agency": spec.to_agency,
        "to_date": spec.to_date,
        "equal_shares": spec.equal_shares,
        "format": fmt,
    }


def _spec(o: dict[str, Any]) -> ConversionSpec:
    return ConversionSpec(
        agency=o["agency"],
        code=o["code"],
        counts=tuple(o["counts"]),
        categories=tuple(o["categories"]),
        at=_date(o.get("at")),
        to_agency=o.get("to_agency"),
        to_date=_date(o.get("to_date")),
        equal_shares=bool(o.get("equal_shares")),
    )


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _json_text(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


@task("table_job")
def table_job(context: procrastinate.JobContext, table_job_id: int) -> None:
    """Match or convert a stored table (`run_table_job`)."""
    job_id = context.job.id
    assert job_id is not None
    run_table_job(worker_database(), table_job_id, job_id)
