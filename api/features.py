"""OGC API – Features (Part 1 core, GeoJSON, OpenAPI 3.0; Part 2 CRS): landing page,
conformance, collections, items, one item, a feature's versions, and downloads (``f=``).

The landing page is ``/`` with JSON (``f=json`` or ``Accept: application/json``);
the OpenAPI document is ``/api``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request, stream_with_context, url_for
from sqlalchemy import Connection, text

from api.database import app_db, get_conn
from api.endpoints import BY_COLLECTION, Int, Param, Text, declare
from api.web import wants_page, web_page
from geo.errors import InvalidParameter
from geo.geodata.bbox import parse_bbox
from geo.geodata.features.collections import COLLECTIONS, Collection, get_collection
from geo.geodata.features.downloads import FORMATS, csv_chunks, write_file
from geo.geodata.features.items import count, feature, page, versions
from geo.geodata.features.query import CRS84, FeatureQuery, parse_crs, parse_filters, supported_crs
from geo.geodata.features.temporal import parse_datetime

bp = Blueprint("features", __name__)

GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
]
IRAN_BBOX = [44.0, 25.0, 63.4, 39.8]
MAX_LIMIT = 10_000
DOWNLOADS = ("json", "geojson", "gpkg", "fgb", "shp", "csv")
ITEM_QUERY: tuple[Param, ...] = (
    Text("bbox", "x0,y0,x1,y1 (CRS84 unless bbox-crs)"),
    Text("bbox-crs"),
    Text("datetime", "an instant or start/end (.. open)"),
    Int("limit", low=1, high=MAX_LIMIT),
    Int("after", "paging key (next link)", low=0, high=2**62),
    Text("crs"),
    Text("f", enum=DOWNLOADS),
)
ITEM_PARAMS = {p.name for p in ITEM_QUERY}


def _json(body: Any, status: int = 200, media_type: str = "application/json") -> Response:
    return Response(current_app.json.dumps(body), status=status, mimetype=media_type)


def _link(href: str, rel: str, media_type: str, title: str) -> dict[str, str]:
    return {"href": href, "rel": rel, "type": media_type, "title": title}


@bp.get("/")
@declare(public=True)
def landing() -> Response:
    """The OGC API landing page (JSON): links to the API description, conformance and
    collections. A browser asking for HTML gets the web page instead."""
    if wants_page():
        return web_page()
    return _json(
        {
            "title": "tagsim",
            "description": (
                "Country divisions of Iran in the codings of MOI, SCI and HF, guide-plan"
                " parcels, registered plots and their coverage."
            ),
            "links": [
                _link(url_for(".landing", _external=True), "self", "application/json", "this"),
                _link(url_for("openapi.api", _external=True), "service-desc", OPENAPI, "API"),
                _link(
                    url_for(".conformance", _external=True),
                    "conformance",
                    "application/json",
                    "conformance classes",
                ),
                _link(
                    url_for(".get_collections", _external=True),
                    "data",
                    "application/json",
                    "collections",
                ),
            ],
        }
    )


@bp.get("/conformance")
@declare(public=True)
def conformance() -> Response:
    """The OGC conformance classes this service implements."""
    return _json({"conformsTo": CONFORMANCE})


def _extent(conn: Connection, c: Collection) -> dict[str, Any]:
    table = c.base_table
    column = c.geometry.removeprefix("t.")
    bbox = IRAN_BBOX
    if c.versioned:
        # Parcels keep exact per-village boxes (partition pruning); estimating the extent
        # of a partitioned table fails in PostGIS 3.3, and is not needed there.
        box_sql = (
            "SELECT ST_Extent(extent)::geometry FROM parcel_extent"
            if table == "parcel"
            else "SELECT ST_EstimatedExtent(:t, :c)::geometry"
        )
        box = conn.execute(
            text(f"SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ({box_sql}) x(b)"),
            {"t": table, "c": column},
        ).first()
        if box is not None and box[0] is not None:
            bbox = [round(v, 6) for v in box]
    temporal: list[Any] = [None, None]
    if c.versioned:
        first = conn.execute(text(f"SELECT min(valid_from) FROM {table}")).scalar()
        temporal = [first.isoformat() if first else None, None]
    return {
        "spatial": {"bbox": [bbox], "crs": CRS84},
        "temporal": {
            "interval": [temporal],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        },
    }


def _collection_doc(conn: Connection, c: Collection) -> dict[str, Any]:
    items = url_for(".get_items", collection_id=c.id, _external=True)
    links = [
        _link(
            url_for(".get_collection_doc", collection_id=c.id, _external=True),
            "self",
            "application/json",
            c.title,
        ),
        _link(items, "items", GEOJSON, f"{c.title} as GeoJSON"),
    ]
    for fmt, spec in FORMATS.items():
        links.append(_link(f"{items}?f={fmt}", "enclosure", spec.media_type, f"download ({fmt})"))
    links.append(
        _link(
            url_for("tiles.get_tilejson", collection_id=c.id, _external=True),
            "describedby",
            "application/json",
            "vector tiles (TileJSON)",
        )
    )
    return {
        "id": c.id,
        "title": c.title,
        "title_fa": c.title_fa,
        "description": c.description,
        "itemType": "feature",
        "extent": _extent(conn, c),
        "crs": supported_crs(),
        "storageCrs": CRS84,
        "queryables": {name: f.description for name, f in c.filters.items()},
        "links": links,
    }


@bp.get("/collections")
@declare(public=True)
def get_collections() -> Response:
    """The feature collections: parcels, guide-plan zones, registered plots, divisions."""
    conn = get_conn()
    return _json(
        {
            "links": [
                _link(
                    url_for(".get_collections", _external=True),
                    "self",
                    "application/json",
                    "collections",
                )
            ],
            "collections": [_collection_doc(conn, c) for c in COLLECTIONS.values()],
        }
    )


@bp.get("/collections/<collection_id>")
@declare(public=True)
def get_collection_doc(collection_id: str) -> Response:
    """One collection's description, extent, CRSs and links."""
    return _json(_collection_doc(get_conn(), get_collection(collection_id)))


