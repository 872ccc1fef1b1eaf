"""Audit rows on their way into the ``audit`` table: a local journal, moved in batches.

Every request to a protected service leaves one audit row ("every access is auditable").
Inserting it inside the request cost a statement and a commit per request — a third of
what the service adds on top of PostgreSQL for a coverage query. Instead the row is appended
to this process's journal, one JSON line handed to the operating system at once (a process
that is killed loses nothing: the line is in the file), and a background thread moves the
journal into ``audit`` every ``interval`` seconds in one statement (a synchronous commit:
a moved batch is on disk).

Files, in one folder shared by the service's worker processes:

- ``journal-<pid>.jsonl``: the lines of process ``pid`` not yet moved;
- ``batch-<pid>-<n>.jsonl``: a journal closed for moving;
- ``moving-<pid>-<name>``: a batch claimed (by an atomic rename) by process ``pid``.

A flush closes the own journal into a batch, then moves every batch it can claim: its own,
and those (and the journals) of processes that no longer run — the rows of a killed worker
reach the table through its successors. While the primary cannot be reached, batches stay
(synced to disk) and are tried again at each tick; reads served by a replica keep working
meanwhile. A batch is deleted only after its rows are committed; a crash between the two
moves it again (at least once, never lost).
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import Connection, text

from geo.platform.config import AUDIT_FLUSH_S

__all__ = ["AuditJournal", "journal_for"]

log = logging.getLogger(__name__)


# A journal line names the audit's columns; lines an older version wrote (one-letter keys:
# p, a, s, e, m, r, st, d) are still read, so no row of an upgrade's journal is lost.
_INSERT = text(
    "INSERT INTO audit (at, principal_id, agency, service, endpoint, method, params,"
    " row_count, status, duration_ms)"
    " SELECT CAST(r->>'at' AS timestamptz),"
    " CAST(coalesce(r->>'principal_id', r->>'p') AS int),"
    " coalesce(r->>'agency', r->>'a'), coalesce(r->>'service', r->>'s'),"
    " coalesce(r->>'endpoint', r->>'e'), coalesce(r->>'method', r->>'m'), r->'params',"
    " CAST(coalesce(r->>'row_count', r->>'r') AS int),"
    " CAST(coalesce(r->>'status', r->>'st') AS int),"
    " CAST(coalesce(r->>'duration_ms', r->>'d') AS float8)"
    " FROM jsonb_array_elements(CAST(:rows AS jsonb)) r"
)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pid_of(name: str) -> int | None:
    """The process a journal, batch or claimed batch belongs to (its first number)."""
    for part in name.split(".")[0].split("-")[1:]:
        if part.isdigit():
            return int(part)
    return None


class AuditJournal:
    """One per process and folder; ``connect`` opens an autocommit connection to the primary
    (raising when it cannot)."""

    def __init__(
        self, folder: Path, connect: Callable[[], Connection], interval: float = AUDIT_FLUSH_S
    ) -> None:
        self.folder = folder
        self.connect = connect
        self.interval = interval
        self._lock = threading.Lock()
        self._move_lock = threading.Lock()
        self._file: IO[str] | None = None
        self._pid = 0
        self._batches = 0
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- the request side ----------------------------------------------------------------
    def append(self, entry: dict[str, Any]) -> None:
        """Keep one audit row (a `geo.access.control.audit_entry`), stamped with the time now."""
        line = orjson.dumps(  # (UTF-8, not escaped: Persian stays as typed)
            {**entry, "at": entry.get("at") or datetime.now(UTC).isoformat()}
        ).decode()
        with self._lock:
            self._ensure_open()
            assert self._file is not None
            self._file.write(line + "\n")
            self._file.flush()  # in the OS's hands: survives this process being killed
        if self.interval <= 0 or self._closed:
            self.flush()

    def _ensure_open(self) -> None:
        pid = os.getpid()
        if self._file is not None and self._pid == pid:
            return
        # first use, or a forked child: its own journal and its own mover thread
        self._pid, self._file, self._thread, self._batches = pid, None, None, 0
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = (self.folder / f"journal-{pid}.jsonl").open("a", encoding="utf-8")
        if self.interval > 0 and not self._closed:
            self._thread = threading.Thread(target=self._run, name="audit-journal", daemon=True)
            self._thread.start()
        atexit.register(self.close)

    # -- the mover -----------------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the mover must outlive any one failure
                log.exception("audit journal: flush failed")

    def _close_journal(self) -> None:
        """The own journal, when it has lines, becomes a batch; a new journal starts."""
        with self._lock:
            if self._file is None or self._pid != os.getpid() or self._file.tell() == 0:
                return
            self._file.close()
            self._batches += 1
            current = self.folder / f"journal-{self._pid}.jsonl"
            current.rename(self.folder / f"batch-{self._pid}-{self._batches}.jsonl")
            self._file = current.open("a", encoding="utf-8")

    def _claimable(self) -> list[Path]:
        found = []
        for path in sorted(self.folder.glob("*.jsonl")):
            pid = _pid_of(path.name)
            if path.name.startswith("batch-") and (pid == os.getpid() or not _alive(pid or 0)):
                found.append(path)
            elif path.name.startswith(("journal-", "moving-")) and pid and not _alive(pid):
                found.append(path)  # a killed process's journal or claim
            elif path.name.startswith(f"moving-{os.getpid()}-"):
                found.append(path)  # our own claim that failed to move before
        return found

    def flush(self) -> int:
        """Move every row this process can claim into ``audit`` now; the number moved.
        Rows stay in their files when the primary cannot take them."""
        with self._move_lock:
            if not self.folder.exists():
                return 0
            self._close_journal()
            moved = 0
            for path in self._claimable():
                claimed = path
                if not path.name.startswith(f"moving-{os.getpid()}-"):
                    claimed = path.with_name(f"moving-{os.getpid()}-{path.name}")
                    try:
                        path.rename(claimed)
                    except FileNotFoundError:
                        continue  # another process claimed it first
                moved += self._move(claimed)
            return moved

    def _move(self, path: Path) -> int:
        rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not rows:
            path.unlink()
            return 0
        try:
            with self.connect() as conn:
                conn.execute(_INSERT, {"rows": "[" + ",".join(rows) + "]"})
        except Exception as exc:  # any failure: keep the rows for later
            with path.open("a") as f:
                os.fsync(f.fileno())  # waiting for the primary: keep them through a crash
            log.warning("audit journal: %d rows wait for the primary (%s)", len(rows), exc)
            return 0
        path.unlink()
        return len(rows)

    def pending(self) -> int:
        """Rows in this folder not yet moved (all processes)."""
        if not self.folder.exists():
            return 0
        return sum(
            sum(1 for line in p.read_text(encoding="utf-8").splitlines() if line.strip())
            for p in self.folder.glob("*.jsonl")
        )

    def close(self) -> None:
        """Stop the mover and move what is left (at exit)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        try:
            self.flush()
        except Exception:
            log.exception("audit journal: the last flush failed; the rows stay in the journal")
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
                own = self.folder / f"journal-{self._pid}.jsonl"
                try:
                    if own.stat().st_size == 0:  # nothing left: leave no trace
                        own.unlink()
                        self.folder.rmdir()  # only when no other process's file is there
                except OSError:
                    pass


_journals: dict[Path, AuditJournal] = {}
_journals_lock = threading.Lock()


def journal_for(
    folder: Path, connect: Callable[[], Connection], interval: float = AUDIT_FLUSH_S
) -> AuditJournal:
    """The process's one journal for ``folder`` (two apps of one process on the same
    database share it: one writer per journal file)."""
    key = folder.resolve()
    with _journals_lock:
        found = _journals.get(key)
        if found is None:
            found = _journals[key] = AuditJournal(key, connect, interval)
        return found
