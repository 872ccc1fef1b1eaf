"""Vector tiles of a collection (Mapbox Vector Tiles) and their TileJSON.

Tiles take the collection's filters and ``datetime``. Each answer carries an ETag (a hash
of the tile) and ``Cache-Control: private, no-cache``: a browser keeps the tile but asks
again every time, and gets ``304 Not Modified`` until the data under it changes.
"""

from __future__ import annotations

from api.ogc.features import IRAN_BBOX, feature_query
from api.ogc.request import OgcRequest, OgcResponse, dumps
from geo.geodata.features.collections import get_collection
from geo.geodata.features.tile_cache import TileCache
from geo.geodata.features.tiles import MAX_ZOOM, tile

__all__ = ["MVT", "tilejson", "vector_tile"]

MVT = "application/vnd.mapbox-vector-tile"


def vector_tile(
    req: OgcRequest,
    collection_id: str,
    z: int,
    x: int,
    y: int,
    cache: TileCache | None = None,
) -> OgcResponse:
    """One Mapbox vector tile of the collection; 304 when the client's copy is current.
    ``cache``: the process's tiles, for a tile asked with no filter and no date."""
    c = get_collection(collection_id)
    q = feature_query(req, c, default_limit=None)
    result = tile(req.conn(), q, z, x, y, cache, plain=not req.args)
    headers = {"Cache-Control": "private, no-cache"}
    if req.if_none_match(result.etag):
        return OgcResponse(b"", MVT, 304, headers, audit_rows=1, etag=result.etag)
    return OgcResponse(result.data, MVT, headers=headers, audit_rows=1, etag=result.etag)


def tilejson(req: OgcRequest, collection_id: str) -> OgcResponse:
    """TileJSON 3.0 of the collection's tiles (for MapLibre and other map clients)."""
    c = get_collection(collection_id)
    template = req.href(f"tiles/{c.id}") + "/{z}/{x}/{y}.mvt"
    fields = {name: kind for name, _, kind in c.properties if name in c.tile_properties}
    layer = {"id": c.id, "minzoom": c.min_zoom, "maxzoom": MAX_ZOOM, "fields": fields}
    return OgcResponse(
        dumps(
            {
                "tilejson": "3.0.0",
                "name": c.title,
                "tiles": [template],
                "minzoom": c.min_zoom,
                "maxzoom": MAX_ZOOM,
                "bounds": IRAN_BBOX,
                "vector_layers": [layer],
            }
        )
    )
