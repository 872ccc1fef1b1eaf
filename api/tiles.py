"""Vector tiles over HTTP (``/tiles/{collection}/{z}/{x}/{y}.mvt``) and their TileJSON:
one line each onto the Flask-free core (`api.ogc.tiles`)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app

from api.endpoints import BY_COLLECTION, Int, Text, declare
from api.ogc import tiles as ogc
from api.ogc.features import FILTER_QUERY
from api.ogc_adapter import ogc_request, respond
from geo.geodata.features.temporal import DATETIME_PATTERN
from geo.geodata.features.tiles import MAX_ZOOM

bp = Blueprint("tiles", __name__)


@bp.get("/tiles/<collection_id>/<int:z>/<int:x>/<int:y>.mvt")
@declare(
    service=BY_COLLECTION,
    replica=True,
    query=[Text("datetime", pattern=DATETIME_PATTERN), *FILTER_QUERY],
    path=[Int("z", low=0, high=MAX_ZOOM)],
    collection_filters=True,
    media=ogc.MVT,
    responses={"304": "the client's copy (If-None-Match) is current"},
)
def get_tile(collection_id: str, z: int, x: int, y: int) -> Response:
    """One Mapbox vector tile of the collection; 304 when the client's copy is current.
    ``filter`` (CQL2, as on items) keeps the features it selects: a map and a download
    show the same ones."""
    cache = current_app.config["TILE_CACHE"]
    return respond(ogc.vector_tile(ogc_request(), collection_id, z, x, y, cache))


@bp.get("/tiles/<collection_id>.json")
@declare(public=True)
def get_tilejson(collection_id: str) -> Response:
    """TileJSON 3.0 of the collection's tiles (for MapLibre and other map clients)."""
    return respond(ogc.tilejson(ogc_request(), collection_id))


@bp.get("/tileMatrixSets")
@declare(public=True)
def get_tile_matrix_sets() -> Response:
    """The tile matrix sets of the vector tiles (OGC API – Tiles): WebMercatorQuad."""
    return respond(ogc.tile_matrix_sets(ogc_request()))


@bp.get("/tileMatrixSets/<tms_id>")
@declare(public=True)
def get_tile_matrix_set(tms_id: str) -> Response:
    """WebMercatorQuad, zoom 0 to 22 (OGC Two Dimensional Tile Matrix Set)."""
    return respond(ogc.tile_matrix_set(ogc_request(), tms_id))


@bp.get("/collections/<collection_id>/tiles")
@declare(public=True)
def get_tilesets(collection_id: str) -> Response:
    """The collection's vector tilesets (OGC API – Tiles)."""
    return respond(ogc.tilesets(ogc_request(), collection_id))


@bp.get("/collections/<collection_id>/tiles/<tms_id>")
@declare(public=True)
def get_tileset(collection_id: str, tms_id: str) -> Response:
    """The collection's vector tileset: zoom range, layer, and the templated link to its
    tiles (``/tiles/{collection}/{tileMatrix}/{tileCol}/{tileRow}.mvt``)."""
    return respond(ogc.tileset(ogc_request(), collection_id, tms_id))
