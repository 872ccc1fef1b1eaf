"""Vector tiles of a collection (Mapbox Vector Tiles), their TileJSON, and the OGC API –
Tiles documents that lead a client to them (tile matrix set, tilesets, tileset).

Tiles take the collection's filters and ``datetime``. Each answer carries an ETag (a hash
of the tile) and ``Cache-Control: private, no-cache``: a browser keeps the tile but asks
again every time, and gets ``304 Not Modified`` until the data under it changes.
"""

from __future__ import annotations

from typing import Any

from api.ogc.features import IRAN_BBOX, feature_query
from api.ogc.request import OgcRequest, OgcResponse, dumps
from geo.errors import NotFound
from geo.geodata.features.collections import get_collection
from geo.geodata.features.tile_cache import TileCache
from geo.geodata.features.tiles import MAX_ZOOM, tile

__all__ = [
    "MVT",
    "tile_matrix_set",
    "tile_matrix_sets",
    "tilejson",
    "tileset",
    "tilesets",
    "vector_tile",
]

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


# OGC API – Tiles: the discovery documents that lead a client to the same MVT tiles.
WEB_MERCATOR_QUAD = "WebMercatorQuad"
TMS_URI = "http://www.opengis.net/def/tilematrixset/OGC/1.0/WebMercatorQuad"
TILING_SCHEME_REL = "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme"
_HALF = 20037508.3427892  # the Web Mercator world's half width, metres
_PIXEL = 0.28e-3  # the standardized rendering pixel, metres


def tile_matrix_sets(req: OgcRequest) -> OgcResponse:
    """The tile matrix sets the tiles use: WebMercatorQuad only."""
    return OgcResponse(
        dumps(
            {
                "tileMatrixSets": [
                    {
                        "id": WEB_MERCATOR_QUAD,
                        "title": "Google Maps Compatible for the World",
                        "uri": TMS_URI,
                        "links": [
                            {
                                "rel": "self",
                                "href": req.href(f"tileMatrixSets/{WEB_MERCATOR_QUAD}"),
                                "type": "application/json",
                            }
                        ],
                    }
                ]
            }
        )
    )


def tile_matrix_set(req: OgcRequest, tms_id: str) -> OgcResponse:
    """WebMercatorQuad (OGC Two Dimensional Tile Matrix Set 2.0), zoom 0 to MAX_ZOOM."""
    _require_tms(tms_id)
    matrices = []
    for z in range(MAX_ZOOM + 1):
        cell = 2 * _HALF / 256 / (1 << z)
        matrices.append(
            {
                "id": str(z),
                "scaleDenominator": cell / _PIXEL,
                "cellSize": cell,
                "cornerOfOrigin": "topLeft",
                "pointOfOrigin": [-_HALF, _HALF],
                "tileWidth": 256,
                "tileHeight": 256,
                "matrixWidth": 1 << z,
                "matrixHeight": 1 << z,
            }
        )
    return OgcResponse(
        dumps(
            {
                "id": WEB_MERCATOR_QUAD,
                "title": "Google Maps Compatible for the World",
                "uri": TMS_URI,
                "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
                "orderedAxes": ["X", "Y"],
                "wellKnownScaleSet": "http://www.opengis.net/def/wkss/OGC/1.0/GoogleMapsCompatible",
                "tileMatrices": matrices,
            }
        )
    )


def tilesets(req: OgcRequest, collection_id: str) -> OgcResponse:
    """The collection's tilesets: one vector tileset in WebMercatorQuad."""
    c = get_collection(collection_id)
    return OgcResponse(dumps({"tilesets": [_tileset_summary(req, c.id, c.title)]}))


def tileset(req: OgcRequest, collection_id: str, tms_id: str) -> OgcResponse:
    """The collection's vector tileset: its zoom range, layer, and the templated link to
    its MVT tiles (the same tiles as ``/tiles/{collection}/{z}/{x}/{y}.mvt``)."""
    c = get_collection(collection_id)
    _require_tms(tms_id)
    template = req.href(f"tiles/{c.id}") + "/{tileMatrix}/{tileCol}/{tileRow}.mvt"
    fields = {name: kind for name, _, kind in c.properties if name in c.tile_properties}
    body = {
        **_tileset_summary(req, c.id, c.title),
        "tileMatrixSetLimits": [
            {
                "tileMatrix": str(z),
                "minTileRow": 0,
                "maxTileRow": (1 << z) - 1,
                "minTileCol": 0,
                "maxTileCol": (1 << z) - 1,
            }
            for z in range(c.min_zoom, MAX_ZOOM + 1)
        ],
        "layers": [
            {
                "id": c.id,
                "dataType": "vector",
                "minTileMatrix": str(c.min_zoom),
                "maxTileMatrix": str(MAX_ZOOM),
                "propertiesSchema": {
                    "type": "object",
                    "properties": {name: {"type": kind} for name, kind in fields.items()},
                },
            }
        ],
    }
    body["links"].append({"rel": "item", "href": template, "type": MVT, "templated": True})
    return OgcResponse(dumps(body))


def _tileset_summary(req: OgcRequest, collection_id: str, title: str) -> dict[str, Any]:
    return {
        "title": title,
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS_URI,
        "links": [
            {
                "rel": "self",
                "href": req.href(f"collections/{collection_id}/tiles/{WEB_MERCATOR_QUAD}"),
                "type": "application/json",
            },
            {
                "rel": TILING_SCHEME_REL,
                "href": req.href(f"tileMatrixSets/{WEB_MERCATOR_QUAD}"),
                "type": "application/json",
            },
        ],
    }


def _require_tms(tms_id: str) -> None:
    if tms_id != WEB_MERCATOR_QUAD:
        raise NotFound(
            f"no tile matrix set {tms_id!r}; there is {WEB_MERCATOR_QUAD}",
            code="unknown_tile_matrix_set",
        )
