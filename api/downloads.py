"""Dated snapshots to download (issue 25): ``GET /downloads`` lists them with their files,
sizes, SHA-256 and feed positions; ``GET /downloads/{dataset}/{latest|date|label}/{file}``
sends one file with an ETag (its SHA-256) and range requests, under the dataset's own
policy, audited like every read (`geo.changes.snapshots` writes them)."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, send_file

from api.database import app_db, get_conn
from api.endpoints import BY_COLLECTION, Text, declare, json_object
from api.params import json_body
from geo.changes.change_files import change_file, change_state, file_state, list_change_files
from geo.changes.snapshots import (
    SNAPSHOT_FORMATS,
    XLSX,
    check_request,
    find_snapshot,
    list_snapshots,
)
from geo.errors import InvalidParameter, NotFound
from geo.geodata.features.collections import COLLECTIONS, get_collection
from geo.models.changes import CHANGE_FILE_GRANULARITIES, SNAPSHOT_DATASETS
from geo.platform.config import settings
from geo.platform.jobs import enqueue, job_state

bp = Blueprint("downloads", __name__)

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
ATOM_NS = "http://www.w3.org/2005/Atom"
WHEN = r"^(latest|\d{4}-\d{2}-\d{2}|\d{4}-\d{2}-\d{2}T\d{6})$"
FILE = r"^[a-z_]+\.(gpkg|parquet|fgb|csv|zip|pmtiles|xlsx)$"
# the datasets with snapshots: the collections, and the crosswalk's releases (a table)
TITLES = {
    **{c.id: (c.title, c.title_fa) for c in COLLECTIONS.values()},
    "crosswalk": ("Crosswalk releases (MOI, SCI, HF codes)", "جدول تناظر کدها"),
}


def downloads_folder() -> Path:
    """The snapshots' folder: the app's ``DOWNLOADS_DIR``, else the settings' one."""
    return Path(current_app.config.get("DOWNLOADS_DIR") or settings().downloads_folder)


def _described(snapshot: dict[str, Any]) -> dict[str, Any]:
    dataset, label = snapshot["dataset"], snapshot["label"]
    base = f"{request.url_root}downloads/{dataset}/{label}/"
    return {
        "label": label,
        "taken_at": snapshot["taken_at"].isoformat(),
        "position": snapshot["position"],
        "features": snapshot["features"],
        **({} if dataset == "crosswalk" else {"crs": CRS84}),
        "files": [{**f, "href": base + f["name"]} for f in snapshot["files"]],
    }


@bp.get("/downloads")
@declare(key_only=True)
def get_downloads() -> Response:
    """Every dataset's snapshots kept, newest first: files with size, SHA-256 and link,
    the feed position each is consistent with (continue with ``/changes?since=``)."""
    kept: dict[str, list[dict[str, Any]]] = {name: [] for name in TITLES}
    for snapshot in list_snapshots(app_db()):
        kept[snapshot["dataset"]].append(_described(snapshot))
    datasets = [
        {
            "id": name,
            "title": title,
            "title_fa": title_fa,
            "latest": f"{request.url_root}downloads/{name}/latest/" if kept[name] else None,
            "license": settings().downloads_license,
            "snapshots": kept[name],
        }
        for name, (title, title_fa) in TITLES.items()
    ]
    changes = {}
    for granularity in CHANGE_FILE_GRANULARITIES:
        files = list_change_files(app_db(), granularity, limit=50)
        base = f"{request.url_root}downloads/changes/{granularity}/"
        changes[granularity] = {
            "state": base + "state.json",
            "files": [
                {
                    "sequence": f["sequence"],
                    "from": f["from_position"],
                    "to": f["to_position"],
                    "made_at": f["made_at"].isoformat(),
                    "changes": f["changes"],
                    "size": f["size"],
                    "sha256": f["sha256"],
                    "href": base + f["name"],
                }
                for f in files
            ],
        }
    return jsonify(
        {"license": settings().downloads_license, "datasets": datasets, "changes": changes}
    )


