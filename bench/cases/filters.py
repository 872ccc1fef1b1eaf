"""Filters under load (issue 24): tagsim against tipg and the thin wrapper, with ``wrk``.

tipg (FastAPI over PostGIS, the fast OGC API – Features server users pick) runs in its own
virtualenv under ``bench/cache/tipg-venv`` on the same table, under gunicorn with the same
worker count (its own uvicorn worker class: it is an ASGI app). The thin wrapper runs the
hand-written SQL of each question. Shapes, at concurrency 8, on both maps:

- items by bbox (``limit=500``);
- a CQL2 attribute filter: one village's parcels of one land use
  (``village_code = '…' AND land_use = '…'``);
- a CQL2 spatial filter: ``S_INTERSECTS(geometry, BBOX(…))`` over a village's extent;
- sorted: one village's parcels, largest first (``sortby=-area_m2``, ``limit=100``);
- MVT z14 (tagsim's tile cache warm, and without it).

Two more lines measure what a filter costs tagsim over the same question asked with the
fixed parameters it had before CQL2 (``village=&land_use=``, ``bbox=``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.cases.serving import (
    CONCURRENCY,
    ROOT,
    VENV_BIN,
    WORKERS,
    _free_port,
    _gunicorn,
    _load,
    _outcome,
    _rounds,
    _tile,
    _villages,
    _wait,
    _wanted,
    load_setup,
)
from bench.datasets import CACHE
from bench.harness import Outcome
from geo.platform.database import Database

TIPG_VENV = CACHE / "tipg-venv"
TIPG_PACKAGES = ["tipg", "gunicorn", "uvicorn[standard]"]
# the properties tagsim's parcel tiles carry, asked of tipg's tiles too
TILE_PROPS = "village_agency,village_code,parcel_no,land_use,area_m2"
Server = tuple[str, str, list[str], str, list[str] | None]


def _tipg_ready() -> bool:
    python = TIPG_VENV / "bin" / "python"
    if python.exists():
        found = subprocess.run([str(python), "-c", "import tipg"], capture_output=True)
        if found.returncode == 0:
            return True
    try:
        subprocess.run([sys.executable, "-m", "venv", str(TIPG_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *TIPG_PACKAGES], check=True)
    except subprocess.CalledProcessError:
        print("  tipg could not be installed: its baseline is skipped")
        return False
    return True


@contextmanager
def _tipg(url: str, port: int) -> Iterator[str]:
    """tipg on ``url``'s ``public.parcel``, 2 workers, as its documentation runs it."""
    base = f"http://127.0.0.1:{port}"
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    process = subprocess.Popen(
        [
            str(TIPG_VENV / "bin" / "gunicorn"),
            "-w",
            str(WORKERS),
            "-k",
            "uvicorn.workers.UvicornWorker",
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "tipg.main:app",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": dsn,
            "TIPG_DB_SCHEMAS": '["public"]',
            "TIPG_DB_TABLES": '["public.parcel"]',
            "TIPG_MAX_FEATURES_PER_QUERY": "10000",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait(base + "/collections/public.parcel")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _land_uses(url: str, codes: list[str]) -> dict[str, str]:
    """Each village's commonest land use (a filter that selects a real share of it)."""
    with Database(url).connect() as c:
        rows = c.execute(
            text(
                "SELECT DISTINCT ON (village_code) village_code, land_use FROM parcel"
                " WHERE village_code = ANY(:codes) AND land_use IS NOT NULL"
                " GROUP BY village_code, land_use ORDER BY village_code, count(*) DESC"
            ),
            {"codes": codes},
        ).all()
    return {code: use for code, use in rows}


def _q(cql: str) -> str:
    return quote(cql, safe="")


def _shapes(
    servers: dict[str, str], key: str, villages: list[tuple[Any, ...]], uses: dict[str, str]
) -> list[tuple[str, list[Server]]]:
    """Each shape: its name and (label, base, paths, key, bodies) per server."""
    ogc, tipg = "/collections/parcels/items", "/collections/public.parcel/items"
    boxes = [(x0, y0, x1, y1) for x0, y0, x1, y1, *_ in villages]
    bbox = [f"bbox={x0},{y0},{x1},{y1}" for x0, y0, x1, y1 in boxes]
    # tipg 1.6 gives BBOX(...) no SRID ("mixed SRID geometries"): both get the box as a
    # polygon, the same question
    rings = [f"{a} {b}, {c} {b}, {c} {d}, {a} {d}, {a} {b}" for a, b, c, d in boxes]
    picked = [(v[6], uses[v[6]]) for v in villages if v[6] in uses]
    attribute = [_q(f"village_code = '{c}' AND land_use = '{u}'") for c, u in picked]
    fixed = [f"village=hf:{c}&land_use={quote(u)}" for c, u in picked]
    in_village = [_q(f"village_code = '{c}'") for c, _ in picked]
    tiles = sorted({_tile(v[4], v[5], 14) for v in villages})
    mvt_ours = [f"/tiles/parcels/14/{x}/{y}.mvt" for x, y in tiles]
    mvt_tipg = [
        f"/collections/public.parcel/tiles/WebMercatorQuad/14/{x}/{y}?properties={TILE_PROPS}"
        for x, y in tiles
    ]

    def spatial(column: str) -> list[str]:
        return [_q(f"S_INTERSECTS({column}, POLYGON(({r})))") for r in rings]

    def three(ours: list[str], tipg_paths: list[str], thin: list[str]) -> list[Server]:
        return [
            ("tagsim", servers["tagsim"], ours, key, None),
            ("tipg", servers["tipg"], tipg_paths, "", None),
            ("thin", servers["thin"], thin, "", None),
        ]

    def against_fixed(ours: list[str], fixed_paths: list[str]) -> list[Server]:
        return [
            ("tagsim", servers["tagsim"], ours, key, None),
            ("fixed", servers["tagsim"], fixed_paths, key, None),
        ]

    return [
        (
            "items by bbox",
            three(
                [f"{ogc}?{b}&limit=500" for b in bbox],
                [f"{tipg}?{b}&limit=500" for b in bbox],
                [f"/items?{b}&limit=500" for b in bbox],
            ),
        ),
        (
            "CQL2 attribute filter",
            three(
                [f"{ogc}?filter={a}&limit=1000" for a in attribute],
                [f"{tipg}?filter={a}&limit=1000" for a in attribute],
                [f"/items?{f}&limit=1000" for f in fixed],
            ),
        ),
        (
            "CQL2 spatial filter",
            three(
                [f"{ogc}?filter={f}&limit=500" for f in spatial("geometry")],
                [f"{tipg}?filter={f}&limit=500" for f in spatial("geom")],
                [f"/items?{b}&limit=500" for b in bbox],
            ),
        ),
        (
            "sorted by area",
            three(
                [f"{ogc}?filter={v}&sortby=-area_m2&limit=100" for v in in_village],
                [f"{tipg}?filter={v}&sortby=-area_m2&limit=100" for v in in_village],
                [f"/items?village=hf:{c}&sortby=-area_m2&limit=100" for c, _ in picked],
            ),
        ),
        ("MVT z14", three(mvt_ours, mvt_tipg, [f"/tiles/14/{x}/{y}" for x, y in tiles])),
        (
            "MVT z14 no tile cache",
            [
                ("tagsim", servers["cold"], mvt_ours, key, None),
                ("tipg", servers["tipg"], mvt_tipg, "", None),
            ],
        ),
        (
            "filter over fixed parameters: attribute",
            against_fixed(
                [f"{ogc}?filter={a}&limit=1000" for a in attribute],
                [f"{ogc}?{f}&limit=1000" for f in fixed],
            ),
        ),
        (
            "filter over fixed parameters: spatial",
            against_fixed(
                [f"{ogc}?filter={f}&limit=500" for f in spatial("geometry")],
                [f"{ogc}?{b}&limit=500" for b in bbox],
            ),
        ),
    ]


def run(url: str, quick: bool) -> list[Outcome]:
    if shutil.which("ogr2ogr") is None or shutil.which("wrk") is None:
        print("  ogr2ogr or wrk missing (apt-get install gdal-bin wrk): filters case skipped")
        return []
    if not _tipg_ready():
        return []
    key, seconds, rounds, env = load_setup(url, quick)
    outcomes: list[Outcome] = []
    # quick mode (the test suite runs it): the generator's small map only
    for dataset in ("generator",) if quick else ("generator", "tiling"):
        parcels = _load(url, quick, dataset)
        villages = _villages(url, 200)
        uses = _land_uses(url, [v[6] for v in villages])
        size = {"dataset": dataset, "parcels": parcels, "villages": len(villages)}
        print(f"  {dataset}: {parcels} parcels", flush=True)
        ports = [_free_port() for _ in range(4)]
        uncached = {**env, "TAGSIM_TILE_CACHE_MB": "0"}
        with (
            _gunicorn(VENV_BIN, "api.app:create_app()", env, "/healthz", ports[0]) as ours,
            _gunicorn(VENV_BIN, "api.app:create_app()", uncached, "/healthz", ports[1]) as cold,
            _gunicorn(VENV_BIN, "bench.thin:app", env, "/items?bbox=0,0,0,0", ports[2]) as thin,
            _tipg(url, ports[3]) as tipg,
        ):
            bases = {"tagsim": ours, "cold": cold, "thin": thin, "tipg": tipg}
            for shape, servers in _wanted(_shapes(bases, key, villages, uses)):
                case = f"{shape} [{dataset}, c={CONCURRENCY}]"
                results = _rounds(case, servers, rounds, seconds)
                for label, *_ in servers[1:]:
                    outcomes.append(
                        _outcome(f"{shape} vs {label} [{dataset}]", results, "tagsim", label, size)
                    )
    return outcomes
