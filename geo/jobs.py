"""Long work as jobs: procrastinate's PostgreSQL queue, with progress in `job_progress`.

Tasks are registered with :func:`task` by the modules that own the work; :func:`job_app`
builds the app the web process defers with and the worker runs, with every task
registered by then. Progress is written by the task through :func:`report_progress`, in its
own short transaction so a reader sees it while the job runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC
from functools import lru_cache
from typing import Any

import procrastinate
from sqlalchemy import text

from geo.db import engine, normalize_url
from geo.errors import NotFound

__all__ = [
    "enqueue",
    "job_app",
    "job_state",
    "recover_stalled",
    "report_progress",
    "run_worker",
    "task",
    "worker_database_url",
]

QUEUE = "tagsim"
_TASKS: dict[str, Callable[..., Any]] = {}
_worker_url: str | None = None  # set by run_worker: tasks reach the database through it


def worker_database_url() -> str:
    """The database URL of the worker running the current task (never stored in jobs)."""
    if _worker_url is None:
        raise RuntimeError("worker_database_url() is for tasks run by run_worker()")
    return _worker_url


def _conninfo(url: str) -> str:
    return normalize_url(url).replace("postgresql+psycopg://", "postgresql://")


def task(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a job function as ``tagsim:<name>``; it receives the job context first."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        _TASKS[name] = func
        return func

    return register


def job_app(url: str) -> procrastinate.App:
    """The procrastinate app over the database at ``url``, with every registered task."""
    return _app(url, tuple(sorted(_TASKS)))


@lru_cache(maxsize=16)
def _app(url: str, names: tuple[str, ...]) -> procrastinate.App:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=_conninfo(url)))
    for name in names:
        app.task(name=f"tagsim:{name}", pass_context=True)(_TASKS[name])
    return app


def enqueue(url: str, task: str, *, kind: str | None = None, **kwargs: Any) -> int:
    """Queue ``task`` (a name such as ``tagsim:selftest``) and return its job id."""
    app = job_app(url)
    with app.open():
        job_id = app.configure_task(task, queue=QUEUE).defer(**kwargs)
    with engine(url).begin() as conn:
        conn.execute(
            text("INSERT INTO job_progress (job_id, kind) VALUES (:id, :kind)"),
            {"id": job_id, "kind": kind or task},
        )
    return job_id


def report_progress(
    url: str, job_id: int, done: int, total: int | None = None, message: str | None = None
) -> None:
    """Record how far job ``job_id`` has come (committed at once)."""
    with engine(url).begin() as conn:
        conn.execute(
            text(
                "UPDATE job_progress SET done = :done, total = coalesce(:total, total),"
                " message = coalesce(:message, message), updated_at = now()"
                " WHERE job_id = :id"
            ),
            {"id": job_id, "done": done, "total": total, "message": message},
        )


def job_state(url: str, job_id: int) -> dict[str, Any]:
    """Status (todo, doing, succeeded, failed, …) and progress of one job."""
    with engine(url).connect() as conn:
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


def recover_stalled(url: str, seconds: float = 60) -> int:
    """Queue again the jobs whose worker stopped beating ``seconds`` ago (killed mid-job).

    Every tagsim job may run twice: an ingest restarts from its stored bytes, a build from
    its run row; what a killed job left half-done was never committed.
    """
    import asyncio
    from datetime import datetime

    async def recover() -> int:
        app = job_app(url)
        async with app.open_async():
            stalled = list(
                await app.job_manager.get_stalled_jobs(queue=QUEUE, seconds_since_heartbeat=seconds)
            )
            for job in stalled:
                await app.job_manager.retry_job_by_id_async(job.id, retry_at=datetime.now(UTC))  # type: ignore[arg-type]
        return len(stalled)

    return asyncio.run(recover())


def run_worker(url: str, *, wait: bool = True, concurrency: int = 1) -> None:
    """Run jobs until stopped (``wait=False``: until the queue is empty), after queueing
    again the jobs a killed worker left behind."""
    global _worker_url
    _worker_url = url
    recover_stalled(url)
    job_app(url).run_worker(
        queues=[QUEUE], wait=wait, concurrency=concurrency, install_signal_handlers=wait
    )


@task("selftest")
def selftest(context: procrastinate.JobContext, steps: int = 3, fail_at: int | None = None) -> None:
    """A job that only reports progress (and fails at step ``fail_at`` if given)."""
    url = worker_database_url()
    job_id = context.job.id
    assert job_id is not None
    for step in range(1, steps + 1):
        if step == fail_at:
            raise RuntimeError(f"selftest failed at step {step}, as asked")
        time.sleep(0.01)
        report_progress(url, job_id, step, steps, f"step {step} of {steps}")