def _check_params(c: Collection) -> None:
    unknown = sorted(set(request.args) - ITEM_PARAMS - set(c.filters))
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {', '.join(unknown)}; {c.id} takes "
            + ", ".join(sorted(ITEM_PARAMS | set(c.filters))),
            code="unknown_parameter",
            field=unknown[0],
        )


def feature_query(c: Collection, *, default_limit: int | None = 10) -> FeatureQuery:
    """The request's selection of ``c`` (shared by items, downloads and tiles)."""
    _check_params(c)
    bbox_crs = parse_crs(request.args.get("bbox-crs"), "bbox-crs")
    geographic = bbox_crs.epsg == 4326 and not bbox_crs.lat_first
    bbox = parse_bbox(request.args.get("bbox"), geographic=geographic)
    limit = default_limit
    if request.args.get("limit"):
        limit = Int("limit", low=1, high=MAX_LIMIT if default_limit else 10**9).parse(
            request.args.get("limit")
        )
    after = Int("after", high=2**62).parse(request.args.get("after"))
    return FeatureQuery(
        collection=c,
        bbox=bbox,
        bbox_crs=bbox_crs,
        time=parse_datetime(request.args.get("datetime")),
        filters=parse_filters(c, request.args.to_dict()),
        limit=limit,
        after=after,
        crs=parse_crs(request.args.get("crs")),
    )


def _page_url(**changes: Any) -> str:
    args = request.args.to_dict()
    args.update({k: str(v) for k, v in changes.items()})
    return f"{request.base_url}?{urlencode(args)}"


