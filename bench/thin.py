"""The thin wrapper: a minimal WSGI app that runs the serving SQL with psycopg and returns
PostGIS's own output as is — no auth, no audit, no validation (coverage: the same
overlay statement tagsim runs, its rows dumped as they come). The practical limit a
service on the same PostGIS can reach; tagsim is measured against it.

Run under gunicorn like the service: ``gunicorn -w 2 -k gthread bench.thin:app`` with
``THIN_DATABASE_URL`` set.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import psycopg
import shapely

from crosswalk.partners import CROSSWALK
from geo.geodata.features.collections import PARCELS
from geo.geodata.features.coverage import overlay_sql
from geo.geodata.features.tiles import tile_sql
from geo.platform.database import SERVING_OPTIONS

_local = threading.local()

FEATURE = """json_build_object('type', 'Feature', 'id', id,
        'geometry', ST_AsGeoJSON(geom, 7)::json,
        'properties', json_build_object('village_agency', village_agency,
          'village_code', village_code, 'parcel_no', parcel_no, 'land_use', land_use,
          'area_declared', area_declared, 'area_m2', round(area_m2::numeric, 2),
          'upload_id', upload_id, 'valid_from', valid_from, 'valid_to', valid_to))"""

COLLECTION = """
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(f), '[]'),
                         'numberReturned', count(*))::text
FROM (SELECT {feature} AS f FROM parcel WHERE valid_to IS NULL AND {where}
      ORDER BY id + 0 LIMIT %s) x
"""
ITEMS = COLLECTION.format(
    feature=FEATURE, where="ST_Intersects(geom, ST_MakeEnvelope(%s, %s, %s, %s, 4326))"
)
VILLAGE = COLLECTION.format(feature=FEATURE, where="village_agency = %s AND village_code = %s")
# a village's parcels of one land use (the CQL2 attribute filter's hand-written twin)
VILLAGE_USE = COLLECTION.format(
    feature=FEATURE, where="village_agency = %s AND village_code = %s AND land_use = %s"
)
# a village's parcels, largest first (sortby=-area_m2's twin)
SORTED = f"""
SELECT json_build_object('type', 'FeatureCollection', 'features', coalesce(json_agg(f), '[]'),
                         'numberReturned', count(*))::text
FROM (SELECT {FEATURE} AS f FROM parcel
      WHERE valid_to IS NULL AND village_agency = %s AND village_code = %s
      ORDER BY round(area_m2::numeric, 2) DESC, id LIMIT %s) x
"""
ITEM = f"SELECT {FEATURE}::text FROM parcel WHERE id = %s"

# the very statement tagsim's parcel tiles run
TILE = (
    tile_sql(PARCELS, "t.valid_to IS NULL", 14)
    .replace(":z", "%(z)s")
    .replace(":x", "%(x)s")
    .replace(":y", "%(y)s")
    .replace(":margin", "%(margin)s")
    .replace(":layer", "%(layer)s")
)

# the very statement tagsim's coverage runs (parcels, plan zones, divisions, unions)
COVERAGE = (
    overlay_sql("t.valid_to IS NULL", "t.valid_to IS NULL", CROSSWALK)
    .replace(":plot", "%(plot)s")
    .replace(":as_of", "%(as_of)s")
)


def _conn() -> psycopg.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        url = os.environ["THIN_DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
        # the session settings tagsim's request pools use (no parallel plans, no JIT)
        conn = _local.conn = psycopg.connect(url, autocommit=True, options=SERVING_OPTIONS)
    return conn


def _row(sql: str, params: Any) -> dict[str, Any]:
    with _conn().cursor() as cur:
        cur.execute(sql, params)
        names = [d.name for d in cur.description or []]
        return dict(zip(names, cur.fetchone() or (), strict=True))


def _one(sql: str, params: Any) -> Any:
    with _conn().cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]  # type: ignore[index]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/items" and "village" in query:
        agency, code = query["village"].split(":")
        limit = int(query.get("limit", 10))
        if "land_use" in query:
            body = _one(VILLAGE_USE, (agency, code, query["land_use"], limit)).encode()
        elif query.get("sortby") == "-area_m2":
            body = _one(SORTED, (agency, code, limit)).encode()
        else:
            body = _one(VILLAGE, (agency, code, limit)).encode()
        media = "application/geo+json"
    elif path == "/items":
        x0, y0, x1, y1 = (float(v) for v in query["bbox"].split(","))
        body = _one(ITEMS, (x0, y0, x1, y1, int(query.get("limit", 10)))).encode()
        media = "application/geo+json"
    elif path.startswith("/items/"):
        body = _one(ITEM, (int(path.removeprefix("/items/")),)).encode()
        media = "application/geo+json"
    elif path.startswith("/tiles/"):
        z, x, y = (int(v) for v in path.removeprefix("/tiles/").split("/"))
        body = bytes(_one(TILE, {"z": z, "x": x, "y": y, "margin": 64 / 4096, "layer": "parcels"}))
        media = "application/vnd.mapbox-vector-tile"
    elif path == "/coverage":
        size = int(environ.get("CONTENT_LENGTH") or 0)
        plot = shapely.to_wkb(shapely.from_geojson(environ["wsgi.input"].read(size)))
        row = _row(COVERAGE, {"plot": plot, "as_of": None})
        body = json.dumps(row, default=str).encode()
        media = "application/json"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    start_response("200 OK", [("Content-Type", media), ("Content-Length", str(len(body)))])
    return [body]
