"""The audit journal: rows reach the audit table in batches, survive a killed process and a
primary that cannot be reached, and are moved once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from geo.access.control import audit_entry
from geo.access.journal import AuditJournal
from geo.platform.database import Database


def _entry(endpoint: str) -> dict[str, object]:
    return audit_entry(None, "journal-test", endpoint, "GET", {"q": "۱۲"}, 3, 200, 1.5)


def _count(url: str, endpoint: str) -> int:
    with Database(url).connect() as c:
        return c.execute(
            text("SELECT count(*) FROM audit WHERE endpoint = :e"), {"e": endpoint}
        ).scalar_one()


def _connect(url: str):  # type: ignore[no-untyped-def]
    return lambda: Database(url).autocommit()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / "audit"


def test_rows_reach_the_table_within_a_tick(module_db_url: str, folder: Path) -> None:
    journal = AuditJournal(folder, _connect(module_db_url), interval=0.1)
    for _ in range(5):
        journal.append(_entry("tick"))
    deadline = time.monotonic() + 10
    while _count(module_db_url, "tick") < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _count(module_db_url, "tick") == 5
    assert journal.pending() == 0
    with Database(module_db_url).connect() as c:
        row = c.execute(
            text("SELECT params->>'q', row_count, status, at FROM audit WHERE endpoint = 'tick'")
        ).first()
    assert row is not None and row[0] == "۱۲" and row[1] == 3 and row[2] == 200
    journal.close()


def test_a_killed_process_loses_nothing(module_db_url: str, folder: Path) -> None:
    """A worker killed before its mover ran: its journal is moved by the next process."""
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from geo.access.control import audit_entry\n"
        "from geo.access.journal import AuditJournal\n"
        "j = AuditJournal(Path(sys.argv[1]), lambda: None, interval=3600)\n"
        "for _ in range(4):\n"
        "    j.append(audit_entry(None, 's', 'killed', 'GET', {}, 1, 200, 1.0))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(folder)], cwd=Path.cwd())
    assert done.returncode == -9
    assert len(list(folder.glob("journal-*.jsonl"))) == 1
    journal = AuditJournal(folder, _connect(module_db_url), interval=0)
    assert journal.flush() == 4
    assert _count(module_db_url, "killed") == 4
    assert list(folder.glob("*.jsonl")) == []
    assert journal.flush() == 0  # moved once
    assert _count(module_db_url, "killed") == 4
    journal.close()


def test_rows_wait_while_the_primary_is_away(module_db_url: str, folder: Path) -> None:
    down = True

    def connect() -> Connection:
        if down:
            raise OSError("primary down")
        return Database(module_db_url).autocommit()

    journal = AuditJournal(folder, connect, interval=0)
    for _ in range(3):
        journal.append(_entry("outage"))  # each append tries to move, and fails
    assert journal.pending() == 3 and _count(module_db_url, "outage") == 0
    down = False
    assert journal.flush() == 3
    assert journal.pending() == 0 and _count(module_db_url, "outage") == 3
    journal.close()
    assert not folder.exists()  # a journal closed with nothing left leaves no trace


def test_a_live_process_keeps_its_own_journal(module_db_url: str, folder: Path) -> None:
    """Another process's open journal is never taken while that process runs."""
    folder.mkdir(parents=True)
    (folder / f"journal-{os.getppid()}.jsonl").write_text(
        '{"s": "x", "e": "other", "m": "GET", "params": {}, "st": 200, "d": 1,'
        ' "at": "2026-01-01T00:00:00+00:00"}\n'
    )
    journal = AuditJournal(folder, _connect(module_db_url), interval=0)
    assert journal.flush() == 0
    assert _count(module_db_url, "other") == 0
    assert journal.pending() == 1
    journal.close()


def test_rows_keep_every_field_in_the_new_keys_and_the_old(
    module_db_url: str, folder: Path
) -> None:
    """A line names the audit's columns; a line an older version left (one-letter keys) in a
    dead process's journal is still moved whole."""
    folder.mkdir(parents=True)
    (folder / "journal-999999999.jsonl").write_text(  # no such process: its file is taken
        '{"p": null, "a": "sci", "s": "divisions", "e": "old-keys", "m": "GET",'
        ' "params": {}, "r": 4, "st": 404, "d": 2.5, "at": "2026-01-01T00:00:00+00:00"}\n'
    )
    journal = AuditJournal(folder, _connect(module_db_url), interval=0)
    journal.append(audit_entry(None, "coverage", "new-keys", "POST", {}, 7, 201, 3.5))
    journal.flush()
    journal.close()
    with Database(module_db_url).connect() as c:
        rows = c.execute(
            text(
                "SELECT endpoint, agency, service, method, row_count, status, duration_ms"
                " FROM audit WHERE endpoint IN ('old-keys', 'new-keys') ORDER BY endpoint"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("new-keys", None, "coverage", "POST", 7, 201, 3.5),
        ("old-keys", "sci", "divisions", "GET", 4, 404, 2.5),
    ]
