"""Long work as jobs: procrastinate's PostgreSQL queue, with progress in `job_progress`.

Tasks are registered with :func:`task` by the modules that own the work; :func:`job_app`
builds the app the web process defers with and the worker runs, with every task
registered by then. Progress is written by the task through :func:`report_progress`, in its
own short transaction so a reader sees it while the job runs.

A worker beats every ``HEARTBEAT_S`` seconds; every running worker looks for jobs whose
worker stopped beating ``stalled_after()`` seconds ago (killed: SIGKILL, a lost machine)
every ``HEARTBEAT_S`` and queues them again (:func:`recovery_loop`), so a killed publish is
taken up by any worker still running, within about ``stalled_after() + HEARTBEAT_S``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC
from functools import lru_cache
from typing import Any

import procrastinate
from sqlalchemy import Connection, text

from geo.errors import NotFound
from geo.platform.database import Database, normalize_url

__all__ = [
    "enqueue",
    "job_app",
    "job_state",
    "periodic",
    "recover_stalled",
    "recovery_loop",
    "report_progress",
    "run_worker",
    "task",
    "worker_database",
]

QUEUE = "tagsim"
HEARTBEAT_S = 5.0
STALLED_AFTER_S = 25.0  # five missed beats (TAGSIM_STALLED_AFTER_S)
_TASKS: dict[str, Callable[..., Any]] = {}
_SCHEDULES: dict[str, str] = {}  # task name → cron (UTC), for tasks a worker runs by itself
_worker_db: Database | None = None  # set by run_worker: tasks reach the database through it


def worker_database() -> Database:
    """The database of the worker running the current task (never stored in jobs)."""
    if _worker_db is None:
        raise RuntimeError("worker_database() is for tasks run by run_worker()")
    return _worker_db


def _conninfo(url: str) -> str:
    return normalize_url(url).replace("postgresql+psycopg://", "postgresql://")


def task(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a job function as ``tagsim:<name>``; it receives the job context first."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        _TASKS[name] = func
        return func

    return register


def periodic(name: str, cron: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a job function that the workers run by themselves on ``cron`` (UTC; one
    run per tick however many workers there are); it receives the context and the tick's
    ``timestamp``."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        _SCHEDULES[name] = cron
        return task(name)(func)

    return register


def job_app(db: Database) -> procrastinate.App:
    """The procrastinate app over ``db``, with every registered task."""
    return _app(db.url, tuple(sorted(_TASKS)))


@lru_cache(maxsize=16)
def _app(url: str, names: tuple[str, ...]) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=_conninfo(url)))
    for name in names:
        registered = app.task(name=f"tagsim:{name}", pass_context=True, queue=QUEUE)(_TASKS[name])
        if name in _SCHEDULES:
            app.periodic(cron=_SCHEDULES[name], periodic_id=name)(registered)
    return app


def enqueue(conn: Connection, task: str, *, kind: str | None = None, **kwargs: Any) -> int:
    """Queue ``task`` (a name such as ``tagsim:selftest``) in the caller's transaction and
    return its job id: the job exists, with its progress row, when and only when the
    transaction commits, together with whatever the caller wrote beside it."""
    app = _app(conn.engine.url.render_as_string(hide_password=False), tuple(sorted(_TASKS)))
    raw = conn.connection.dbapi_connection  # procrastinate defers on our connection
    job_id: int = app.configure_task(task, queue=QUEUE, connection=raw).defer(**kwargs)
    conn.execute(
        text("INSERT INTO job_progress (job_id, kind) VALUES (:id, :kind)"),
        {"id": job_id, "kind": kind or task},
    )
    return job_id


def report_progress(
    db: Database, job_id: int, done: int, total: int | None = None, message: str | None = None
) -> None:
    """Record how far job ``job_id`` has come (committed at once)."""
    with db.begin() as conn:
        conn.execute(
            text(
                "UPDATE job_progress SET done = :done, total = coalesce(:total, total),"
                " message = coalesce(:message, message), updated_at = now()"
                " WHERE job_id = :id"
            ),
            {"id": job_id, "done": done, "total": total, "message": message},
        )


def job_state(db: Database, job_id: int) -> dict[str, Any]:
    """Status (todo, doing, succeeded, failed, …) and progress of one job."""
    with db.connect() as conn:
        row = (
            conn.execute(
                text(
                    "SELECT j.id, j.task_name, j.status::text AS status, j.attempts,"
                    " p.kind, p.done, p.total, p.message, p.result, p.updated_at"
                    " FROM procrastinate_jobs j LEFT JOIN job_progress p ON p.job_id = j.id"
                    " WHERE j.id = :id"
                ),
                {"id": job_id},
            )
            .mappings()
            .one_or_none()
        )
    if row is None:
        raise NotFound(f"no job {job_id}", job_id=job_id)
    state = dict(row)
    total = state.get("total")
    state["fraction"] = (state["done"] / total) if total else None
    return state


def recover_stalled(db: Database, seconds: float = 60) -> int:
    """Queue again the jobs whose worker stopped beating ``seconds`` ago (killed mid-job).

    Every tagsim job may run twice: an ingest restarts from its stored bytes, a build from
    its run row; what a killed job left half-done was never committed.
    """
    import asyncio
    from datetime import datetime

    async def recover() -> int:
        # An app of its own: the worker's (job_app, cached) is open on another thread's
        # event loop while this runs beside it (recovery_loop).
        app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=_conninfo(db.url))
        )
        async with app.open_async():
            stalled = list(
                await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=seconds)
            )
            for job in stalled:
                await app.job_manager.retry_job_by_id_async(job.id, retry_at=datetime.now(UTC))  # type: ignore[arg-type]
        return len(stalled)

    return asyncio.run(recover())


def run_worker(db: Database, *, wait: bool = True, concurrency: int = 1) -> None:
    """Run jobs until stopped (``wait=False``: until the queue is empty), after queueing
    again the jobs a killed worker left behind."""
    global _worker_db
    _worker_db = db
    recover_stalled(db, stalled_after())
    job_app(db).run_worker(
        queues=[QUEUE],
        wait=wait,
        concurrency=concurrency,
        install_signal_handlers=wait,
        update_heartbeat_interval=heartbeat_s(),
        stalled_worker_timeout=stalled_after(),
    )


def heartbeat_s() -> float:
    return min(HEARTBEAT_S, stalled_after() / 3)


def stalled_after() -> float:
    """Seconds without a heartbeat after which a worker's jobs are taken up by another."""
    raw = os.environ.get("TAGSIM_STALLED_AFTER_S")
    try:
        return max(3.0, float(raw)) if raw else STALLED_AFTER_S
    except ValueError:
        return STALLED_AFTER_S


def recovery_loop(db: Database, stop: threading.Event) -> None:
    """Queue again, every heartbeat, the jobs of workers that died (the worker command
    runs this in a thread beside its jobs)."""
    while not stop.wait(heartbeat_s()):
        try:
            found = recover_stalled(db, stalled_after())
            if found:
                logging.getLogger(__name__).warning("took up %d stalled job(s)", found)
        except Exception:  # a bad moment of the database must not end the loop
            logging.getLogger(__name__).exception("looking for stalled jobs failed")


@task("selftest")
def selftest(context: procrastinate.JobContext, steps: int = 3, fail_at: int | None = None) -> None:
    """A job that only reports progress (and fails at step ``fail_at`` if given)."""
    db = worker_database()
    job_id = context.job.id
    assert job_id is not None
    for step in range(1, steps + 1):
        if step == fail_at:
            raise RuntimeError(f"selftest failed at step {step}, as asked")
        time.sleep(0.01)
        report_progress(db, job_id, step, steps, f"step {step} of {steps}")
