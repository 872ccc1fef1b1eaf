"""Parcel uploads as background jobs (progress on the upload row and in `job_progress`)."""

from __future__ import annotations

import procrastinate

from geo.jobs import report_progress, task, worker_database_url
from geo.parcels.ingest import process_upload, publish_upload

__all__ = ["parcel_ingest", "parcel_publish"]


def _reporter(url: str, job_id: int):  # type: ignore[no-untyped-def]
    def progress(fraction: float, message: str) -> None:
        report_progress(url, job_id, int(fraction * 100), 100, message)

    return progress


@task("parcel_ingest")
def parcel_ingest(context: procrastinate.JobContext, upload_id: int) -> None:
    """Read, validate (and publish, unless a dry run) upload ``upload_id``."""
    url = worker_database_url()
    process_upload(url, upload_id, _reporter(url, context.job.id))  # type: ignore[arg-type]


@task("parcel_publish")
def parcel_publish(context: procrastinate.JobContext, upload_id: int) -> None:
    """Publish a validated dry run."""
    url = worker_database_url()
    publish_upload(url, upload_id, _reporter(url, context.job.id))  # type: ignore[arg-type]
