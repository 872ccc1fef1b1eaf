"""OGC API – Features (Part 1 core, GeoJSON, OpenAPI 3.0; Part 2 CRS): the landing page,
conformance, collections, items, one item, a feature's versions and downloads (``f=``).

Every function takes the request as the core sees it and returns status, headers and body;
the SQL is `geo.geodata.features`'.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, text

from api.ogc.request import OgcRequest, OgcResponse, dumps, link
from api.parameters import Choice, Int, Param, Text
from geo.access.ownership import owner_of
from geo.changes.snapshots import latest_snapshot
from geo.errors import InvalidParameter
from geo.geodata.bbox import BBOX_PATTERN, BBox, check_projected, parse_bbox
from geo.geodata.features.collections import COLLECTIONS, Collection, get_collection
from geo.geodata.features.cql2 import FILTER_LANGS, compile_filter, filter_lang, queryables
from geo.geodata.features.downloads import FORMATS, can_write, csv_chunks, write_file
from geo.geodata.features.items import COUNT_AT_MOST, count, feature, page, versions
from geo.geodata.features.query import (
    CRS84,
    FeatureQuery,
    SortKey,
    parse_crs,
    parse_filters,
    supported_crs,
)
from geo.geodata.features.temporal import DATETIME_PATTERN, parse_datetime

__all__ = [
    "CONFORMANCE",
    "FILTER_QUERY",
    "GEOJSON",
    "IRAN_BBOX",
    "ITEM_QUERY",
    "collection",
    "collections",
    "conformance",
    "feature_query",
    "item",
    "item_versions",
    "items",
    "landing",
    "queryables_doc",
]

GEOJSON = "application/geo+json"
ATOM = "application/atom+xml"

# The items answer as the OpenAPI document states it: numberMatched is exact when present
# and left out past COUNT_AT_MOST features, so that no page pays for counting a whole layer.
ITEMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "features", "numberReturned", "links"],
    "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"type": "object"}},
        "numberMatched": {
            "type": "integer",
            "minimum": 0,
            "description": (
                "the whole selection's size, exact; left out when the selection holds more"
                f" than {COUNT_AT_MOST:,} features (follow the next links to the end)"
            ),
        },
        "numberReturned": {"type": "integer", "minimum": 0},
        "timeStamp": {"type": "string", "format": "date-time"},
        "links": {"type": "array", "items": {"type": "object"}},
    },
}
JSON = "application/json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    # Part 3 and CQL2 (`geo.geodata.features.cql2`): what the filter compiler takes
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/accent-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/arithmetic",
    "http://www.opengis.net/spec/cql2/1.0/conf/property-property",
    # OGC API – Tiles (`api.ogc.tiles`): the discovery of the collections' vector tiles
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
]
TILESETS_REL = "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
SCHEMA_JSON = "application/schema+json"
IRAN_BBOX = [44.0, 25.0, 63.4, 39.8]
MAX_LIMIT = 10_000
DOWNLOADS = ("json", "geojson", "gpkg", "fgb", "shp", "parquet", "csv")


@dataclass(frozen=True)
class DownloadFormat(Text):
    """``f``: the answer's format; a collection's path lists those it can be written in."""

    def schema_in(self, collection: Any) -> dict[str, Any]:
        schema = self.schema()
        if collection is not None:
            schema["enum"] = [f for f in self.enum if f not in FORMATS or can_write(collection, f)]
        return schema


CRS_PARAM = Choice("crs", "the answer's CRS", values=tuple(supported_crs()))
# a CQL2 filter: items, downloads and vector tiles take the same three parameters
FILTER_QUERY: tuple[Param, ...] = (
    Text("filter", "a CQL2 filter over the collection's queryables (see /queryables)"),
    Choice("filter-lang", "the filter's language", values=FILTER_LANGS),
    Choice("filter-crs", "the CRS of the filter's geometries", values=tuple(supported_crs())),
)
ITEM_QUERY: tuple[Param, ...] = (
    Text("bbox", "x0,y0,x1,y1 (CRS84 unless bbox-crs)", pattern=BBOX_PATTERN),
    Choice("bbox-crs", "the bbox's CRS", values=tuple(supported_crs())),
    Text("datetime", "an instant or start/end (.. open)", pattern=DATETIME_PATTERN),
    Int("limit", low=1, high=MAX_LIMIT),
    Int("after", "paging key (next link)", low=0, high=2**62),
    CRS_PARAM,
    DownloadFormat("f", enum=DOWNLOADS),
    *FILTER_QUERY,
    Text("properties", "the properties answered, comma-separated (default: all)"),
    Text(
        "sortby",
        "sort keys, comma-separated: a queryable, - before it for descending (then by id)",
        pattern=r"^\s*[+-]?[a-z_]+(\s*,\s*[+-]?[a-z_]+)*\s*$",
    ),
    Text(
        "page",
        "a sorted selection's paging key (from its next link)",
        pattern=r"^[A-Za-z0-9_=-]{1,2000}$",
    ),
)
ITEM_PARAMS = {p.name for p in ITEM_QUERY}


def _json(body: Any, media_type: str = JSON) -> OgcResponse:
    return OgcResponse(dumps(body), media_type)


def landing(req: OgcRequest) -> OgcResponse:
    """The landing page: links to the API description, conformance and collections."""
    return _json(
        {
            "title": "tagsim",
            "description": (
                "Country divisions of Iran in the codings of MOI, SCI and HF, guide-plan"
                " parcels, registered plots and their coverage."
            ),
            "links": [
                link(req.href(""), "self", JSON, "this"),
                link(req.href("api"), "service-desc", OPENAPI, "API"),
                link(req.href("conformance"), "conformance", JSON, "conformance classes"),
                link(req.href("collections"), "data", JSON, "collections"),
                link(req.href("downloads"), "related", JSON, "dated snapshots, change files"),
                link(req.href("downloads.atom"), "related", ATOM, "downloads (Atom feed)"),
            ],
        }
    )


def conformance(req: OgcRequest) -> OgcResponse:
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
        # parcels: the first publish's time, kept by the publishes (a min over a million
        # versions took 193 ms); the smaller versioned tables are asked directly
        first_sql = (
            "SELECT since FROM data_version WHERE dataset = 'parcels'"
            if table == "parcel"
            else f"SELECT min(valid_from) FROM {table}"
        )
        first = conn.execute(text(first_sql)).scalar()
        temporal = [first.isoformat() if first else None, None]
    return {
        "spatial": {"bbox": [bbox], "crs": CRS84},
        "temporal": {
            "interval": [temporal],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        },
    }


def _collection_doc(req: OgcRequest, c: Collection) -> dict[str, Any]:
    items_url = req.href(f"collections/{c.id}/items")
    links = [
        link(req.href(f"collections/{c.id}"), "self", JSON, c.title),
        link(items_url, "items", GEOJSON, f"{c.title} as GeoJSON"),
    ]
    for fmt, spec in FORMATS.items():
        links.append(
            link(f"{items_url}?f={fmt}", "enclosure", spec.media_type, f"download ({fmt})")
        )
    links.extend(_snapshot_links(req, c))
    links.append(
        link(req.href(f"tiles/{c.id}.json"), "describedby", JSON, "vector tiles (TileJSON)")
    )
    links.append(
        link(req.href(f"collections/{c.id}/queryables"), QUERYABLES_REL, SCHEMA_JSON, "queryables")
    )
    links.append(link(req.href(f"collections/{c.id}/tiles"), TILESETS_REL, JSON, "vector tilesets"))
    return {
        "id": c.id,
        "title": c.title,
        "title_fa": c.title_fa,
        "description": c.description,
        "itemType": "feature",
        "extent": _extent(req.conn(), c),
        "crs": supported_crs(),
        "storageCrs": CRS84,
        "queryables": {name: f.description for name, f in c.filters.items()},
        "owner": _owner(req, c),
        "links": links,
    }


def _snapshot_links(req: OgcRequest, c: Collection) -> list[dict[str, Any]]:
    """The latest snapshot's files (``enclosure``, with their length) and the downloads'
    Atom feed: the whole collection in one file, at a known feed position."""
    links: list[dict[str, Any]] = [
        link(req.href("downloads.atom"), "related", "application/atom+xml", "downloads (Atom)")
    ]
    latest = latest_snapshot(req.conn(), c.id)
    if latest is None:
        return links
    for f in latest["files"]:
        href = req.href(f"downloads/{c.id}/{latest['label']}/{f['name']}")
        title = f"snapshot {latest['label']} ({f['format']})"
        links.append({**link(href, "enclosure", f["media_type"], title), "length": f["size"]})
    return links


def _owner(req: OgcRequest, c: Collection) -> dict[str, Any]:
    """Who writes the collection's data (DESIGN.md §11); reads follow the policies."""
    if c.dataset is None:
        return {"dataset": c.id, "agency": None, "rule": "each agency writes its own list"}
    return {"dataset": c.dataset, "agency": owner_of(req.conn(), c.dataset)}


