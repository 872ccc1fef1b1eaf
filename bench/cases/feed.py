"""Change feed throughput: a reader following ``GET /changes`` cursors (pages of 1,000)
through every change, vs one raw SQL read of the same rows as JSON with psycopg.

The changes are real: a plate notice of N new plates (each a change with its geometry)."""

from __future__ import annotations

import psycopg
from shapely.geometry import box

from api import create_app
from bench.harness import Outcome, pair
from geo.access.control import create_key
from geo.changes.plate_notices import apply_notice
from geo.platform.database import Database


def notice(n: int, unit: str = "77") -> bytes:
    """A plate notice of ``n`` new plates of registration unit ``unit``."""
    lines = ["unit,main,sub,wkt"]
    for i in range(n):
        lon, lat = 50 + (i % 500) * 0.01, 33 + (i // 500) * 0.01
        lines.append(
            f'{unit},{i // 100},{i % 100},"{box(lon, lat, lon + 0.0004, lat + 0.0004).wkt}"'
        )
    return ("\n".join(lines) + "\n").encode()


def run(url: str, quick: bool) -> list[Outcome]:
    n = 5_000 if quick else 100_000
    apply_notice(Database(url), notice(n), "bench notice")
    with Database(url).begin() as c:
        key = create_key(c, "sci", "reader", "bench feed")["key"]
    client = create_app({"DATABASE_URL": url, "RATE_LIMIT": "100000000 per minute"}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    libpq = url.replace("postgresql+psycopg://", "postgresql://")

    def ours() -> None:
        since, seen = "", 0
        while True:
            page = client.get(f"/changes?limit=1000&since={since}").get_json()
            if not page["changes"]:
                break
            seen += len(page["changes"])
            since = page["next"]
        assert seen == n, seen

    def raw() -> None:
        with psycopg.connect(libpq) as conn:
            rows = conn.execute(
                "SELECT json_agg(c ORDER BY txid, id)::text FROM (SELECT id, txid::text,"
                " entity_kind, entity_id, operation, occurred_at, cause, before, after"
                " FROM change) c"
            ).fetchone()
            assert rows and rows[0]

    out = pair(
        "change feed (read everything)",
        ("GET /changes pages of 1000", ours),
        ("one SQL json_agg", raw),
        2 if quick else 3,
        size={"changes": n},
        note="ours: cursor pages over HTTP (finished-transaction horizon, filters, JSON); "
        "baseline: one query, no paging",
    )
    rate = n / out.ours_median
    print(f"  feed throughput: {rate:,.0f} changes/s to one reader", flush=True)
    out.size["changes_per_second"] = round(rate)
    return [out]
