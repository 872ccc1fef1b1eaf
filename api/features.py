"""OGC API – Features over HTTP: each route is one line onto the Flask-free core
(`api.ogc.features`), declared here.

The landing page is ``/`` with JSON (``f=json`` or ``Accept: application/json``); a browser
asking for HTML gets the web page. The OpenAPI document is ``/api``.
"""

from __future__ import annotations

from flask import Blueprint, Response

from api.endpoints import BY_COLLECTION, declare
from api.ogc import features as ogc
from api.ogc_adapter import ogc_request, respond
from api.web import wants_page, web_page

bp = Blueprint("features", __name__)

GEOJSON = ogc.GEOJSON
CRS = ogc.CRS_PARAM
DOWNLOAD_MEDIA = [
    GEOJSON,
    "application/geopackage+sqlite3",
    "application/flatgeobuf",
    "application/zip",
    "application/vnd.apache.parquet",
    "text/csv",
]


@bp.get("/")
@declare(public=True)
def landing() -> Response:
    """The OGC API landing page (JSON): links to the API description, conformance and
    collections. A browser asking for HTML gets the web page instead."""
    return web_page() if wants_page() else respond(ogc.landing(ogc_request()))


@bp.get("/conformance")
@declare(public=True)
def conformance() -> Response:
    """The OGC conformance classes this service implements."""
    return respond(ogc.conformance(ogc_request()))


@bp.get("/collections")
@declare(public=True)
def get_collections() -> Response:
    """The feature collections: parcels, guide-plan zones, registered plots, divisions."""
    return respond(ogc.collections(ogc_request()))


@bp.get("/collections/<collection_id>")
@declare(public=True)
def get_collection_doc(collection_id: str) -> Response:
    """One collection's description, extent, CRSs and links."""
    return respond(ogc.collection(ogc_request(), collection_id))


@bp.get("/collections/<collection_id>/queryables")
@declare(public=True, media=ogc.SCHEMA_JSON)
def get_queryables(collection_id: str) -> Response:
    """What a CQL2 filter may name in the collection (JSON Schema): its properties with
    their types and Persian titles, and its geometry."""
    return respond(ogc.queryables_doc(ogc_request(), collection_id))


@bp.get("/collections/<collection_id>/items")
@declare(
    service=BY_COLLECTION,
    replica=True,
    query=ogc.ITEM_QUERY,
    collection_filters=True,
    media=DOWNLOAD_MEDIA,
    schema=ogc.ITEMS_SCHEMA,
)
def get_items(collection_id: str) -> Response:
    """Features by bbox, datetime, properties and a CQL2 ``filter``, sorted by ``sortby``
    (then id), ``limit`` per page with a ``next`` link; ``numberMatched`` exact, or left
    out for a selection over 100,000 features; ``f=gpkg|fgb|shp|parquet|csv`` downloads
    the whole selection instead."""
    return respond(ogc.items(ogc_request(), collection_id))


@bp.get("/collections/<collection_id>/items/<int:fid>")
@declare(service=BY_COLLECTION, replica=True, query=[CRS], media=GEOJSON)
def get_item(collection_id: str, fid: int) -> Response:
    """One feature (a version); a removed one answers 410 Gone with when it went."""
    return respond(ogc.item(ogc_request(), collection_id, fid))


@bp.get("/collections/<collection_id>/items/<int:fid>/versions")
@declare(service=BY_COLLECTION, replica=True, query=[CRS], media=GEOJSON)
def get_versions(collection_id: str, fid: int) -> Response:
    """Every version of the feature, oldest first (valid_from / valid_to in properties)."""
    return respond(ogc.item_versions(ogc_request(), collection_id, fid))