def collections(req: OgcRequest) -> OgcResponse:
    """The feature collections: parcels, guide-plan zones, registered plots, divisions."""
    return _json(
        {
            "links": [link(req.href("collections"), "self", JSON, "collections")],
            "collections": [_collection_doc(req, c) for c in COLLECTIONS.values()],
        }
    )


def collection(req: OgcRequest, collection_id: str) -> OgcResponse:
    """One collection's description, extent, CRSs and links."""
    return _json(_collection_doc(req, get_collection(collection_id)))


def queryables_doc(req: OgcRequest, collection_id: str) -> OgcResponse:
    """What a filter may name in the collection, as JSON Schema (OGC API – Features Part 3):
    each property with its type and Persian title, and the geometry."""
    c = get_collection(collection_id)
    properties: dict[str, Any] = {}
    for q in queryables(c).values():
        if q.kind == "geometry":
            kind = c.geometry_type.lower()
            schema: dict[str, Any] = {"format": f"geometry-{'any' if kind == 'geometry' else kind}"}
        elif q.kind == "date-time":
            schema = {"type": "string", "format": "date-time"}
        else:
            schema = {"type": q.kind}
        properties[q.name] = {"title": q.title or q.name, **schema}
    return _json(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": req.href(f"collections/{c.id}/queryables"),
            "type": "object",
            "title": c.title_fa,
            "description": c.title,
            "properties": properties,
            "additionalProperties": False,
        },
        SCHEMA_JSON,
    )


