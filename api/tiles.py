"""Vector tiles (``/tiles/{collection}/{z}/{x}/{y}.mvt``) and their TileJSON.

Tiles take the collection's filters and ``datetime``. Each answer carries an ETag (a hash
of the tile) and ``Cache-Control: private, no-cache``: a browser keeps the tile but asks
again every time, and gets ``304 Not Modified`` until the data under it changes.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, g, request, url_for

from api.database import get_conn
from api.endpoints import BY_COLLECTION, Text, declare
from api.features import IRAN_BBOX, feature_query
from geo.geodata.features.collections import get_collection
from geo.geodata.features.tiles import MAX_ZOOM, tile

bp = Blueprint("tiles", __name__)

MVT = "application/vnd.mapbox-vector-tile"


@bp.get("/tiles/<collection_id>/<int:z>/<int:x>/<int:y>.mvt")
@declare(
    service=BY_COLLECTION,
    replica=True,
    query=[Text("datetime")],
    collection_filters=True,
    media=MVT,
    responses={"304": "the client's copy (If-None-Match) is current"},
)
def get_tile(collection_id: str, z: int, x: int, y: int) -> Response:
    """One Mapbox vector tile of the collection; 304 when the client's copy is current."""
    c = get_collection(collection_id)
    q = feature_query(c, default_limit=None)
    result = tile(get_conn(), q, z, x, y)
    g.audit_rows = 1
    if request.if_none_match.contains(result.etag):
        response = Response(status=304)
    else:
        response = Response(result.data, mimetype=MVT)
    response.set_etag(result.etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.get("/tiles/<collection_id>.json")
@declare(public=True)
def get_tilejson(collection_id: str) -> Response:
    """TileJSON 3.0 of the collection's tiles (for MapLibre and other map clients)."""
    c = get_collection(collection_id)
    template = url_for("tiles.get_tile", collection_id=c.id, z=0, x=0, y=0, _external=True)
    template = template.replace("/0/0/0.mvt", "/{z}/{x}/{y}.mvt")
    return Response(
        json.dumps(
            {
                "tilejson": "3.0.0",
                "name": c.title,
                "tiles": [template],
                "minzoom": c.min_zoom,
                "maxzoom": MAX_ZOOM,
                "bounds": IRAN_BBOX,
                "vector_layers": [
                    {
                        "id": c.id,
                        "minzoom": c.min_zoom,
                        "maxzoom": MAX_ZOOM,
                        "fields": {
                            name: kind
                            for name, _, kind in c.properties
                            if name in c.tile_properties
                        },
                    }
                ],
            },
            ensure_ascii=False,
        ),
        mimetype="application/json",
    )
