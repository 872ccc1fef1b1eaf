"""Each endpoint declared once, on its view: who may call it, where it reads, what it takes.

``@declare(...)`` stands under the route decorator and records an :class:`Endpoint` on the
view. Authentication and policy checks (`api.auth`), replica routing (`api.database`),
parameter parsing (:func:`arg`) and the OpenAPI document (`api.openapi`) all read that one
record; :func:`check_declared` refuses an app with a route that has none, so a new endpoint
cannot ship without its access rule.

Example::

    @bp.get("/editions")
    @declare(service="divisions", replica=True, query=[Text("agency")])
    def get_editions() -> Response:
        return jsonify(list_editions(get_conn(), arg("agency")))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from flask import Flask, current_app, request

from api.parameters import (
    FILE,
    STRING,
    Agency,
    Bbox,
    Body,
    Code,
    Date,
    Int,
    Num,
    Param,
    Text,
    UnitRef,
    form,
    json_object,
)
from geo.errors import InvalidParameter
from geo.models.access import OWNED_DATASETS

__all__ = [
    "BY_COLLECTION",
    "FILE",
    "STRING",
    "Agency",
    "Bbox",
    "Body",
    "Code",
    "Date",
    "Endpoint",
    "Int",
    "Num",
    "Param",
    "ServiceName",
    "Text",
    "UnitRef",
    "arg",
    "check_declared",
    "declare",
    "declared",
    "endpoint_of",
    "form",
    "json_object",
    "reject_unknown_query",
    "services",
]

NO_BODY_BYTES = 64 * 1024
JSON_BODY_BYTES = 1024 * 1024
BY_COLLECTION = "by collection"  # the service is the collection's (features.collections)
Access = Literal["service", "public", "key"]
View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Endpoint:
    """Everything said about one endpoint, in one place.

    ``access``: ``public`` (no key), ``key`` (any valid key) or ``service`` (the key's role
    must reach ``role`` and the service's policy must admit its agency). ``replica``: a
    read a replica may answer. ``query``/``body``: what it takes, parsed by :func:`arg`
    and described in the OpenAPI document with ``success``, ``media`` and ``responses``.
    ``owner``: the dataset the endpoint writes; the key's agency must own it
    (:mod:`geo.access.ownership`).
    """

    access: Access = "service"
    service: str | None = None
    role: str = "reader"
    replica: bool = False
    query: tuple[Param, ...] = ()
    body: Body | None = None
    success: int = 200
    media: tuple[str, ...] = ("application/json",)
    responses: dict[str, str] = field(default_factory=dict)
    collection_filters: bool = False  # takes the collection's own filters too
    audited: bool = True
    owner: str | None = None  # the dataset it writes: only its owner agency (or an admin)
    max_body: int | None = None  # bytes of body it reads at most (see body_limit)
    path: tuple[Param, ...] = ()  # path parameters' schemas (the URL map says which exist)
    schema: dict[str, Any] | None = None  # the success body's JSON Schema, when it has one

    def body_limit(self, app_max: int) -> int:
        """The most body bytes this endpoint reads (the app's ``MAX_CONTENT_LENGTH`` at
        most): its declared ``max_body``, else 64 KiB without a body, 1 MiB for JSON, the
        app's limit for files. Werkzeug holds every body to it as it is read, chunked ones
        included (413 ``request_entity_too_large``)."""
        if self.max_body is not None:
            return min(self.max_body, app_max)
        if self.body is None:
            return min(NO_BODY_BYTES, app_max)
        if self.body.media_type == "application/json":
            return min(JSON_BODY_BYTES, app_max)
        return app_max

    def param(self, name: str) -> Param:
        for p in self.query:
            if p.name == name:
                return p
        raise KeyError(f"the endpoint declares no query parameter {name!r}")


def declare(
    *,
    service: str | None = None,
    role: str = "reader",
    public: bool = False,
    key_only: bool = False,
    replica: bool = False,
    query: Sequence[Param] = (),
    body: Body | None = None,
    success: int = 200,
    media: str | Sequence[str] = "application/json",
    responses: dict[str, str] | None = None,
    collection_filters: bool = False,
    owner: str | None = None,
    max_body: int | None = None,
    path: Sequence[Param] = (),
    schema: dict[str, Any] | None = None,
) -> Callable[[View], View]:
    """Record the endpoint's declaration on its view (see :class:`Endpoint`)."""
    if [public, key_only, service is not None].count(True) != 1:
        raise ValueError("an endpoint is public, key_only or of a service: exactly one")
    if owner is not None and (owner not in OWNED_DATASETS or service is None):
        raise ValueError(f"owner is one of {', '.join(OWNED_DATASETS)}, on a service endpoint")
    spec = Endpoint(
        access="public" if public else "key" if key_only else "service",
        service=service,
        role=role,
        replica=replica,
        query=tuple(query),
        body=body,
        success=success,
        media=(media,) if isinstance(media, str) else tuple(media),
        responses=dict(responses or {}),
        collection_filters=collection_filters,
        owner=owner,
        max_body=max_body,
        path=tuple(path),
        schema=schema,
    )

    def record(view: View) -> View:
        view.tagsim_endpoint = spec  # type: ignore[attr-defined]
        return view

    return record


def declared(view: Callable[..., Any]) -> Endpoint | None:
    """The declaration recorded on a view, if any."""
    return getattr(view, "tagsim_endpoint", None)


# Flask's own endpoints and blueprint static folders: files, not services.
STATIC = Endpoint(access="public", audited=False)


def endpoint_of(app: Flask, name: str | None) -> Endpoint | None:
    """The declaration of endpoint ``name`` of ``app`` (static files are public)."""
    if not name:
        return None
    view = app.view_functions.get(name)
    found = declared(view) if view is not None else None
    if found is None and (name == "static" or name.endswith(".static")):
        return STATIC
    return found


def check_declared(app: Flask) -> None:
    """Refuse an app with a route whose view has no declaration."""
    missing = sorted(
        {rule.endpoint for rule in app.url_map.iter_rules()}
        - {n for n in app.view_functions if endpoint_of(app, n) is not None}
    )
    if missing:
        raise RuntimeError(f"routes without a declaration (api.endpoints.declare): {missing}")


def current_endpoint() -> Endpoint:
    found = endpoint_of(current_app, request.endpoint)
    if found is None:
        raise RuntimeError(f"{request.endpoint} has no declaration")
    return found


@dataclass(frozen=True)
class ServiceName(Param):
    """A service's name (the policies' keys): the schema lists the app's services."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": services()}


# Tolerated on every endpoint: OGC clients add ``f`` (the format) to whatever they ask.
ALWAYS_ALLOWED = frozenset({"f"})


def reject_unknown_query() -> None:
    """Before a service's view (after authentication): a query parameter the endpoint does
    not declare is refused (400 ``unknown_parameter``), not silently ignored — a typo in a
    filter would otherwise answer with everything."""
    found = endpoint_of(current_app, request.endpoint)
    if found is None or found.access == "public" or not request.args:
        return
    allowed = {p.name for p in found.query} | ALWAYS_ALLOWED
    if found.collection_filters:
        from geo.geodata.features.collections import COLLECTIONS

        collection = COLLECTIONS.get((request.view_args or {}).get("collection_id", ""))
        allowed |= set(collection.filters) if collection else set()
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise InvalidParameter(
            f"unknown parameter {', '.join(unknown)}; this endpoint takes "
            + (", ".join(sorted(allowed - ALWAYS_ALLOWED)) or "none"),
            code="unknown_parameter",
            field=unknown[0],
        )


def arg(name: str) -> Any:
    """The request's query parameter ``name``, read as the endpoint declares it."""
    return current_endpoint().param(name).parse(request.args.get(name))


def services(app: Flask | None = None) -> list[str]:
    """Every service an endpoint or a collection belongs to (the policies' keys)."""
    from geo.geodata.features.collections import COLLECTIONS

    app = app or current_app
    named = {
        spec.service
        for name in app.view_functions
        if (spec := endpoint_of(app, name)) is not None
        and spec.service not in {None, BY_COLLECTION}
    }
    return sorted({s for s in named if s} | {c.service for c in COLLECTIONS.values()})