_CASTS = {"string": "text", "number": "numeric", "integer": "bigint", "date-time": "timestamptz"}


def _sort_asked(c: Collection, raw: str | None) -> tuple[SortKey, ...]:
    """``sortby=-area_m2,parcel_no``: the keys, each a queryable (not the geometry)."""
    if not raw:
        return ()
    known = queryables(c)
    keys = []
    for word in (w.strip() for w in raw.split(",") if w.strip()):
        name = word.lstrip("+-")
        q = known.get(name)
        if q is None or q.kind == "geometry":
            raise InvalidParameter(
                f"{c.id} cannot be sorted by {name!r}; by "
                + ", ".join(n for n, k in known.items() if k.kind != "geometry"),
                code="unknown_property",
                field="sortby",
            )
        keys.append(SortKey(q.sql, _CASTS[q.kind], word.startswith("-")))
    return tuple(keys)


def _page_key(raw: str | None, sortby: str | None) -> list[Any] | None:
    """A sorted selection's paging key: the last row's sort values and id, as the next
    link wrote them (base64 of JSON)."""
    if raw is None:
        return None
    if not sortby:
        raise InvalidParameter("page follows a sortby; unsorted pages use after", field="page")
    try:
        key = json.loads(base64.urlsafe_b64decode(raw.encode()), parse_float=Decimal)
    except (ValueError, binascii.Error):
        raise InvalidParameter("page is not a key this service wrote", field="page") from None
    if not isinstance(key, list) or not key or not isinstance(key[-1], int):
        raise InvalidParameter("page is not a key this service wrote", field="page")
    return key


