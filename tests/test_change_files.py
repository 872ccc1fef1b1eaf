"""Numbered change files (issue 25): consecutive, each exactly the feed between its two
positions, the first one starting where the earliest snapshot stands; served with the
``changes`` policy."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from api import create_app
from geo.access.control import create_key, set_policy
from geo.changes.change_files import change_state, list_change_files, write_change_file
from geo.changes.feed import decode_cursor, read_changes
from geo.changes.snapshots import list_snapshots, take_snapshot
from geo.errors import GeoError
from geo.platform.database import Database
from tests.helpers import republish_village


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def _holds_the_feed(db: Database, folder: Path, made: dict[str, Any]) -> list[dict[str, Any]]:
    """The file is the feed from its ``from`` to its ``to``, cursor for cursor."""
    path = folder / "changes" / made["granularity"] / made["name"]
    assert made["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    lines = _lines(path)
    with db.connect() as c:
        feed = read_changes(c, made["from_position"], limit=10_000)
    assert [x["cursor"] for x in lines] == [x["cursor"] for x in feed["changes"]]
    assert len(lines) == made["changes"] and made["to_position"] == feed["next"]
    return lines


def test_files_follow_each_other_and_hold_exactly_the_feed(sample_url: str, tmp_path: Path) -> None:
    db = Database(sample_url)
    take_snapshot(db, "parcels", tmp_path, formats=["csv"], taken_by="test")
    earliest = min((s["position"] for s in list_snapshots(db)), key=decode_cursor)
    first = write_change_file(db, tmp_path, "daily")  # (the only test writing daily files)
    assert first["sequence"] == 1 and first["from_position"] == earliest
    _holds_the_feed(db, tmp_path, first)
    _village, changed, removed, _ = republish_village(sample_url)
    second = write_change_file(db, tmp_path, "daily")
    assert second["sequence"] == 2 and second["from_position"] == first["to_position"]
    lines = _holds_the_feed(db, tmp_path, second)
    assert len(lines) > 0
    parcels = {x["entity_id"].rsplit(":", 1)[1]: x for x in lines if x["entity_kind"] == "parcel"}
    assert parcels[changed]["operation"] == "update" and parcels[removed]["after"] is None
    third = write_change_file(db, tmp_path, "daily")
    assert (third["sequence"], third["changes"]) == (3, 0)
    assert third["from_position"] == second["to_position"] == third["to_position"]
    state = json.loads((tmp_path / "changes" / "daily" / "state.json").read_text())
    assert state == change_state(db, "daily") and state["sequence"] == 3
    # hourly files are a sequence of their own
    hourly = len(list_change_files(db, "hourly"))
    assert write_change_file(db, tmp_path, "hourly")["sequence"] == hourly + 1
    assert [f["sequence"] for f in list_change_files(db, "daily")] == [3, 2, 1]
    with pytest.raises(GeoError):
        write_change_file(db, tmp_path, "weekly")


def test_change_files_are_served_under_the_changes_policy(sample_url: str, tmp_path: Path) -> None:
    db = Database(sample_url)
    republish_village(sample_url)
    made = write_change_file(db, tmp_path, "hourly")
    with db.begin() as c:
        reader = create_key(c, "sci", "reader", "change files")["key"]
        outsider = create_key(c, "hf", "reader", "change files")["key"]
    client = create_app({"DATABASE_URL": sample_url, "DOWNLOADS_DIR": str(tmp_path)}).test_client()
    auth = {"Authorization": f"Bearer {reader}"}
    state = client.get("/downloads/changes/hourly/state.json", headers=auth)
    assert state.status_code == 200 and state.json["sequence"] == made["sequence"]
    href = f"/downloads/changes/hourly/{made['sequence']}.jsonl.gz"
    got = client.get(href, headers=auth)
    body = got.get_data()
    got.close()
    assert got.status_code == 200 and got.headers["ETag"] == f'"{made["sha256"]}"'
    assert len(gzip.decompress(body).splitlines()) == made["changes"]
    index = client.get("/downloads", headers=auth).json["changes"]["hourly"]
    assert index["files"][0]["sequence"] == made["sequence"]
    missing = client.get("/downloads/changes/hourly/999999.jsonl.gz", headers=auth)
    assert missing.status_code == 404 and missing.json["code"] == "unknown_change_file"
    assert client.get("/downloads/changes/weekly/state.json", headers=auth).status_code == 400
    with db.begin() as c:
        set_policy(c, "changes", "all_except", ["hf"], public=False)
    try:
        other = {"Authorization": f"Bearer {outsider}"}
        assert client.get(href, headers=other).status_code == 403
    finally:
        with db.begin() as c:
            set_policy(c, "changes", "all", [], public=False)
    with db.connect() as c:
        audited = c.execute(
            text("SELECT count(*) FROM audit WHERE endpoint = 'downloads.get_change_file'")
        ).scalar_one()
    assert audited >= 1


def test_the_atom_feed_lists_snapshots_and_change_files(sample_url: str, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    db = Database(sample_url)
    snapshot = take_snapshot(db, "plates", tmp_path, formats=["gpkg"], taken_by="test")
    made = write_change_file(db, tmp_path, "hourly")
    with db.begin() as c:
        key = create_key(c, "sci", "reader", "atom")["key"]
    client = create_app({"DATABASE_URL": sample_url}).test_client()
    auth = {"Authorization": f"Bearer {key}"}
    landing = client.get("/").json["links"]
    assert any(lk["href"].endswith("/downloads.atom") for lk in landing)
    got = client.get("/downloads.atom", headers=auth)
    assert got.status_code == 200 and got.mimetype == "application/atom+xml"
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.fromstring(got.data)
    entries = {e.findtext("a:id", namespaces=ns): e for e in feed.findall("a:entry", ns)}
    shot = entries[f"urn:tagsim:snapshot:plates:{snapshot['label']}"]
    (gpkg,) = shot.findall("a:link[@rel='enclosure']", ns)
    assert int(gpkg.get("length")) == snapshot["files"][0]["size"]
    assert gpkg.get("href").endswith(f"/downloads/plates/{snapshot['label']}/plates.gpkg")
    changes = entries[f"urn:tagsim:changes:hourly:{made['sequence']}"]
    (file,) = changes.findall("a:link[@rel='enclosure']", ns)
    assert file.get("title") == f"sha256:{made['sha256']}"
    # the terms, said once for the feed and for each dataset of the JSON index
    assert "Restricted" in feed.findtext("a:rights", namespaces=ns)
    index = client.get("/downloads", headers=auth).json
    assert index["license"] == feed.findtext("a:rights", namespaces=ns)
    assert {d["license"] for d in index["datasets"]} == {index["license"]}
    assert client.get("/downloads.atom").status_code == 401
