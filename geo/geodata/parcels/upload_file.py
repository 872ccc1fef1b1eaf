"""An upload's file in the database (``upload_file``), a chunk per row: stored as it is
received (or, for a local file the command line ingests, while it is read), fetched back
by a worker."""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, text

from geo.platform.database import Database

__all__ = ["CHUNK", "fetch_file", "store_beside", "store_file"]

CHUNK = 8 << 20  # bytes of an upload per row of upload_file


def store_file(conn: Connection, upload_id: int, source: bytes | Path | IO[bytes]) -> None:
    """The upload's file into ``upload_file``, a chunk at a time, with its size and
    checksum."""
    opened: IO[bytes]
    if isinstance(source, bytes):
        opened = io.BytesIO(source)
    elif isinstance(source, Path):
        opened = source.open("rb")
    else:
        opened = source
    digest, size = hashlib.sha256(), 0
    try:
        for seq in itertools.count():
            chunk = opened.read(CHUNK)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
            conn.execute(
                text("INSERT INTO upload_file (upload_id, seq, content) VALUES (:u, :s, :b)"),
                {"u": upload_id, "s": seq, "b": chunk},
            )
    finally:
        if opened is not source:
            opened.close()
    conn.execute(
        text("UPDATE upload SET file_size = :s, checksum = :c WHERE id = :u"),
        {"u": upload_id, "s": size, "c": digest.hexdigest()},
    )


def store_beside(db: Database, upload_id: int, path: Path) -> Callable[[], None]:
    """Store the file at ``path`` on a thread of its own while the upload is read from
    it; the call returned waits for the stored copy (and raises what storing raised)."""

    def store() -> None:
        with db.begin() as conn:
            # (the upload's final status commits after this, waiting for both)
            conn.execute(text("SET LOCAL synchronous_commit = off"))
            conn.execute(text("DELETE FROM upload_file WHERE upload_id = :u"), {"u": upload_id})
            store_file(conn, upload_id, path)

    keeper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tagsim-store")
    stored = keeper.submit(store)
    keeper.shutdown(wait=False)
    return stored.result


def fetch_file(db: Database, upload_id: int, out: Path) -> Path:
    """Write the stored upload to ``out``, a chunk at a time."""
    with db.connect() as conn, out.open("wb") as f:
        rows = conn.execution_options(yield_per=1).execute(
            text("SELECT content FROM upload_file WHERE upload_id = :u ORDER BY seq"),
            {"u": upload_id},
        )
        for (chunk,) in rows:
            f.write(chunk)
    return out