@bp.get("/downloads.atom")
@declare(key_only=True, media="application/atom+xml")
def get_downloads_atom() -> Response:
    """The same as ``/downloads`` as an Atom feed (INSPIRE download-service style): an entry
    per snapshot and per change file, each file a link with its type and length."""
    root = request.url_root
    feed = ET.Element("feed", xmlns=ATOM_NS)
    ET.SubElement(feed, "id").text = f"{root}downloads.atom"
    ET.SubElement(feed, "title").text = "tagsim downloads: snapshots and change files"
    ET.SubElement(feed, "link", rel="self", href=f"{root}downloads.atom")
    ET.SubElement(feed, "link", rel="alternate", type="application/json", href=f"{root}downloads")
    ET.SubElement(feed, "rights").text = settings().downloads_license
    entries: list[tuple[str, ET.Element]] = []
    for snapshot in list_snapshots(app_db()):
        dataset, label = snapshot["dataset"], snapshot["label"]
        entry = _entry(
            f"urn:tagsim:snapshot:{dataset}:{label}",
            f"{dataset} {label}",
            snapshot["taken_at"].isoformat(),
            f"{snapshot['features']} features at feed position {snapshot['position']}",
        )
        ET.SubElement(entry, "category", term=dataset)
        for f in snapshot["files"]:
            ET.SubElement(
                entry,
                "link",
                rel="enclosure",
                type=f["media_type"],
                length=str(f["size"]),
                title=f"sha256:{f['sha256']}",
                href=f"{root}downloads/{dataset}/{label}/{f['name']}",
            )
        entries.append((snapshot["taken_at"].isoformat(), entry))
    for granularity in CHANGE_FILE_GRANULARITIES:
        for f in list_change_files(app_db(), granularity, limit=50):
            entry = _entry(
                f"urn:tagsim:changes:{granularity}:{f['sequence']}",
                f"{granularity} change file {f['sequence']}",
                f["made_at"].isoformat(),
                f"{f['changes']} changes from {f['from_position']} to {f['to_position']}",
            )
            ET.SubElement(entry, "category", term=f"changes-{granularity}")
            ET.SubElement(
                entry,
                "link",
                rel="enclosure",
                type="application/gzip",
                length=str(f["size"]),
                title=f"sha256:{f['sha256']}",
                href=f"{root}downloads/changes/{granularity}/{f['name']}",
            )
            entries.append((f["made_at"].isoformat(), entry))
    entries.sort(key=lambda pair: pair[0], reverse=True)
    updated = entries[0][0] if entries else datetime.now(UTC).isoformat()
    ET.SubElement(feed, "updated").text = updated
    for _, entry in entries:
        feed.append(entry)
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return Response(body, mimetype="application/atom+xml")


def _entry(ident: str, title: str, updated: str, summary: str) -> ET.Element:
    entry = ET.Element("entry")
    ET.SubElement(entry, "id").text = ident
    ET.SubElement(entry, "title").text = title
    ET.SubElement(entry, "updated").text = updated
    ET.SubElement(entry, "summary").text = summary
    return entry


GRANULARITY = Text("granularity", enum=CHANGE_FILE_GRANULARITIES)


@bp.get("/downloads/changes/<granularity>/state.json")
@declare(service="changes", path=[GRANULARITY])
def get_change_state(granularity: str) -> Response:
    """The last change file of ``hourly`` or ``daily``: its sequence, the feed position it
    ends at, when it was made (OpenStreetMap's ``state.txt``)."""
    GRANULARITY.parse(granularity)
    response = jsonify(change_state(app_db(), granularity))
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/downloads/changes/<granularity>/<int:sequence>.jsonl.gz")
@declare(service="changes", path=[GRANULARITY], media="application/gzip")
def get_change_file(granularity: str, sequence: int) -> Response:
    """Change file ``sequence`` (gzipped JSON Lines, one change a line as ``/changes``
    gives it), with its ETag (SHA-256) and ranges; it never changes."""
    GRANULARITY.parse(granularity)
    made = change_file(app_db(), granularity, sequence)
    path = downloads_folder() / "changes" / granularity / made["name"]
    return _send(path, "application/gzip", made["sha256"], made["changes"], immutable=True)


@bp.get("/downloads/changes/<granularity>/<int:sequence>.state.json")
@declare(service="changes", path=[GRANULARITY])
def get_change_file_state(granularity: str, sequence: int) -> Response:
    """Change file ``sequence``'s own state: the positions it runs ``from`` and to
    (``position``), its size and SHA-256 (what a copy checks before applying it)."""
    GRANULARITY.parse(granularity)
    response = jsonify(file_state(change_file(app_db(), granularity, sequence)))
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    return response


DATASET = Text("dataset", enum=SNAPSHOT_DATASETS)


