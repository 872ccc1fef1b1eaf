"""Mapbox vector tiles from PostGIS (``ST_AsMVT``), in Web Mercator's tile grid.

Below a collection's ``min_zoom`` a tile is empty (parcels at zoom 5 would be millions of
specks); divisions are simplified to the tile's resolution. The tile's ETag is a hash of
its bytes, so a client's cached tile is revalidated cheaply and never served stale after
a change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Connection

from geo.errors import InvalidParameter, NotFound
from geo.geodata.features.collections import Collection
from geo.geodata.features.query import FeatureQuery
from geo.geodata.features.tile_cache import TileCache
from geo.platform.database import read_row

__all__ = [
    "MAX_ZOOM",
    "Tile",
    "parcel_tile_cache",
    "tile",
    "tile_columns",
    "tile_geometry",
    "tile_sql",
]

MAX_ZOOM = 22
EXTENT = 4096
BUFFER = 64


@dataclass(frozen=True)
class Tile:
    data: bytes
    etag: str


def _check(z: int, x: int, y: int) -> None:
    if not 0 <= z <= MAX_ZOOM:
        raise InvalidParameter(f"zoom is from 0 to {MAX_ZOOM}", code="bad_tile", field="z")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):  # well-formed, but no such tile: as any missing thing
        raise NotFound(
            f"tile {z}/{x}/{y} is outside the grid (x and y from 0 to {n - 1})",
            code="no_such_tile",
        )


def tile_columns(c: Collection) -> str:
    """The properties a tile of ``c`` carries, as SQL select items."""
    return ", ".join(
        f"{expr} AS {name}" for name, expr, _ in c.properties if name in c.tile_properties
    )


def tile_geometry(c: Collection, z: int) -> str:
    """``c``'s geometry as zoom ``z``'s tiles draw it (EPSG:4326): divisions' boundaries
    simplified to about a pixel."""
    if c.versioned:
        return c.geometry
    return f"ST_Simplify({c.geometry}, {360.0 / (1 << z) / EXTENT})"


def tile_sql(c: Collection, where: str, z: int) -> str:
    """The statement making one tile of ``c`` (parameters ``z``, ``x``, ``y``, ``margin``,
    ``layer`` and those of ``where``); the bench's thin wrapper runs it too."""
    props, geometry = tile_columns(c), tile_geometry(c, z)
    # No "WHERE geom IS NOT NULL" on the features: ST_AsMVT leaves out a feature whose
    # clipped geometry is NULL by itself, and PostgreSQL pushed that filter down into the
    # scan, so ST_AsMVTGeom ran twice per feature (a z14 tile of a tiling 11.4 -> 7.0 ms;
    # the tiles are byte for byte the same).
    return f"""
        WITH box AS (
            SELECT ST_TileEnvelope(:z, :x, :y) AS env,
                   -- (the margin clipped to the world: past the antimeridian it would wrap)
                   ST_Transform(ST_ClipByBox2D(ST_TileEnvelope(:z, :x, :y, margin => :margin),
                     ST_TileEnvelope(0, 0, 0)), 4326) AS env4326),
        mvt AS (
            SELECT t.id, {props},
                ST_AsMVTGeom(ST_Transform({geometry}, 3857), box.env, {EXTENT}, {BUFFER}, true)
                  AS geom
            FROM {c.table}, box
            WHERE {where} AND {c.geometry} && box.env4326
        )
        SELECT coalesce(ST_AsMVT(mvt, :layer, {EXTENT}, 'geom', 'id'), '')
        FROM mvt
        """


def parcel_tile_cache(megabytes: int) -> TileCache:
    """A process's cache of plain parcel tiles (``megabytes`` of them; 0: none)."""
    return TileCache("parcels", megabytes << 20, BUFFER / EXTENT)


def tile(
    conn: Connection,
    q: FeatureQuery,
    z: int,
    x: int,
    y: int,
    cache: TileCache | None = None,
    plain: bool = False,
) -> Tile:
    """The tile z/x/y of the features ``q`` selects (its bbox and paging are ignored);
    from ``cache`` when it holds the collection's tiles and ``plain`` (no filter, no date:
    the tile of the collection as it is now)."""
    _check(z, x, y)
    if cache is not None and plain and q.collection.dataset == cache.dataset:
        return cache.get(
            conn, (q.collection.id, z, x, y), lambda: _tile(conn, q, z, x, y), lambda t: t.data
        )
    return _tile(conn, q, z, x, y)


def _tile(conn: Connection, q: FeatureQuery, z: int, x: int, y: int) -> Tile:
    c: Collection = q.collection
    if z < c.min_zoom:
        data = b""
    else:
        # No province lookup first (items by bbox do one): a tile is a few km, each
        # partition's GiST index rules it out in microseconds, and without a list of
        # provinces the statement's plan is made once per connection (generic), where the
        # lookup cost a round trip and a plan per tile (measured on 1.2 M parcels: 7.56 ms a
        # tile without, 7.75 with; `docs/scaling.md`).
        q.bbox = None
        where, params = q.where(conn)
        params.update({"z": z, "x": x, "y": y, "margin": BUFFER / EXTENT, "layer": c.id})
        row = read_row(conn, tile_sql(c, where, z), params)
        data = bytes(row[0] or b"") if row is not None else b""
    digest = hashlib.blake2b(data, digest_size=12).hexdigest()
    return Tile(data, f"{c.id}-{z}-{digest}")
