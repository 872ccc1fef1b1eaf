"""Read scaling: items by bbox from one primary vs from a primary and a streaming replica.

The replica is made here (``pg_basebackup`` of the project's cluster, a second server on
another loopback port) and removed at the end. Both configurations are tagsim under the
same gunicorn settings; ``primary+replica`` lists both servers in ``TAGSIM_REPLICA_URLS``
so reads are spread over the two. On a 2-core machine both servers share the same cores:
expect little gain here; the case shows that it works and what it costs.
"""

from __future__ import annotations

import shutil
import time

from sqlalchemy.engine import make_url

from bench.cases.serving import (
    VENV_BIN,
    _free_port,
    _gunicorn,
    _load,
    _outcome,
    _rounds,
    _villages,
)
from bench.datasets import CACHE
from bench.harness import Outcome
from geo.access.control import create_key
from geo.platform.config import settings
from geo.platform.database import Database, dispose, local_cluster
from geo.platform.replica import LocalReplica, wait_for_replay


def run(url: str, quick: bool) -> list[Outcome]:
    if shutil.which("ogr2ogr") is None or shutil.which("wrk") is None:
        print("  ogr2ogr or wrk missing (apt-get install gdal-bin wrk): replica case skipped")
        return []
    cfg = settings()
    if cfg.database_url:
        print("  TAGSIM_DATABASE_URL is external: a local replica cannot be made; skipped")
        return []
    parcels = _load(url, quick, "generator")
    with Database(url).begin() as c:
        key = create_key(c, "sci", "reader", "bench")["key"]
    villages = _villages(url, 200)
    items = [
        f"/collections/parcels/items?bbox={x0},{y0},{x1},{y1}&limit=500"
        for x0, y0, x1, y1, *_ in villages
    ]
    seconds, rounds = (3, 2) if quick else (15, 3)
    replica = LocalReplica(CACHE / "replica", _free_port(), local_cluster(cfg))
    replica.destroy()  # a copy left by an earlier run may be too far behind to follow
    started = time.perf_counter()
    replica.up()
    database = make_url(url).database or ""
    replica_url = replica.url(database)
    try:
        wait_for_replay(url, replica_url, timeout=600)
        print(f"  replica made and caught up in {time.perf_counter() - started:.1f} s")
        env = {"TAGSIM_DATABASE_URL": url, "TAGSIM_RATE_LIMIT": "100000000 per minute"}
        one, two = _free_port(), _free_port()
        with (
            _gunicorn(VENV_BIN, "api.app:create_app()", env, "/healthz", one) as primary,
            _gunicorn(
                VENV_BIN,
                "api.app:create_app()",
                {**env, "TAGSIM_REPLICA_URLS": f"{replica_url},{url}"},
                "/healthz",
                two,
            ) as both,
        ):
            results = _rounds(
                "items by bbox",
                [
                    ("primary+replica", both, items, key, None),
                    ("primary", primary, items, key, None),
                ],
                rounds,
                seconds,
            )
        size = {"parcels": parcels, "villages": len(villages)}
        return [
            _outcome(
                "reads: primary+replica vs primary", results, "primary+replica", "primary", size
            )
        ]
    finally:
        dispose(replica_url)
        replica.destroy()