@bp.get("/collections/<collection_id>/items")
@declare(
    service=BY_COLLECTION,
    replica=True,
    query=ITEM_QUERY,
    collection_filters=True,
    media=[
        GEOJSON,
        "application/geopackage+sqlite3",
        "application/flatgeobuf",
        "application/zip",
        "text/csv",
    ],
)
def get_items(collection_id: str) -> Response:
    """Features by bbox, datetime and properties, ``limit`` per page with a ``next`` link;
    ``f=gpkg|fgb|shp|csv`` downloads the whole selection instead."""
    c = get_collection(collection_id)
    fmt = (request.args.get("f") or "json").lower()
    if fmt in FORMATS:
        return _download(c, fmt)
    if fmt not in {"json", "geojson"}:
        raise InvalidParameter(
            f"f is one of json, {', '.join(FORMATS)}", code="unknown_format", field="f"
        )
    q = feature_query(c)
    conn = get_conn()
    result = page(conn, q)
    # counted with the page, or a first page that holds everything: no second query
    if result.matched is not None:
        matched = result.matched
    elif q.after is None and not result.more:
        matched = result.returned
    else:
        matched = count(conn, q)
    g.audit_rows = result.returned
    links = [
        _link(_page_url(), "self", GEOJSON, "this page"),
        _link(
            url_for(".get_collection_doc", collection_id=c.id, _external=True),
            "collection",
            "application/json",
            c.title,
        ),
    ]
    for fmt_name, spec in FORMATS.items():
        links.append(_link(_page_url(f=fmt_name), "alternate", spec.media_type, fmt_name))
    if result.more:
        links.append(_link(_page_url(after=result.last_id), "next", GEOJSON, "next page"))
    head = current_app.json.dumps(
        {
            "numberMatched": matched,
            "numberReturned": result.returned,
            "timeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "links": links,
        }
    )
    body = '{"type":"FeatureCollection","features":[' + result.features + "]," + head[1:]
    response = Response(body, mimetype=GEOJSON)
    response.headers["Content-Crs"] = f"<{q.crs.uri}>"
    return response


def _download(c: Collection, fmt: str) -> Response:
    q = feature_query(c, default_limit=None)
    spec = FORMATS[fmt]
    headers = {"Content-Disposition": f'attachment; filename="{c.id}.{spec.extension}"'}
    if fmt == "csv":
        db = app_db()
        with db.connect() as conn:
            q.where(conn)  # a bad filter answers 400 before the download starts

        def rows() -> Iterator[bytes]:
            with db.connect() as conn:
                yield from csv_chunks(conn, q)

        return Response(stream_with_context(rows()), mimetype=spec.media_type, headers=headers)
    with app_db().connect() as conn:  # a server-side cursor needs a transaction
        download = write_file(conn, q, fmt)
    headers["X-Feature-Count"] = str(download.features)
    g.audit_rows = download.features
    headers["Content-Length"] = str(download.path.stat().st_size)
    return Response(download.chunks(), mimetype=spec.media_type, headers=headers)


@bp.get("/collections/<collection_id>/items/<int:fid>")
@declare(service=BY_COLLECTION, replica=True, query=[Text("crs")], media=GEOJSON)
def get_item(collection_id: str, fid: int) -> Response:
    """One feature (a version); a removed one answers 410 Gone with when it went."""
    c = get_collection(collection_id)
    crs = parse_crs(request.args.get("crs"))
    body, successor = feature(get_conn(), c, fid, crs)
    g.audit_rows = 1
    links = [
        _link(request.base_url, "self", GEOJSON, "this feature"),
        _link(
            url_for(".get_collection_doc", collection_id=c.id, _external=True),
            "collection",
            "application/json",
            c.title,
        ),
    ]
    if c.versioned:
        links.append(
            _link(
                url_for(".get_versions", collection_id=c.id, fid=fid, _external=True),
                "version-history",
                GEOJSON,
                "all versions",
            )
        )
    if successor is not None:
        links.append(
            _link(
                url_for(".get_item", collection_id=c.id, fid=successor, _external=True),
                "latest-version",
                GEOJSON,
                "the current version",
            )
        )
    text_links = current_app.json.dumps(links)
    response = Response(body[:-1] + ',"links":' + text_links + "}", mimetype=GEOJSON)
    response.headers["Content-Crs"] = f"<{crs.uri}>"
    return response


@bp.get("/collections/<collection_id>/items/<int:fid>/versions")
@declare(service=BY_COLLECTION, replica=True, query=[Text("crs")], media=GEOJSON)
def get_versions(collection_id: str, fid: int) -> Response:
    """Every version of the feature, oldest first (valid_from / valid_to in properties)."""
    c = get_collection(collection_id)
    found = versions(get_conn(), c, fid, parse_crs(request.args.get("crs")))
    g.audit_rows = len(found)
    body = (
        '{"type":"FeatureCollection","features":['
        + ",".join(found)
        + f'],"numberReturned":{len(found)}}}'
    )
    return Response(body, mimetype=GEOJSON)