def page_param(last_key: str) -> str:
    """The next link's ``page`` value for a sorted page's last key (JSON text)."""
    return base64.urlsafe_b64encode(last_key.encode()).decode()


def _properties_asked(c: Collection, raw: str | None) -> tuple[str, ...] | None:
    """``properties=a,b``: those properties only (each one the collection has)."""
    if raw is None:
        return None
    names = tuple(n.strip() for n in raw.split(",") if n.strip())
    unknown = [n for n in names if n not in c.property_names]
    if unknown:
        raise InvalidParameter(
            f"{c.id} has no property {', '.join(unknown)}; it has {', '.join(c.property_names)}",
            code="unknown_property",
            field="properties",
        )
    return names


def _check_params(req: OgcRequest, c: Collection) -> None:
    unknown = sorted(set(req.args) - ITEM_PARAMS - set(c.filters))
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {', '.join(unknown)}; {c.id} takes "
            + ", ".join(sorted(ITEM_PARAMS | set(c.filters))),
            code="unknown_parameter",
            field=unknown[0],
        )


def _bbox(raw: str | None, epsg: int, geographic: bool) -> BBox | None:
    box = parse_bbox(raw, geographic=geographic)
    return box if box is None or geographic else check_projected(box, epsg)


def feature_query(
    req: OgcRequest, c: Collection, *, default_limit: int | None = 10
) -> FeatureQuery:
    """The request's selection of ``c`` (shared by items, downloads and tiles)."""
    _check_params(req, c)
    args = req.args
    bbox_crs = parse_crs(args.get("bbox-crs"), "bbox-crs")
    geographic = bbox_crs.epsg == 4326 and not bbox_crs.lat_first
    limit = default_limit
    if args.get("limit"):
        high = MAX_LIMIT if default_limit else 10**9
        limit = Int("limit", low=1, high=high).parse(args.get("limit"))
    condition, bounding, village = None, None, None
    lang, crs = args.get("filter-lang"), args.get("filter-crs")
    if args.get("filter"):
        compiled = compile_filter(c, args["filter"], lang, crs)
        condition = (compiled.sql, dict(compiled.params))
        bounding, village = compiled.bounding, compiled.village
    else:  # (said without a filter: still one of the values the document lists)
        filter_lang(lang)
        parse_crs(crs, "filter-crs")
    return FeatureQuery(
        collection=c,
        condition=condition,
        condition_bounding=bounding,
        condition_village=village,
        properties=_properties_asked(c, args.get("properties")),
        sort=_sort_asked(c, args.get("sortby")),
        after_key=_page_key(args.get("page"), args.get("sortby")),
        bbox=_bbox(args.get("bbox"), bbox_crs.epsg, geographic),
        bbox_crs=bbox_crs,
        time=parse_datetime(args.get("datetime")),
        filters=parse_filters(c, dict(args)),
        limit=limit,
        after=Int("after", high=2**62).parse(args.get("after")),
        crs=parse_crs(args.get("crs")),
    )


