"""Where a copy reads snapshots and change files from: the service over HTTP, or a folder.

A folder is the service's downloads folder as it is (copied to a disk for an air-gapped
network, or shared): ``<dataset>/<label>/snapshot.json`` describes each snapshot and
``changes/<granularity>/`` holds ``state.json``, ``NNNNNNNNN.state.json`` and
``NNNNNNNNN.jsonl.gz``. Over HTTP the same documents come from ``/downloads``. Either way a
file is checked against the SHA-256 its description gives before it is used.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from geo.changes.change_files import state_name
from geo.changes.snapshots import MANIFEST, sha256_of
from geo.errors import GeoError, NotFound

__all__ = ["FolderSource", "HttpSource", "ReplicaSource", "SourceUnreachable", "open_source"]

TIMEOUT = 60  # seconds for one request


class SourceUnreachable(GeoError):
    """The service or folder a copy reads from does not answer as it should."""

    code = "source_unreachable"


class ReplicaSource(Protocol):
    def snapshot(self, dataset: str) -> dict[str, Any]:
        """The latest snapshot of ``dataset``: label, position, files (name, sha256, size)."""
        ...

    def fetch_snapshot_file(self, dataset: str, label: str, name: str, into: Path) -> None:
        """Copy one file of a snapshot to ``into``."""
        ...

    def change_state(self, granularity: str) -> dict[str, Any] | None:
        """The last change file's state (None: no file yet)."""
        ...

    def file_state(self, granularity: str, sequence: int) -> dict[str, Any] | None:
        """File ``sequence``'s own state (None: there is no such file)."""
        ...

    def change_file(self, granularity: str, sequence: int) -> bytes:
        """File ``sequence``, gzipped JSON Lines."""
        ...


class FolderSource:
    """A downloads folder, read as it lies."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise SourceUnreachable(f"{root} is not a folder", code="source_unreachable")
        self.root = root

    def snapshot(self, dataset: str) -> dict[str, Any]:
        home = self.root / dataset
        labels = sorted(p.name for p in home.glob("*") if p.is_dir() and (p / MANIFEST).is_file())
        if not labels:
            raise NotFound(f"no snapshot of {dataset} in {home}", code="unknown_snapshot")
        return json.loads((home / labels[-1] / MANIFEST).read_text())

    def fetch_snapshot_file(self, dataset: str, label: str, name: str, into: Path) -> None:
        shutil.copyfile(self.root / dataset / label / name, into)

    def _changes(self, granularity: str) -> Path:
        return self.root / "changes" / granularity

    def change_state(self, granularity: str) -> dict[str, Any] | None:
        path = self._changes(granularity) / "state.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def file_state(self, granularity: str, sequence: int) -> dict[str, Any] | None:
        path = self._changes(granularity) / state_name(sequence)
        return json.loads(path.read_text()) if path.is_file() else None

    def change_file(self, granularity: str, sequence: int) -> bytes:
        path = self._changes(granularity) / f"{sequence:09d}.jsonl.gz"
        if not path.is_file():
            raise NotFound(f"change file {sequence} is not in {path.parent}", code="missing_file")
        return path.read_bytes()


class HttpSource:
    """A tagsim service's ``/downloads``, with an API key (``Bearer``)."""

    def __init__(self, base: str, key: str | None) -> None:
        self.base = base.rstrip("/") + "/"
        self.key = key

    def _open(self, path: str) -> Any:
        request = urllib.request.Request(self.base + path)
        if self.key:
            request.add_header("Authorization", f"Bearer {self.key}")
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotFound(f"{self.base}{path}: not there", code="not_found") from None
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise SourceUnreachable(f"{self.base}{path}: HTTP {exc.code} {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise SourceUnreachable(f"{self.base}{path}: {exc}") from None

    def _json(self, path: str) -> dict[str, Any] | None:
        try:
            with self._open(path) as response:
                return json.loads(response.read())
        except NotFound:
            return None

    def snapshot(self, dataset: str) -> dict[str, Any]:
        index = self._json("downloads") or {}
        for entry in index.get("datasets", []):
            if entry["id"] == dataset and entry["snapshots"]:
                latest = entry["snapshots"][0]
                return {**latest, "dataset": dataset}
        raise NotFound(f"{self.base} has no snapshot of {dataset}", code="unknown_snapshot")

    def fetch_snapshot_file(self, dataset: str, label: str, name: str, into: Path) -> None:
        with self._open(f"downloads/{dataset}/{label}/{name}") as response, into.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)

    def change_state(self, granularity: str) -> dict[str, Any] | None:
        return self._json(f"downloads/changes/{granularity}/state.json")

    def file_state(self, granularity: str, sequence: int) -> dict[str, Any] | None:
        return self._json(f"downloads/changes/{granularity}/{sequence}.state.json")

    def change_file(self, granularity: str, sequence: int) -> bytes:
        with self._open(f"downloads/changes/{granularity}/{sequence}.jsonl.gz") as response:
            return response.read()


def open_source(where: str, key: str | None = None) -> ReplicaSource:
    """``http(s)://…`` is a service; anything else is a folder."""
    if where.startswith(("http://", "https://")):
        return HttpSource(where, key)
    return FolderSource(Path(where))


def checked(path: Path, sha256: str) -> None:
    """Refuse a file whose SHA-256 is not the one its description gives."""
    if sha256_of(path) != sha256:
        raise SourceUnreachable(
            f"{path.name} does not match its SHA-256; fetch it again", code="corrupt_file"
        )
