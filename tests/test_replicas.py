"""Reads on a real streaming replica: a second local cluster made by pg_basebackup from a
primary of its own (so stopping that primary harms no other test).

Proven here: reads are served by the replica; an upload on the primary shows on it; the
change feed read from it — switching between servers page by page while writes go on —
misses and repeats nothing; with the primary stopped, reads go on, writes answer 503
``primary_unavailable``, and the audit rows of those reads reach the primary once it is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from api import create_app
from api.auth import journal
from data.sample import ensure_sample_files, load_sample
from geo.access.control import create_key
from geo.platform import migrate
from geo.platform.cluster import LocalCluster, port_is_free
from geo.platform.config import settings
from geo.platform.database import Database, dispose
from geo.platform.replica import LocalReplica, wait_for_replay
from geo.platform.routing import DOWN_FOR_S
from tests.helpers import republish_village


@dataclass
class Pair:
    primary: LocalCluster
    replica: LocalReplica
    primary_url: str
    replica_url: str
    key: str
    audit: Path  # the app's audit journal folder

    def client(self, *, replicas: bool = True) -> FlaskClient:
        app = create_app(
            {
                "DATABASE_URL": self.primary_url,
                "REPLICA_URLS": [self.replica_url] if replicas else [],
                "AUDIT_JOURNAL": str(self.audit),
            }
        )
        client = app.test_client()
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.key}"
        return client

    def caught_up(self) -> None:
        wait_for_replay(self.primary_url, self.replica_url, timeout=30)


def _free_ports(n: int) -> list[int]:
    return [p for p in range(54400, 54600) if port_is_free(p)][:n]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    folder = tmp_path_factory.mktemp("replication")
    p_port, r_port = _free_ports(2)
    primary = LocalCluster(folder / "primary", p_port)
    replica = LocalReplica(folder / "replica", r_port, primary)
    urls: list[str] = []
    try:
        urls.append(primary.up())
        migrate.upgrade(urls[0])
        sample = ensure_sample_files(settings().sample_dir, echo=lambda _m: None)
        load_sample(Database(urls[0]), sample, echo=lambda _m: None)
        with Database(urls[0]).begin() as conn:
            key = create_key(conn, "sci", "admin", "replica test")["key"]
        urls.append(replica.up())
        yield Pair(primary, replica, urls[0], urls[1], key, folder / "audit")
    finally:
        for url in urls:
            dispose(url)
        replica.destroy()
        primary.destroy()


def _plates_csv(unit: str, n: int) -> bytes:
    rows = ["unit,main,sub,wkt"]
    for i in range(n):
        x, y = 51.30 + (i % 50) * 0.001, 35.60 + (i // 50) * 0.001
        ring = f"{x} {y},{x + 0.0004} {y},{x + 0.0004} {y + 0.0004},{x} {y + 0.0004},{x} {y}"
        rows.append(f'{unit},{i + 1},0,"POLYGON(({ring}))"')
    return ("\n".join(rows) + "\n").encode()


def _notice(client: FlaskClient, raw: bytes) -> Any:
    return client.post(
        "/plates/notices",
        data={"file": (BytesIO(raw), "n.csv")},
        content_type="multipart/form-data",
    )


def test_reads_are_served_by_the_replica_and_audited_on_the_primary(pair: Pair) -> None:
    client = pair.client()
    read = client.get("/collections/parcels/items?limit=3")
    assert read.status_code == 200
    assert read.headers["X-Tagsim-Database"] == "replica"
    assert read.get_json()["numberReturned"] == 3
    for path in ("/changes?limit=5", "/divisions/search?q=قم", "/collections/divisions/items"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.get_data(as_text=True)[:300])
        assert answer.headers["X-Tagsim-Database"] == "replica", path
    write = _notice(client, _plates_csv("901", 2))
    assert write.status_code == 200, write.get_data(as_text=True)
    assert write.headers["X-Tagsim-Database"] == "primary"
    with client.application.app_context():
        journal().flush()  # audit rows move in batches: move them now
    with Database(pair.primary_url).connect() as c:
        audited = c.execute(
            text("SELECT count(*) FROM audit WHERE endpoint = 'features.get_items'")
        ).scalar_one()
    assert audited >= 2  # the replica's reads left their audit rows on the primary
    primary_only = pair.client(replicas=False).get("/collections/parcels/items?limit=1")
    assert primary_only.headers["X-Tagsim-Database"] == "primary"


def test_an_upload_on_the_primary_shows_on_the_replica(pair: Pair) -> None:
    client = pair.client()
    village, changed, removed, _ = republish_village(pair.primary_url)
    with Database(pair.primary_url).connect() as c:
        land_use = c.execute(
            text(
                "SELECT land_use FROM parcel WHERE village_code = :v AND parcel_no = :p"
                " AND valid_to IS NULL"
            ),
            {"v": village, "p": changed},
        ).scalar_one()
    deadline = time.monotonic() + 30
    while True:
        page = client.get(f"/collections/parcels/items?village=hf:{village}&limit=1000")
        assert page.headers["X-Tagsim-Database"] == "replica"
        numbers = {f["properties"]["parcel_no"]: f for f in page.get_json()["features"]}
        seen = numbers.get(changed, {}).get("properties", {}).get("land_use")
        if seen == land_use and removed not in numbers:
            break
        assert time.monotonic() < deadline, "the upload never reached the replica"
        time.sleep(0.1)


def _feed_end(client: FlaskClient) -> str:
    cursor = ""
    while True:
        body = client.get(f"/changes?limit=1000&since={cursor}").get_json()
        cursor = body["next"]
        if not body["changes"]:
            return cursor


def test_the_feed_from_the_replica_misses_and_repeats_nothing(pair: Pair) -> None:
    on_replica, on_primary = pair.client(), pair.client(replicas=False)
    writer = pair.client(replicas=False)
    with Database(pair.primary_url).connect() as c:
        start = c.execute(text("SELECT coalesce(max(id), 0) FROM change")).scalar_one()
    cursor = _feed_end(on_primary)
    errors: list[str] = []

    def write() -> None:
        for i in range(12):
            answer = _notice(writer, _plates_csv(str(910 + i), 5))
            if answer.status_code != 200:
                errors.append(answer.get_data(as_text=True))

    thread = threading.Thread(target=write)
    thread.start()
    seen: list[int] = []
    servers: set[str] = set()
    turn = 0
    while thread.is_alive() or turn < 4:  # page by page, the servers taking turns
        answer = (on_replica if turn % 2 == 0 else on_primary).get(
            f"/changes?limit=7&since={cursor}"
        )
        assert answer.status_code == 200
        servers.add(answer.headers["X-Tagsim-Database"])
        body = answer.get_json()
        seen += [c["id"] for c in body["changes"]]
        cursor = body["next"]
        turn += 1
    thread.join()
    assert not errors, errors
    pair.caught_up()
    while True:  # what is left, from the replica
        body = on_replica.get(f"/changes?limit=50&since={cursor}").get_json()
        if not body["changes"]:
            break
        seen += [c["id"] for c in body["changes"]]
        cursor = body["next"]
    with Database(pair.primary_url).connect() as c:
        written = (
            c.execute(text("SELECT id FROM change WHERE id > :s ORDER BY txid, id"), {"s": start})
            .scalars()
            .all()
        )
    assert servers == {"primary", "replica"}
    assert len(written) == 60  # 12 notices × 5 new plates
    assert seen == written  # every change once, in feed order, whichever server answered


def test_reads_go_on_when_the_primary_stops(pair: Pair) -> None:
    client = pair.client()
    pair.caught_up()
    pair.primary.down()
    try:
        started = time.time()
        for _ in range(3):
            read = client.get("/collections/parcels/items?limit=2")
            assert read.status_code == 200
            assert read.headers["X-Tagsim-Database"] == "replica"
        assert client.get("/changes?limit=3").status_code == 200
        write = _notice(client, _plates_csv("999", 1))
        assert write.status_code == 503
        assert write.get_json()["code"] == "primary_unavailable"
        with client.application.app_context():
            journal().flush()  # fails: the primary is down
            kept = journal().pending()  # the reads' audit rows wait on local disk
        assert kept >= 4
    finally:
        pair.primary.up()
    # the router tries a failed primary again DOWN_FOR_S later: let that time pass
    routes = client.application.extensions["tagsim_router"]
    routes.clock = lambda: time.monotonic() + DOWN_FOR_S
    assert client.get("/collections/parcels/items?limit=1").status_code == 200
    # a client of the primary alone, on connections pooled before the restart: a clean 503
    # at most once (the dead pool is then dropped), never a 500
    primary_only = pair.client(replicas=False)
    first = primary_only.get("/changes?limit=1")
    assert first.status_code in (200, 503), first.get_data(as_text=True)
    if first.status_code == 503:
        assert first.get_json()["code"] == "database_unavailable"
    assert primary_only.get("/changes?limit=1").status_code == 200
    with client.application.app_context():
        journal().flush()
        assert journal().pending() == 0
    with Database(pair.primary_url).connect() as c:
        moved = c.execute(
            text("SELECT count(*) FROM audit WHERE at >= to_timestamp(:t) - interval '1 second'"),
            {"t": started},
        ).scalar_one()
    assert moved >= kept + 1  # nothing of the outage is missing from the audit trail