def items(req: OgcRequest, collection_id: str) -> OgcResponse:
    """Features by bbox, datetime and properties, ``limit`` per page with a ``next`` link;
    ``f=gpkg|fgb|shp|parquet|csv`` downloads the whole selection instead."""
    c = get_collection(collection_id)
    fmt = (req.args.get("f") or "json").lower()
    if fmt in FORMATS:
        return _download(req, c, fmt)
    if fmt not in {"json", "geojson"}:
        raise InvalidParameter(
            f"f is one of json, {', '.join(FORMATS)}", code="unknown_format", field="f"
        )
    q = feature_query(req, c)
    conn = req.conn()
    result = page(conn, q)
    # counted with the page, or a first page that holds everything: no second query
    matched: int | None
    if result.counted:
        matched = result.matched
    elif q.after is None and q.after_key is None and not result.more:  # (a first page)
        matched = result.returned
    else:
        matched = count(conn, q)
    links = [
        link(req.this_page(), "self", GEOJSON, "this page"),
        link(req.href(f"collections/{c.id}"), "collection", JSON, c.title),
    ]
    for fmt_name, spec in FORMATS.items():
        links.append(link(req.this_page(f=fmt_name), "alternate", spec.media_type, fmt_name))
    if result.more and result.last_key is not None:
        following = req.this_page(page=page_param(result.last_key))
        links.append(link(following, "next", GEOJSON, "next page"))
    elif result.more:
        links.append(link(req.this_page(after=result.last_id), "next", GEOJSON, "next page"))
    counts = {"numberReturned": result.returned}
    if matched is not None:  # (left out past COUNT_AT_MOST)
        counts = {"numberMatched": matched, **counts}
    head = dumps(
        {
            **counts,
            "timeStamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "links": links,
        }
    )
    body = '{"type":"FeatureCollection","features":[' + result.features + "]," + head[1:]
    return OgcResponse(
        body, GEOJSON, headers={"Content-Crs": f"<{q.crs.uri}>"}, audit_rows=result.returned
    )


def _download(req: OgcRequest, c: Collection, fmt: str) -> OgcResponse:
    q = feature_query(req, c, default_limit=None)
    spec = FORMATS[fmt]
    headers = {"Content-Disposition": f'attachment; filename="{c.id}.{spec.extension}"'}
    if fmt == "csv":
        with req.db.connect() as conn:
            q.where(conn)  # a bad filter answers 400 before the download starts

        def rows() -> Iterator[bytes]:
            with req.db.connect() as conn:
                yield from csv_chunks(conn, q)

        return OgcResponse(rows(), spec.media_type, headers=headers)
    with req.db.connect() as conn:  # a server-side cursor needs a transaction
        download = write_file(conn, q, fmt)
    headers["X-Feature-Count"] = str(download.features)
    headers["Content-Length"] = str(download.path.stat().st_size)
    return OgcResponse(
        download.chunks(), spec.media_type, headers=headers, audit_rows=download.features
    )


def item(req: OgcRequest, collection_id: str, fid: int) -> OgcResponse:
    """One feature (a version); a removed one answers 410 Gone with when it went."""
    c = get_collection(collection_id)
    crs = parse_crs(req.args.get("crs"))
    body, successor = feature(req.conn(), c, fid, crs)
    links = [
        link(req.url, "self", GEOJSON, "this feature"),
        link(req.href(f"collections/{c.id}"), "collection", JSON, c.title),
    ]
    if c.versioned:
        versions_url = req.href(f"collections/{c.id}/items/{fid}/versions")
        links.append(link(versions_url, "version-history", GEOJSON, "all versions"))
    if successor is not None:
        latest = req.href(f"collections/{c.id}/items/{successor}")
        links.append(link(latest, "latest-version", GEOJSON, "the current version"))
    return OgcResponse(
        body[:-1] + ',"links":' + dumps(links) + "}",
        GEOJSON,
        headers={"Content-Crs": f"<{crs.uri}>"},
        audit_rows=1,
    )


def item_versions(req: OgcRequest, collection_id: str, fid: int) -> OgcResponse:
    """Every version of the feature, oldest first (valid_from / valid_to in properties)."""
    c = get_collection(collection_id)
    found = versions(req.conn(), c, fid, parse_crs(req.args.get("crs")))
    body = (
        '{"type":"FeatureCollection","features":['
        + ",".join(found)
        + f'],"numberReturned":{len(found)}}}'
    )
    return OgcResponse(body, GEOJSON, audit_rows=len(found))
