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
from geo.changes.feed import read_changes
from geo.changes.snapshots import take_snapshot
from geo.errors import GeoError
from geo.platform.database import Database
from tests.helpers import republish_village


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]


def test_files_follow_each_other_and_hold_exactly_the_feed(sample_url: str, tmp_path: Path) -> None:
    db = Database(sample_url)
    snapshot = take_snapshot(db, "parcels", tmp_path, formats=["csv"], taken_by="test")
    # (the only snapshot of this module's database: the first file starts at it)
    first = write_change_file(db, tmp_path, "daily")
    assert first["sequence"] == 1 and first["from_position"] == snapshot["position"]
    assert first["changes"] == 0  # nothing happened after the snapshot
    _village, changed, removed, _ = republish_village(sample_url)
    second = write_change_file(db, tmp_path, "daily")
    assert second["sequence"] == 2 and second["from_position"] == first["to_position"]
    path = tmp_path / "changes" / "daily" / second["name"]
    assert second["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    lines = _lines(path)
    with db.connect() as c:
        feed = read_changes(c, first["to_position"], limit=10_000)
    assert [x["cursor"] for x in lines] == [x["cursor"] for x in feed["changes"]]
    assert len(lines) == second["changes"] > 0 and second["to_position"] == feed["next"]
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
