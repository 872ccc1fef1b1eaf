"""`GET /api`: the OpenAPI 3.0 description of every endpoint, made from the app's own routes.

Paths and path parameters come from the URL map, summaries from the view docstrings, and
everything else (query parameters with their bounds, bodies, media types, success codes,
security) from each view's declaration (`api.endpoints`); every error is a problem
document. `tests/test_openapi.py` runs schemathesis against it.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from api.endpoints import BY_COLLECTION, declare, endpoint_of
from api.parameters import CODE_SCHEMA, UNIT_REF_SCHEMA
from geo.geodata.features.collections import COLLECTIONS, Collection
from geo.geodata.features.query import MAX_WHOLE

bp = Blueprint("openapi", __name__)

STR = {"type": "string"}
OBJECT = {"type": "object"}
PROBLEM_STATUSES = (
    "400",
    "401",
    "403",
    "404",
    "405",
    "409",
    "410",
    "413",
    "415",
    "422",
    "429",
    "503",
)
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
# A collection filter's schema by its kind (geo.geodata.features.collections.Filter)
FILTER_SCHEMAS: dict[str, dict[str, Any]] = {
    "village": UNIT_REF_SCHEMA,
    "within": UNIT_REF_SCHEMA,
    "code": CODE_SCHEMA,
    "int": {"type": "integer", "minimum": 0, "maximum": MAX_WHOLE},
}


def _schema(media: str) -> dict[str, Any]:
    if media in {"application/json", GEOJSON_MEDIA} or media.endswith("+json"):
        return OBJECT
    return {"type": "string", "format": "binary"} if "text" not in media else STR


def _operation(
    endpoint: str, method: str, rule: Any, collection: Collection | None = None
) -> dict[str, Any]:
    view = current_app.view_functions[endpoint]
    declared = endpoint_of(current_app, endpoint)
    assert declared is not None  # create_app refuses undeclared routes
    doc = (view.__doc__ or endpoint).strip().splitlines()[0]
    in_path = {p.name: p.schema() for p in declared.path}
    params = [
        {
            "name": a,
            "in": "path",
            "required": True,
            "schema": in_path.get(a)
            or (
                {"type": "integer", "minimum": 0}
                if type(rule._converters[a]).__name__ == "IntegerConverter"
                else STR
            ),
        }
        for a in sorted(rule.arguments)
        if not (collection and a == "collection_id")
    ]
    params += [
        {
            "name": p.name,
            "in": "query",
            "required": p.required,
            # an empty value (?within=) is taken as the parameter's absence
            **({} if p.required else {"allowEmptyValue": True}),
            **({"description": p.description} if p.description else {}),
            "schema": p.schema_in(collection),
        }
        for p in declared.query
    ]
    if collection is not None and declared.collection_filters:
        params += [
            {
                "name": n,
                "in": "query",
                "required": False,
                "allowEmptyValue": True,
                "description": f.description,
                "schema": FILTER_SCHEMAS.get(f.kind, STR),
            }
            for n, f in collection.filters.items()
            if n not in {p.name for p in declared.query}
        ]
    problem = {
        "description": "a problem (RFC 9457)",
        "content": {"application/problem+json": {"schema": PROBLEM}},
    }
    responses: dict[str, Any] = {
        str(declared.success): {
            "description": "success",
            "content": {
                m: {
                    "schema": declared.schema
                    if declared.schema and m == declared.media[0]
                    else _schema(m)
                }
                for m in declared.media
            },
        },
        **{code: problem for code in PROBLEM_STATUSES},
    }
    for status, description in declared.responses.items():
        responses[status] = {"description": description}
        if status != "304":
            responses[status]["content"] = {"application/json": {"schema": OBJECT}}
    op: dict[str, Any] = {
        "operationId": f"{endpoint}.{method.lower()}",
        "summary": doc,
        "parameters": params,
        "responses": responses,
    }
    if declared.access != "public":
        service = collection.service if collection else declared.service
        if service and service != BY_COLLECTION:
            op["tags"] = [service]
        op["security"] = [{"apiKey": []}, {"basicKey": []}]
    if collection is not None:
        op["operationId"] = f"{endpoint}.{collection.id}.{method.lower()}"
    if declared.body is not None:
        op["requestBody"] = {
            "required": declared.body.required,
            "content": {declared.body.media_type: {"schema": declared.body.schema}},
        }
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
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
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
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer"},
                "basicKey": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "the API key as the password, any user name (QGIS)",
                },
            }
        },
        "paths": paths,
    }


@bp.get("/api")
@declare(public=True)
def api() -> Response:
    """The OpenAPI description of this service."""
    return jsonify(spec())
