"""Audit rows that could not reach the primary, kept on local disk until it is back.

Reads go on from a replica while the primary is down; their audit rows cannot be written
there (a replica is read-only), and "every access is auditable" forbids dropping them. They
are appended, one JSON line each and flushed to disk, to a spool file under the service's
home; the next audit write that reaches the primary moves them in (with their original
time) and empties the file. A file lock makes it safe for several worker processes.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

__all__ = ["AuditSpool"]

_INSERT = text(
    "INSERT INTO audit (at, principal_id, agency, service, endpoint, method, params,"
    " row_count, status, duration_ms)"
    " SELECT CAST(r->>'at' AS timestamptz), CAST(r->>'p' AS int), r->>'a', r->>'s', r->>'e',"
    " r->>'m', r->'params', CAST(r->>'r' AS int), CAST(r->>'st' AS int),"
    " CAST(r->>'d' AS float8) FROM jsonb_array_elements(CAST(:rows AS jsonb)) r"
)


class AuditSpool:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, row: dict[str, Any]) -> None:
        """Keep one audit row (a `geo.access.audit_entry`)."""
        row = {**row, "at": row.get("at") or datetime.now(UTC).isoformat()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            os.fsync(out.fileno())

    def pending(self) -> bool:
        return self.path.exists()

    def replay(self, conn: Connection) -> int:
        """Move the kept rows into ``audit`` through ``conn`` (an autocommit connection to
        the primary); the number moved. The file goes only once the rows are stored."""
        try:
            spool = self.path.open("r+", encoding="utf-8")
        except FileNotFoundError:
            return 0
        with spool:
            fcntl.flock(spool, fcntl.LOCK_EX)
            if not self.path.exists():  # another process moved them meanwhile
                return 0
            rows = [json.loads(line) for line in spool if line.strip()]
            if rows:
                conn.execute(_INSERT, {"rows": json.dumps(rows, ensure_ascii=False)})
            self.path.unlink()
        return len(rows)
