"""The crosswalk build as a background job (progress in `job_progress`)."""

from __future__ import annotations

import procrastinate

from crosswalk.build import build
from geo.platform.jobs import report_progress, task, worker_database

__all__ = ["crosswalk_build"]


@task("crosswalk_build")
def crosswalk_build(context: procrastinate.JobContext, run_id: int) -> None:
    """Build run ``run_id``, reporting each matched level."""
    db = worker_database()
    job_id = context.job.id
    assert job_id is not None

    def progress(done: int, total: int, message: str) -> None:
        report_progress(db, job_id, done, total, message)

    build(db, run_id, progress)
