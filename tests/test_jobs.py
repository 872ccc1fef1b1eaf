"""The job queue end to end: defer, a worker runs it, progress and state in PostgreSQL."""

from __future__ import annotations

import pytest

from geo.errors import NotFound
from geo.platform import jobs
from geo.platform.database import Database


def _enqueue(url: str, task: str, **kwargs: object) -> int:
    with Database(url).begin() as conn:
        return jobs.enqueue(conn, task, **kwargs)  # type: ignore[arg-type]


def test_a_job_runs_and_reports_progress(db_url: str) -> None:
    job_id = _enqueue(db_url, "tagsim:selftest", kind="selftest", steps=5)
    before = jobs.job_state(Database(db_url), job_id)
    assert before["status"] == "todo" and before["done"] == 0 and before["kind"] == "selftest"
    jobs.run_worker(Database(db_url), wait=False)
    after = jobs.job_state(Database(db_url), job_id)
    assert after["status"] == "succeeded"
    assert (after["done"], after["total"], after["fraction"]) == (5, 5, 1.0)
    assert after["message"] == "step 5 of 5"


def test_a_failing_job_keeps_its_progress_and_is_failed(db_url: str) -> None:
    failing = _enqueue(db_url, "tagsim:selftest", steps=4, fail_at=3)
    missing = _enqueue(db_url, "tagsim:no_such_task")
    jobs.run_worker(Database(db_url), wait=False)
    state = jobs.job_state(Database(db_url), failing)
    assert state["status"] == "failed" and state["done"] == 2 and state["total"] == 4
    assert jobs.job_state(Database(db_url), missing)["status"] == "failed"


def test_unknown_job_is_not_found(db_url: str) -> None:
    with pytest.raises(NotFound):
        jobs.job_state(Database(db_url), 987654321)


def test_a_job_queued_in_a_rolled_back_transaction_never_exists(db_url: str) -> None:
    with Database(db_url).connect() as conn:
        job_id = jobs.enqueue(conn, "tagsim:selftest", kind="selftest", steps=1)
        conn.rollback()
    with pytest.raises(NotFound):
        jobs.job_state(Database(db_url), job_id)


def test_a_running_worker_takes_up_the_job_of_a_killed_one(fresh_url: str) -> None:
    """Issue 22, finding 8: no second restart needed. Worker A runs a job and is SIGKILLed;
    worker B, started while A held the job, queues it again once A's heartbeat is
    ``TAGSIM_STALLED_AFTER_S`` old, and finishes it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "TAGSIM_DATABASE_URL": fresh_url, "TAGSIM_STALLED_AFTER_S": "6"}

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "api.cli", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    job_id = _enqueue(fresh_url, "tagsim:selftest", kind="selftest", steps=600)  # ~6 s
    first = start()
    second: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + 60
        while jobs.job_state(Database(fresh_url), job_id)["done"] < 50:
            assert time.monotonic() < deadline, "worker A never ran the job"
            time.sleep(0.05)
        second = start()  # B is running, idle: A holds the only job
        time.sleep(1.0)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        killed = time.monotonic()
        while jobs.job_state(Database(fresh_url), job_id)["status"] != "succeeded":
            assert time.monotonic() - killed < 60, jobs.job_state(Database(fresh_url), job_id)
            time.sleep(0.2)
        finished_s = time.monotonic() - killed
    finally:
        for worker in (first, second):
            if worker is not None and worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
    assert finished_s < 6 + 2 + 6 + 10  # stalled after, a beat, the rerun, and slack
