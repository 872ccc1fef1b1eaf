"""`GET /api`: the OpenAPI 3.0 description of every endpoint, made from the app's own routes.

Paths and path parameters come from the URL map, summaries from the view docstrings, the
query parameters from :data:`QUERY`, request bodies from :data:`BODIES`; every error is a
problem document. `tests/test_openapi.py` runs schemathesis against it.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from api.auth import ENDPOINTS
from geo.features.collections import COLLECTIONS, Collection

bp = Blueprint("openapi", __name__)

STR = {"type": "string"}
INT = {"type": "integer", "minimum": 0}
QUERY: dict[str, dict[str, dict[str, Any]]] = {
    "divisions.search_divisions": {
        "q": STR,
        "agency": STR,
        "level": STR,
        "within": STR,
        "as_of": STR,
        "limit": {"type": "integer", "minimum": 1, "maximum": 200},
    },
    "divisions.divisions_at": {
        "lon": {"type": "number"},
        "lat": {"type": "number"},
        "agency": STR,
        "as_of": STR,
    },
    "divisions.get_division": {"as_of": STR, "children_limit": INT, "children_offset": INT},
    "divisions.get_children": {"as_of": STR, "limit": INT, "offset": INT},
    "editions.get_editions": {"agency": STR},
    "changes.get_daily": {
        "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
        "offset": INT,
    },
    "changes.get_changes": {
        "since": STR,
        "kinds": STR,
        "bbox": STR,
        "within": STR,
        "upload": {"type": "integer", "minimum": 1},
        "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
    },
    "editions.get_events": {"kind": STR, "limit": INT, "offset": INT},
    "crosswalk.get_runs": {"limit": INT},
    "crosswalk.get_links": {
        "run": INT,
        "level": STR,
        "status": STR,
        "moi": STR,
        "sci": STR,
        "hf": STR,
        "parent": STR,
        "limit": INT,
        "offset": INT,
    },
    "crosswalk.get_review": {"level": STR, "limit": INT, "offset": INT},
    "crosswalk.export_csv": {"release": STR, "run": STR},
    "crosswalk.export_xlsx": {"release": STR, "run": STR},
    "admin.get_audit": {"agency": STR, "service": STR, "status": STR, "limit": INT, "offset": INT},
    "features.get_items": {
        "bbox": {"type": "string", "description": "x0,y0,x1,y1 (CRS84 unless bbox-crs)"},
        "bbox-crs": STR,
        "datetime": {"type": "string", "description": "an instant or start/end (.. open)"},
        "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
        "after": {"type": "integer", "minimum": 0, "description": "paging key (next link)"},
        "crs": STR,
        "f": {"type": "string", "enum": ["json", "geojson", "gpkg", "fgb", "shp", "csv"]},
    },
    "features.get_item": {"crs": STR},
    "features.get_versions": {"crs": STR},
    "tiles.get_tile": {"datetime": STR},
    "coverage.post_coverage": {"crs": STR, "datetime": STR},
    "coverage.get_plate_coverage": {"datetime": STR},
}
OBJECT = {"type": "object"}
MULTIPART_FILE = {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "divisions.resolve_batch": (
        "application/json",
        {
            "type": "object",
            "required": ["agency", "codes"],
            "properties": {"agency": STR, "codes": {"type": "array", "items": STR}, "as_of": STR},
        },
    ),
    "editions.post_edition": (
        "multipart/form-data",
        {
            "type": "object",
            "required": ["file", "agency", "edition"],
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "agency": STR,
                "edition": STR,
                "published": STR,
                "format": STR,
                "valid_only": STR,
            },
        },
    ),
    "uploads.post_upload": (
        "multipart/form-data",
        {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "village": STR,
                "crs": STR,
                "dry_run": STR,
                "repair": STR,
                "mapping": STR,
            },
        },
    ),
    "subscriptions.post_subscription": (
        "application/json",
        {
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": STR,
                "kinds": {"type": "array", "items": STR},
                "bbox": {"type": "array", "items": {"type": "number"}},
                "within": STR,
                "secret": STR,
                "since": STR,
                "batch_size": {"type": "integer", "minimum": 1, "maximum": 5000},
            },
        },
    ),
    "plates.post_notice": (
        "multipart/form-data",
        {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary"},
                "crs": STR,
                "name": STR,
            },
        },
    ),
    "crosswalk.post_run": (
        "application/json",
        {"type": "object", "properties": {"moi": STR, "sci": STR, "hf": STR}},
    ),
    "crosswalk.post_decision": (
        "application/json",
        {
            "type": "object",
            "required": ["level", "moi_code", "decision"],
            "properties": {
                "level": STR,
                "moi_code": STR,
                "sci_code": STR,
                "hf_code": STR,
                "decision": STR,
                "note": STR,
            },
        },
    ),
    "crosswalk.post_release": (
        "application/json",
        {"type": "object", "properties": {"run_id": INT, "note": STR}},
    ),
    "admin.post_key": (
        "application/json",
        {
            "type": "object",
            "required": ["agency", "role", "name"],
            "properties": {"agency": STR, "role": STR, "name": STR, "expires_days": INT},
        },
    ),
    "admin.post_agency": (
        "application/json",
        {
            "type": "object",
            "required": ["code", "name", "name_fa"],
            "properties": {"code": STR, "name": STR, "name_fa": STR},
        },
    ),
    "admin.put_policy": (
        "application/json",
        {
            "type": "object",
            "properties": {
                "mode": STR,
                "agencies": {"type": "array", "items": STR},
                "public": {"type": "boolean"},
            },
        },
    ),
}
PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": STR,
        "title": STR,
        "status": {"type": "integer"},
        "code": STR,
        "detail": STR,
        "instance": STR,
        "field": STR,
    },
}
GEOJSON_MEDIA = "application/geo+json"
MEDIA: dict[str, str | list[str]] = {
    "features.get_items": [
        GEOJSON_MEDIA,
        "application/geopackage+sqlite3",
        "application/flatgeobuf",
        "application/zip",
        "text/csv",
    ],
    "features.get_item": GEOJSON_MEDIA,
    "features.get_versions": GEOJSON_MEDIA,
    "tiles.get_tile": "application/vnd.mapbox-vector-tile",
    "crosswalk.export_csv": "text/csv",
    "crosswalk.export_xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SUCCESS = {
    "POST": {
        "crosswalk.post_run": "202",
        "uploads.post_upload": "202",
        "uploads.publish": "202",
        "crosswalk.post_decision": "201",
        "subscriptions.post_subscription": "201",
        "crosswalk.post_release": "201",
        "admin.post_key": "201",
        "admin.post_agency": "201",
        "editions.post_edition": "201",
    }
}


def _schema(media: str) -> dict[str, Any]:
    if media in {"application/json", GEOJSON_MEDIA}:
        return OBJECT
    return {"type": "string", "format": "binary"} if "text" not in media else STR


def _operation(
    endpoint: str, method: str, rule: Any, collection: Collection | None = None
) -> dict[str, Any]:
    view = current_app.view_functions[endpoint]
    doc = (view.__doc__ or endpoint).strip().splitlines()[0]
    params = [
        {
            "name": a,
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0}
            if type(rule._converters[a]).__name__ == "IntegerConverter"
            else STR,
        }
        for a in sorted(rule.arguments)
        if not (collection and a == "collection_id")
    ]
    params += [
        {"name": n, "in": "query", "required": False, "schema": s}
        for n, s in QUERY.get(endpoint, {}).items()
    ]
    if collection is not None and endpoint in {"features.get_items", "tiles.get_tile"}:
        params += [
            {
                "name": n,
                "in": "query",
                "required": False,
                "description": f.description,
                "schema": STR,
            }
            for n, f in collection.filters.items()
        ]
    success = SUCCESS.get(method, {}).get(endpoint, "200")
    media = MEDIA.get(endpoint, "application/json")
    medias = media if isinstance(media, list) else [media]
    problem = {
        "description": "a problem (RFC 9457)",
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }
    responses: dict[str, Any] = {
        success: {
            "description": "success",
            "content": {m: {"schema": _schema(m)} for m in medias},
        },
        **{
            code: problem
            for code in (
                "400",
                "401",
                "403",
                "404",
                "405",
                "410",
                "413",
                "415",
                "422",
                "429",
                "503",
            )
        },
    }
    if endpoint == "crosswalk.post_release" or endpoint == "admin.delete_key":
        responses["200"] = {
            "description": "done",
            "content": {"application/json": {"schema": OBJECT}},
        }
    op: dict[str, Any] = {
        "operationId": f"{endpoint}.{method.lower()}",
        "summary": doc,
        "parameters": params,
        "responses": responses,
    }
    if endpoint == "tiles.get_tile":
        responses["304"] = {"description": "the client's copy (If-None-Match) is current"}
    if endpoint in ENDPOINTS:
        service = ENDPOINTS[endpoint][0]
        op["tags"] = [collection.service if collection else service]
        op["security"] = [{"apiKey": []}]
    if collection is not None:
        op["operationId"] = f"{endpoint}.{collection.id}.{method.lower()}"
    if endpoint in BODIES:
        media_type, schema = BODIES[endpoint]
        op["requestBody"] = {"required": True, "content": {media_type: {"schema": schema}}}
    return op


def spec() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for rule in current_app.url_map.iter_rules():
        if rule.endpoint in {"static"}:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        # OGC style: one path per collection, each with its own queryables
        collections = list(COLLECTIONS.values()) if "collection_id" in rule.arguments else [None]
        for collection in collections:
            concrete = path.replace("{collection_id}", collection.id) if collection else path
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                paths.setdefault(concrete, {})[method.lower()] = _operation(
                    rule.endpoint, method, rule, collection
                )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "tagsim",
            "version": "0.1.0",
            "description": "Iran's divisions, the MOI/SCI/HF crosswalk, parcel maps.",
        },
        "servers": [{"url": "/"}],
        "components": {"securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


@bp.get("/api")
def api() -> Response:
    """The OpenAPI description of this service."""
    return jsonify(spec())
