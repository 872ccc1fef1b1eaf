"""A collection's vector tiles in one file: a PMTiles v3 archive a map reads with range
requests, no tile server (MapLibre with the ``pmtiles`` protocol, QGIS, GDAL).

Tiles are made a zoom at a time by one statement: each feature is placed in every tile its
box (with the tiles' 64-pixel buffer) touches, and ``ST_AsMVT`` aggregates each tile's
features, the same properties and geometry rules as the served tiles
(:mod:`geo.geodata.features.tiles`). A tile per statement, as the service does, would cost
a round trip per tile; a national parcel layer has some 10⁵ of them. Tiles are gzipped
(what the PMTiles readers expect of vector tiles) and identical tiles stored once.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

from pmtiles.tile import Compression, TileType, zxy_to_tileid
from pmtiles.writer import Writer
from sqlalchemy import Connection, text

from geo.geodata.features.query import FeatureQuery
from geo.geodata.features.tiles import BUFFER, EXTENT, tile_columns, tile_geometry

__all__ = ["PMTILES_MEDIA_TYPE", "max_zoom_of", "write_pmtiles"]

PMTILES_MEDIA_TYPE = "application/vnd.pmtiles"
HALF = 20037508.342789244  # half the Web Mercator world's width, in metres
DETAIL_ZOOM = 15  # parcels and plates: a 1.2 km tile; maps zoom further on the same tiles
OVERVIEW_ZOOM = 10  # divisions and zones


def max_zoom_of(q: FeatureQuery) -> int:
    return DETAIL_ZOOM if q.collection.min_zoom >= 12 else OVERVIEW_ZOOM


def write_pmtiles(conn: Connection, q: FeatureQuery, path: Path) -> int:
    """Write the tiles of the features ``q`` selects, ``min_zoom`` to :func:`max_zoom_of`,
    to ``path``; the number of tiles that hold something."""
    c = q.collection
    top = max_zoom_of(q)
    where, params = q.where(conn)
    written = 0
    # generate_series' guess (1,000 tiles a feature) makes the plan look huge, and JIT then
    # spent ~1 s compiling each zoom's statement, for 1,000 parcels as for a million
    if conn.in_transaction():  # (on the driver: the connection may be set to stream)
        conn.connection.driver_connection.execute("SET LOCAL jit = off")  # type: ignore[union-attr]
    bounds = conn.execute(
        text(
            f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM"
            f" (SELECT ST_Extent({c.geometry}) AS e FROM {c.table} WHERE {where}) b"
        ),
        params,
    ).one()
    # the default view: on a feature (a tiling's bounding box centre may fall between them)
    center = conn.execute(
        text(
            f"SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface({c.geometry}) AS p"
            f" FROM {c.table} WHERE {where} AND {c.geometry} IS NOT NULL"
            f" AND ST_Dimension({c.geometry}) = 2 ORDER BY t.id LIMIT 1) f"
        ),
        params,
    ).first()
    with path.open("wb") as out:
        writer = Writer(out)
        for z in range(c.min_zoom, top + 1):
            rows = conn.execution_options(stream_results=True, yield_per=500).execute(
                text(_zoom_sql(q, where, z)),
                {**params, "z": z, "layer": c.id, "margin": BUFFER / EXTENT},
            )
            for x, y, data in rows:
                if not data:  # every feature clipped away (ST_AsMVT leaves NULLs out)
                    continue
                writer.write_tile(zxy_to_tileid(z, x, y), gzip.compress(bytes(data), mtime=0))
                written += 1
        if written == 0:  # (a reader needs one tile at least: an empty one)
            writer.write_tile(zxy_to_tileid(c.min_zoom, 0, 0), gzip.compress(b"", mtime=0))
        writer.finalize(_header(bounds, center, c.min_zoom, top), _metadata(q, top))
    return written


def _zoom_sql(q: FeatureQuery, where: str, z: int) -> str:
    """Every tile of zoom ``z`` as (x, y, MVT); a tile whose features all clipped away is
    empty (no "WHERE geom IS NOT NULL": pushed into the scan, it ran ST_AsMVTGeom twice;
    see `tiles.tile_sql`)."""
    c = q.collection
    props = [name for name, _, _ in c.properties if name in c.tile_properties]
    exprs, geometry = tile_columns(c), tile_geometry(c, z)  # (as the served tiles)
    width = 2 * HALF / (1 << z)
    last = (1 << z) - 1
    row = ", ".join(f"m.{p}" for p in ["id", *props, "geom"])
    return f"""
        WITH f AS (
            SELECT t.id, {exprs}, ST_Transform({geometry}, 3857) AS g
            FROM {c.table} WHERE {where} AND {c.geometry} IS NOT NULL
        ), r AS (
            SELECT f.*,
                greatest(floor((ST_XMin(g) + {HALF}) / {width} - :margin), 0)::int AS x0,
                least(floor((ST_XMax(g) + {HALF}) / {width} + :margin), {last})::int AS x1,
                greatest(floor(({HALF} - ST_YMax(g)) / {width} - :margin), 0)::int AS y0,
                least(floor(({HALF} - ST_YMin(g)) / {width} + :margin), {last})::int AS y1
            FROM f
        ), m AS (
            SELECT tx AS x, ty AS y, r.id, {", ".join(f"r.{p}" for p in props)},
                ST_AsMVTGeom(r.g, ST_TileEnvelope(:z, tx, ty), {EXTENT}, {BUFFER}, true) AS geom
            FROM r, generate_series(r.x0, r.x1) tx, generate_series(r.y0, r.y1) ty
        )
        SELECT m.x, m.y, ST_AsMVT(feature, :layer, {EXTENT}, 'geom', 'id')
        FROM m CROSS JOIN LATERAL (SELECT {row}) feature
        GROUP BY m.x, m.y
        """


def _header(bounds: Any, center: Any, min_zoom: int, max_zoom: int) -> dict[str, Any]:
    world = (-180, -85, 180, 85)  # (no feature: the whole map)
    x0, y0, x1, y1 = (v if v is not None else d for v, d in zip(bounds, world, strict=True))
    cx, cy = center if center is not None else ((x0 + x1) / 2, (y0 + y1) / 2)
    return {
        "tile_type": TileType.MVT,
        "tile_compression": Compression.GZIP,
        "min_zoom": min_zoom,
        "max_zoom": max_zoom,
        "min_lon_e7": int(x0 * 1e7),
        "min_lat_e7": int(y0 * 1e7),
        "max_lon_e7": int(x1 * 1e7),
        "max_lat_e7": int(y1 * 1e7),
        "center_zoom": min(min_zoom + 2, max_zoom) if min_zoom else 5,
        "center_lon_e7": int(cx * 1e7),
        "center_lat_e7": int(cy * 1e7),
    }


def _metadata(q: FeatureQuery, max_zoom: int) -> dict[str, Any]:
    """TileJSON-style metadata: the layer and its fields (what MapLibre and GDAL read)."""
    c = q.collection
    kinds = {"string": "String", "number": "Number", "integer": "Number"}
    return {
        "name": c.title,
        "description": c.description,
        "attribution": "tagsim",
        "vector_layers": [
            {
                "id": c.id,
                "minzoom": c.min_zoom,
                "maxzoom": max_zoom,
                "fields": {
                    name: kinds.get(kind, "String")
                    for name, _, kind in c.properties
                    if name in c.tile_properties
                },
            }
        ],
    }
