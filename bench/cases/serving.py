"""Serving under load: tagsim vs the thin wrapper (and pygeoapi for items), with ``wrk``.

Every server runs under gunicorn with the same worker count and worker class, on the same
database and table, and is loaded from 127.0.0.1 only, for a bounded time, at concurrency
8. Rounds alternate between servers; the throughput ratio of the medians is printed
(higher is better for us), with median and p95 latency.

Shapes: items by bbox (one village's extent, ``limit=500``), one item by id, a village's
parcels (``village=hf:CODE``, ``limit=1000``), MVT tiles at zoom 14 over villages, coverage
of a 2–5 ha round plot; each at concurrency 8 and 1, on two maps: the generator's
(parcels apart) and the tiling (:mod:`bench.tiling`, neighbours sharing edges). One item by
id is also asked of the thin wrapper's query behind a bare Flask route (`bench.thin_flask`):
the floor a Flask app stands on.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from bench.cases.parcels import _file
from bench.datasets import CACHE, ogr2ogr_load
from bench.harness import Outcome
from bench.latency_plot import plot, round_plot, sweep
from bench.tiling import tiling_files
from geo.access.control import create_key
from geo.platform.database import Database

WORKERS = 2
THREADS = 4
CONCURRENCY = 8
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PYGEOAPI_VENV = CACHE / "pygeoapi-venv"

WRK_SCRIPT = """
local paths = {}
for line in io.lines(os.getenv("WRK_PATHS")) do paths[#paths + 1] = line end
local method = os.getenv("WRK_METHOD") or "GET"
local key = os.getenv("WRK_KEY")
local body_file = os.getenv("WRK_BODIES")
local bodies = {}
if body_file then for line in io.lines(body_file) do bodies[#bodies + 1] = line end end
local i = math.random(#paths)
request = function()
  i = i % #paths + 1
  local headers = {}
  if key and key ~= "" then headers["Authorization"] = "Bearer " .. key end
  if method == "POST" then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", paths[1], headers, bodies[(i % #bodies) + 1])
  end
  return wrk.format("GET", paths[i], headers)
end
done = function(summary, latency, requests)
  io.write(string.format("JSON{\\"rps\\": %f, \\"p50_ms\\": %f, \\"p95_ms\\": %f, " ..
    "\\"errors\\": %d, \\"non2xx\\": %d, \\"requests\\": %d}\\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.errors.status, summary.requests))
end
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, headers: dict[str, str] | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def _gunicorn(
    python_bin: Path, app: str, env: dict[str, str], ready: str, port: int
) -> Iterator[str]:
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(python_bin / "gunicorn"),
            "-w",
            str(WORKERS),
            "-k",
            "gthread",
            "--threads",
            str(THREADS),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            app,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait(base + ready)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


# (file, parcel layer, zone layer, village code, parcel number, land use, declared area)
def _source(quick: bool, dataset: str) -> tuple[Path, str, str, str, str, str, str]:
    if dataset == "tiling":
        path = tiling_files(quick).geopackage
        return path, "parcels", "zone", "village_code", "parcel_no", "landuse", "area"
    _file(quick)
    path = CACHE / f"parcels_{'small' if quick else 'national'}.gpkg"
    return path, "parcels", "zones", "code_hf", "shomare", "karbari", "masahat"


def _load(url: str, quick: bool, dataset: str) -> int:
    """The parcel layer of ``dataset`` and its plan zones, loaded straight with ogr2ogr
    (the load is not what this case measures) in place of what the table held."""
    path, parcels, zones, code, number, use, area = _source(quick, dataset)
    with Database(url).begin() as c:
        c.execute(text("TRUNCATE parcel, guide_plan CASCADE"))
    ogr2ogr_load(url, path, parcels, "bench_parcels")
    ogr2ogr_load(url, path, zones, "bench_zones")
    with Database(url).begin() as c:
        # No registry here: the HF code's first two digits (its province) stand in for
        # the MOI province code, so the layer is partitioned by province as in service.
        c.execute(
            text(
                "SELECT parcel_ensure_partition(p)"
                f" FROM (SELECT DISTINCT left({code}, 2) AS p FROM bench_parcels) d"
            )
        )
    with Database(url).begin() as c:
        c.execute(
            text(
                "INSERT INTO parcel (village_agency, village_code, parcel_no, land_use,"
                " area_declared, area_m2, geom, province)"
                f" SELECT 'hf', {code}, {number}, {use}, {area}, ST_Area(geom::geography),"
                f" ST_Multi(geom), left({code}, 2) FROM bench_parcels"
            )
        )
        c.execute(
            text(
                "INSERT INTO guide_plan (village_agency, village_code, zone)"
                f" SELECT 'hf', {code}, ST_Multi(geom) FROM bench_zones"
            )
        )
        count = c.execute(text("SELECT count(*) FROM bench_parcels")).scalar_one()
        c.execute(text("DROP TABLE bench_parcels, bench_zones"))
    with Database(url).connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE parcel"))
        c.execute(text("VACUUM ANALYZE guide_plan"))
    return int(count)


def _villages(url: str, n: int) -> list[tuple[Any, ...]]:
    """Up to ``n`` villages: their parcel extent, a point inside a parcel, their code and
    one parcel's id."""
    with Database(url).connect() as c:
        rows = c.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), ST_X(p), ST_Y(p),"
                " village_code, first_id FROM ("
                " SELECT ST_Extent(geom)::geometry AS e, village_code,"
                "        ST_PointOnSurface((array_agg(geom ORDER BY id))[1]) AS p,"
                "        min(id) AS first_id"
                " FROM parcel GROUP BY village_code ORDER BY village_code) v"
            )
        ).all()
    random.Random(14).shuffle(rows)
    return [tuple(r) for r in rows[:n]]


def _item_ids(url: str, n: int) -> list[int]:
    """``n`` parcel ids drawn evenly over the table."""
    with Database(url).connect() as c:
        return list(
            c.execute(
                text("SELECT id FROM parcel ORDER BY hashint8(id) LIMIT :n"),
                {"n": n},
            ).scalars()
        )


def _tile(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 1 << z
    return (
        int((lon + 180) / 360 * n),
        int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n),
    )


def _wrk(
    base: str,
    paths: list[str],
    seconds: int,
    key: str = "",
    bodies: list[str] | None = None,
    concurrency: int = CONCURRENCY,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "rotate.lua"
        script.write_text(WRK_SCRIPT)
        path_file = Path(tmp) / "paths.txt"
        path_file.write_text("\n".join(paths) + "\n")
        env = {**os.environ, "WRK_PATHS": str(path_file), "WRK_KEY": key}
        if bodies:
            body_file = Path(tmp) / "bodies.txt"
            body_file.write_text("\n".join(bodies) + "\n")
            env.update(WRK_METHOD="POST", WRK_BODIES=str(body_file))
        done = subprocess.run(
            [
                "wrk",
                "-t",
                str(min(2, concurrency)),
                "-c",
                str(concurrency),
                "-d",
                f"{seconds}s",
                "--timeout",
                "30s",
                "-s",
                str(script),
                base,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=seconds + 60,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed on {base}{paths[0]}: {done.stderr[-500:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("JSON"))
    result = json.loads(line[4:])
    if result["errors"] or result["non2xx"]:
        raise RuntimeError(f"{base}{paths[0]}: {result} — the server answered errors")
    return result


def _pygeoapi(url: str, port: int) -> tuple[Path, dict[str, str]] | None:
    """pygeoapi in its own virtualenv, configured on the same table; None if it cannot be
    installed here."""
    python = PYGEOAPI_VENV / "bin" / "python"
    ready = (
        subprocess.run(
            [str(python), "-c", "import geoalchemy2, pygeoapi"], check=False, capture_output=True
        ).returncode
        == 0
        if python.exists()
        else False
    )
    if not ready:
        try:
            subprocess.run([sys.executable, "-m", "venv", str(PYGEOAPI_VENV)], check=True)
            subprocess.run(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "pygeoapi",
                    "gunicorn",
                    "psycopg2-binary",
                    "sqlalchemy",
                    "geoalchemy2",
                ],
                check=True,
            )
        except subprocess.CalledProcessError:
            print("  pygeoapi could not be installed: its baseline is skipped")
            return None
    u = make_url(url)
    folder = CACHE / "pygeoapi"
    folder.mkdir(exist_ok=True)
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": 10, "max_items": 10000},
            "map": {"url": "http://127.0.0.1/{z}/{x}/{y}.png", "attribution": "none"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "bench",
                "keywords": ["bench"],
                "keywords_type": "theme",
                "terms_of_service": "none",
                "url": "http://127.0.0.1",
            },
            "license": {"name": "none", "url": "http://127.0.0.1"},
            "provider": {"name": "bench", "url": "http://127.0.0.1"},
            "contact": {
                "name": "bench",
                "position": "bench",
                "address": "x",
                "city": "x",
                "stateorprovince": "x",
                "postalcode": "x",
                "country": "IR",
                "phone": "x",
                "fax": "x",
                "email": "x@127.0.0.1",
                "url": "x",
                "hours": "x",
                "instructions": "x",
                "role": "pointOfContact",
            },
        },
        "resources": {
            "parcels": {
                "type": "collection",
                "title": "parcels",
                "description": "parcels",
                "keywords": ["parcels"],
                "extents": {
                    "spatial": {
                        "bbox": [44, 25, 63.4, 39.8],
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    }
                },
                "providers": [
                    {
                        "type": "feature",
                        "name": "PostgreSQL",
                        "data": {
                            "host": u.host,
                            "port": u.port,
                            "dbname": u.database,
                            "user": u.username,
                            "password": u.password,
                            "search_path": ["public"],
                        },
                        "id_field": "id",
                        "table": "parcel",
                        "geom_field": "geom",
                    }
                ],
            }
        },
    }
    config_path = folder / "config.yml"
    config_path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    openapi_path = folder / "openapi.yml"
    env = {"PYGEOAPI_CONFIG": str(config_path), "PYGEOAPI_OPENAPI": str(openapi_path)}
    generated = subprocess.run(
        [
            str(PYGEOAPI_VENV / "bin" / "pygeoapi"),
            "openapi",
            "generate",
            str(config_path),
            "--output-file",
            str(openapi_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=False,
    )
    if generated.returncode != 0:
        print(f"  pygeoapi openapi generate failed: {generated.stderr[-400:]}")
        return None
    return PYGEOAPI_VENV / "bin", env


def _rounds(
    name: str,
    servers: list[tuple[str, str, list[str], str, list[str] | None]],
    rounds: int,
    seconds: int,
    concurrency: int = CONCURRENCY,
) -> dict[str, list[dict[str, Any]]]:
    """Each round loads every server once, the order turning each round."""
    results: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in servers}
    for i in range(rounds):
        order = servers[i % len(servers) :] + servers[: i % len(servers)]
        for label, base, paths, key, bodies in order:
            results[label].append(_wrk(base, paths, seconds, key, bodies, concurrency))
    for label, runs in results.items():
        rps = sorted(r["rps"] for r in runs)[len(runs) // 2]
        p50 = sorted(r["p50_ms"] for r in runs)[len(runs) // 2]
        p95 = sorted(r["p95_ms"] for r in runs)[len(runs) // 2]
        print(
            f"  {name:<40} {label:<9} {rps:8.1f} req/s   p50 {p50:7.1f} ms   p95 {p95:7.1f} ms",
            flush=True,
        )
    return results


def _outcome(
    case: str,
    results: dict[str, list[dict[str, Any]]],
    ours: str,
    base: str,
    size: dict[str, Any],
    concurrency: int = CONCURRENCY,
) -> Outcome:
    """An Outcome in seconds per request (1 / throughput), so ratio < 1 means faster."""
    out = Outcome(
        case,
        ours,
        base,
        len(results[ours]),
        size=size,
        note=f"throughput at concurrency {concurrency}; ratio = their req/s ÷ ours (below 1:"
        " ours faster)",
    )
    out.ours_s = [1 / r["rps"] for r in results[ours]]
    out.baseline_s = [1 / r["rps"] for r in results[base]]
    p = {
        label: {
            "p50_ms": sorted(r["p50_ms"] for r in runs)[len(runs) // 2],
            "p95_ms": sorted(r["p95_ms"] for r in runs)[len(runs) // 2],
        }
        for label, runs in results.items()
    }
    out.size = {**size, "latency": p}
    print(
        f"{case:<46} throughput ours/{base} = {out.baseline_median / out.ours_median:5.2f}",
        flush=True,
    )
    return out


def _shapes(
    ours: str,
    cold: str,
    thin: str,
    key: str,
    villages: list[tuple[Any, ...]],
    ids: list[int],
    floor: str | None = None,
) -> list[tuple[str, list[tuple[str, str, list[str], str, list[str] | None]]]]:
    """Each request shape: its name and (label, base, paths, key, bodies) per server
    (``cold``: tagsim without its tile cache; ``floor``: the thin wrapper's item query
    behind a bare Flask route, `bench.thin_flask`)."""
    items = [f"?bbox={x0},{y0},{x1},{y1}&limit=500" for x0, y0, x1, y1, *_ in villages]
    codes = [v[6] for v in villages]
    tiles = sorted({_tile(v[4], v[5], 14) for v in villages})
    bodies = [
        round_plot(v[4], v[5], random.Random(i).uniform(80, 125)).decode()
        for i, v in enumerate(villages)
    ]
    return [
        (
            "items by bbox",
            [
                ("tagsim", ours, [f"/collections/parcels/items{q}" for q in items], key, None),
                ("thin", thin, [f"/items{q}" for q in items], "", None),
            ],
        ),
        (
            "one item by id",
            [
                ("tagsim", ours, [f"/collections/parcels/items/{i}" for i in ids], key, None),
                ("thin", thin, [f"/items/{i}" for i in ids], "", None),
                *([("flask", floor, [f"/items/{i}" for i in ids], "", None)] if floor else []),
            ],
        ),
        (
            "a village's parcels",
            [
                (
                    "tagsim",
                    ours,
                    [f"/collections/parcels/items?village=hf:{c}&limit=1000" for c in codes],
                    key,
                    None,
                ),
                ("thin", thin, [f"/items?village=hf:{c}&limit=1000" for c in codes], "", None),
            ],
        ),
        (
            "MVT z14",  # tagsim's tile cache warm after the first round
            [
                ("tagsim", ours, [f"/tiles/parcels/14/{x}/{y}.mvt" for x, y in tiles], key, None),
                ("thin", thin, [f"/tiles/14/{x}/{y}" for x, y in tiles], "", None),
            ],
        ),
        (
            "MVT z14 no tile cache",
            [
                ("tagsim", cold, [f"/tiles/parcels/14/{x}/{y}.mvt" for x, y in tiles], key, None),
                ("thin", thin, [f"/tiles/14/{x}/{y}" for x, y in tiles], "", None),
            ],
        ),
        (
            "coverage 2-5 ha",
            [
                ("tagsim", ours, ["/coverage"], key, bodies),
                ("thin", thin, ["/coverage"], "", bodies),
            ],
        ),
    ]


def _wanted(shapes: list[Any]) -> list[Any]:
    """The shapes ``BENCH_SHAPES`` names (comma-separated parts of their names), else all."""
    wanted = [w.strip() for w in os.environ.get("BENCH_SHAPES", "").split(",") if w.strip()]
    return [s for s in shapes if not wanted or any(w in s[0] for w in wanted)]


def load_setup(url: str, quick: bool) -> tuple[str, int, int, dict[str, str]]:
    """What a load case needs: a reader key, seconds and rounds per server, and the
    servers' environment (the database, a rate limit no load reaches)."""
    with Database(url).begin() as c:
        key = create_key(c, "sci", "reader", "bench")["key"]
    seconds, rounds = (2, 2) if quick else (10, 3)
    env = {
        "TAGSIM_DATABASE_URL": url,
        "TAGSIM_RATE_LIMIT": "100000000 per minute",
        "THIN_DATABASE_URL": url,
    }
    return key, seconds, rounds, env


def run(url: str, quick: bool) -> list[Outcome]:
    if shutil.which("ogr2ogr") is None or shutil.which("wrk") is None:
        print("  ogr2ogr or wrk missing (apt-get install gdal-bin wrk): serving case skipped")
        return []
    key, seconds, rounds, env = load_setup(url, quick)
    outcomes: list[Outcome] = []
    for dataset in ("generator", "tiling"):
        parcels = _load(url, quick, dataset)
        villages = _villages(url, 200)
        ids = _item_ids(url, 500)
        size = {"dataset": dataset, "parcels": parcels, "villages": len(villages)}
        print(f"  {dataset}: {parcels} parcels", flush=True)
        ours_port, cold_port, thin_port = _free_port(), _free_port(), _free_port()
        floor_port = _free_port()
        uncached = {**env, "TAGSIM_TILE_CACHE_MB": "0"}
        with (
            _gunicorn(VENV_BIN, "api.app:create_app()", env, "/healthz", ours_port) as ours,
            _gunicorn(VENV_BIN, "api.app:create_app()", uncached, "/healthz", cold_port) as cold,
            _gunicorn(VENV_BIN, "bench.thin:app", env, "/items?bbox=0,0,0,0", thin_port) as thin,
            _gunicorn(
                VENV_BIN, "bench.thin_flask:app", env, f"/items/{ids[0]}", floor_port
            ) as floor,
        ):
            shapes = _wanted(_shapes(ours, cold, thin, key, villages, ids, floor))
            if dataset == "generator" and shapes and shapes[0][0] == "items by bbox":
                outcomes += _against_pygeoapi(url, shapes[0][1], rounds, seconds, size)
            for concurrency in (CONCURRENCY,) if quick else (CONCURRENCY, 1):
                for shape, servers in shapes:
                    case = f"{shape} vs thin [{dataset}, c={concurrency}]"
                    results = _rounds(case, servers, rounds, seconds, concurrency)
                    outcomes.append(_outcome(case, results, "tagsim", "thin", size, concurrency))
                    if "flask" in results:  # what a bare Flask route reaches on this shape
                        floor_case = f"{shape}, bare Flask vs thin [{dataset}, c={concurrency}]"
                        outcomes.append(
                            _outcome(floor_case, results, "flask", "thin", size, concurrency)
                        )
            if dataset == "generator" and not os.environ.get("BENCH_SHAPES"):
                *_, lon, lat, _code, _id = villages[0]
                picture = plot(sweep(ours, thin, key, lon, lat), "quick" if quick else "full")
                print(f"  latency against result size: {picture}", flush=True)
    return outcomes


def _against_pygeoapi(
    url: str,
    servers: list[tuple[str, str, list[str], str, list[str] | None]],
    rounds: int,
    seconds: int,
    size: dict[str, Any],
) -> list[Outcome]:
    """Items by bbox, tagsim against pygeoapi on the same table (none if it cannot be
    installed here)."""
    port = _free_port()
    pyg = _pygeoapi(url, port)
    if pyg is None:
        return []
    ours = servers[0]
    paths = [f"{p}&f=json" for p in ours[2]]
    with _gunicorn(pyg[0], "pygeoapi.flask_app:APP", pyg[1], "/collections/parcels", port) as base:
        results = _rounds(
            "items by bbox vs pygeoapi",
            [ours, ("pygeoapi", base, paths, "", None)],
            rounds,
            seconds,
        )
    return [_outcome("items by bbox vs pygeoapi", results, "tagsim", "pygeoapi", size)]
