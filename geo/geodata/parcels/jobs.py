"""Parcel uploads as background jobs.

An upload's progress is stored once, on its row (``upload.status``, ``upload.progress``,
written by the ingest itself); the job's own progress row only names its kind.
"""

from __future__ import annotations

import procrastinate

from geo.geodata.parcels.ingest import process_upload, publish_upload
from geo.platform.jobs import task, worker_database

__all__ = ["parcel_ingest", "parcel_publish"]


@task("parcel_ingest")
def parcel_ingest(context: procrastinate.JobContext, upload_id: int) -> None:
    """Read, validate (and publish, unless a dry run) upload ``upload_id``."""
    process_upload(worker_database(), upload_id)


@task("parcel_publish")
def parcel_publish(context: procrastinate.JobContext, upload_id: int) -> None:
    """Publish a validated dry run."""
    publish_upload(worker_database(), upload_id)