@bp.post("/downloads/<dataset>")
@declare(
    service="changes",
    role="admin",
    success=202,
    path=[DATASET],
    body=json_object(
        body_required=False,
        formats={
            "type": "array",
            "items": {"type": "string", "enum": list(SNAPSHOT_FORMATS)},
            "minItems": 1,
        },
    ),
)
def post_snapshot(dataset: str) -> tuple[Response, int]:
    """Take a snapshot of ``dataset`` now (an admin's; the workers take one daily): queued
    as a job, 202 with the job to follow; ``formats`` (default: all of the dataset's)."""
    body = json_body(required=False)
    formats = body.get("formats")
    if formats is not None and (
        not isinstance(formats, list) or not all(f in SNAPSHOT_FORMATS for f in formats)
    ):
        raise InvalidParameter(
            f"formats is a list among {', '.join(SNAPSHOT_FORMATS)}",
            field="formats",
            code="unknown_format",
        )
    check_request(dataset, formats)
    job_id = enqueue(
        get_conn(),
        "tagsim:snapshot",
        kind="snapshot",
        dataset=dataset,
        folder=str(downloads_folder()),
        formats=formats,
        by=f"{g.principal.agency} admin",
    )
    href = f"{request.url_root}downloads/jobs/{job_id}"
    return jsonify({"job_id": job_id, "status": "queued", "href": href}), 202


@bp.get("/downloads/jobs/<int:job_id>")
@declare(service="changes", role="admin")
def get_snapshot_job(job_id: int) -> Response:
    """How an asked-for snapshot is going: the job's status and, once done, its label."""
    state = job_state(app_db(), job_id)
    if state["kind"] != "snapshot":
        raise NotFound(f"no snapshot job {job_id}", code="unknown_job")
    return jsonify(
        {
            "job_id": job_id,
            "status": state["status"],
            "result": state["result"],
            "message": state["message"],
        }
    )


@bp.get("/downloads/crosswalk/<when>/<name>")
@declare(
    service="crosswalk",
    path=[Text("when", pattern=WHEN), Text("name", pattern=FILE)],
    media=["text/csv", XLSX],
)
def get_crosswalk_download(when: str, name: str) -> Response:
    """A crosswalk release's table (CSV or XLSX) as it was snapshotted (``latest``, a Tehran
    date's last, or a label), under the crosswalk's policy."""
    return _snapshot_file("crosswalk", when, name)


def _snapshot_file(dataset: str, when: str, name: str) -> Response:
    snapshot = find_snapshot(app_db(), dataset, when)
    described = next((f for f in snapshot["files"] if f["name"] == name), None)
    if described is None:
        names = ", ".join(f["name"] for f in snapshot["files"])
        raise NotFound(f"the snapshot has {names}", code="unknown_file")
    path = downloads_folder() / dataset / snapshot["label"] / name
    response = _send(
        path,
        described["media_type"],
        described["sha256"],
        snapshot["features"],
        immutable=when == snapshot["label"],
    )
    digest = base64.b64encode(bytes.fromhex(described["sha256"])).decode()
    response.headers["Repr-Digest"] = f"sha-256=:{digest}:"  # (RFC 9530)
    return response


def _send(path: Path, media_type: str, sha256: str, rows: int, *, immutable: bool) -> Response:
    """A kept file with its ETag (its SHA-256) and ranges, audited as ``rows`` features;
    ``immutable`` when the URL names it for ever (a label, a sequence)."""
    if not path.is_file():
        raise NotFound("the file is gone from the downloads folder", code="file_missing")
    # the whole file names its features; a range of it (a map reading a PMTiles archive
    # tile by tile) is recorded as an access without a count
    g.audit_rows = None if request.range else rows
    response = send_file(
        path,
        mimetype=media_type,
        as_attachment=True,
        download_name=path.name,
        conditional=True,
        etag=sha256,
    )
    response.headers["Cache-Control"] = (
        "private, max-age=31536000, immutable" if immutable else "private, no-cache"
    )
    return response


@bp.get("/downloads/<collection_id>/<when>/<name>")
@declare(
    service=BY_COLLECTION,
    path=[
        Text("when", pattern=WHEN),
        Text("name", pattern=FILE),
    ],
    media=[
        "application/geopackage+sqlite3",
        "application/vnd.apache.parquet",
        "application/flatgeobuf",
        "text/csv",
        "application/vnd.pmtiles",
    ],
)
def get_download(collection_id: str, when: str, name: str) -> Response:
    """One file of a snapshot (``latest``, a Tehran date's last, or a label), with an ETag
    (its SHA-256) and range requests; a label's file never changes."""
    get_collection(collection_id)  # (404 unknown_collection)
    return _snapshot_file(collection_id, when, name)
