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
from datetime import date
from typing import Any, Literal, TypeVar

from flask import Flask, current_app, request

from geo.errors import InvalidParameter, ValidationError
from geo.geodata.bbox import BBox, parse_bbox
from geo.geodata.dates import parse_date
from geo.geodata.registry.references import clean_agency

__all__ = [
    "BY_COLLECTION",
    "Agency",
    "Bbox",
    "Body",
    "Date",
    "Endpoint",
    "Int",
    "Num",
    "Param",
    "Text",
    "arg",
    "check_declared",
    "declare",
    "declared",
    "endpoint_of",
    "services",
]

BY_COLLECTION = "by collection"  # the service is the collection's (features.collections)
Access = Literal["service", "public", "key"]
View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Param:
    """A query parameter: its name, its OpenAPI schema and how its text is read."""

    name: str
    description: str = ""

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}

    def parse(self, raw: str | None) -> Any:
        return raw or None


@dataclass(frozen=True)
class Text(Param):
    """Text, or None when absent or empty (``enum``: the values allowed)."""

    enum: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        return {"type": "string", **({"enum": list(self.enum)} if self.enum else {})}

    def parse(self, raw: str | None) -> str | None:
        if raw and self.enum and raw not in self.enum:
            raise InvalidParameter(f"{self.name} is one of {', '.join(self.enum)}", field=self.name)
        return raw or None


@dataclass(frozen=True)
class Int(Param):
    """A whole number from ``low`` to ``high``; ``default`` when absent (None: optional)."""

    default: int | None = None
    low: int = 0
    high: int = 10**9

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.low, "maximum": self.high}

    def parse(self, raw: str | None) -> int | None:
        if raw is None or raw == "":
            return self.default
        try:
            value = int(raw)
        except ValueError:
            raise InvalidParameter(f"{self.name} must be a whole number", field=self.name) from None
        if not self.low <= value <= self.high:
            raise InvalidParameter(
                f"{self.name} must be from {self.low} to {self.high}", field=self.name
            )
        return value


@dataclass(frozen=True)
class Num(Param):
    """A required number."""

    def schema(self) -> dict[str, Any]:
        return {"type": "number"}

    def parse(self, raw: str | None) -> float:
        if raw is None or raw == "":
            raise InvalidParameter(f"{self.name} is required", field=self.name)
        try:
            return float(raw)
        except ValueError:
            raise InvalidParameter(f"{self.name} must be a number", field=self.name) from None


@dataclass(frozen=True)
class Date(Param):
    """A date, Gregorian or Jalali (``1402-07-01``), or None."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "description": self.description or "a date (Jalali or ISO)"}

    def parse(self, raw: str | None) -> date | None:
        if not raw:
            return None
        try:
            return parse_date(raw)
        except ValidationError as exc:
            raise InvalidParameter(exc.message, field=self.name) from None


@dataclass(frozen=True)
class Agency(Param):
    """An agency's short name (lower case), or None."""

    def parse(self, raw: str | None) -> str | None:
        return clean_agency(raw, self.name) if raw else None


@dataclass(frozen=True)
class Bbox(Param):
    """``minlon,minlat,maxlon,maxlat`` in WGS 84, or None."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "description": self.description or "minlon,minlat,maxlon,maxlat"}

    def parse(self, raw: str | None) -> BBox | None:
        return parse_bbox(raw, self.name)


@dataclass(frozen=True)
class Body:
    """A request body: its media type and JSON schema."""

    media_type: str
    schema: dict[str, Any]
    required: bool = True


@dataclass(frozen=True)
class Endpoint:
    """Everything said about one endpoint, in one place.

    ``access``: ``public`` (no key), ``key`` (any valid key) or ``service`` (the key's role
    must reach ``role`` and the service's policy must admit its agency). ``replica``: a
    read a replica may answer. ``query``/``body``: what it takes, parsed by :func:`arg`
    and described in the OpenAPI document with ``success``, ``media`` and ``responses``.
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
) -> Callable[[View], View]:
    """Record the endpoint's declaration on its view (see :class:`Endpoint`)."""
    if [public, key_only, service is not None].count(True) != 1:
        raise ValueError("an endpoint is public, key_only or of a service: exactly one")
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


STRING: dict[str, Any] = {"type": "string"}
FILE: dict[str, Any] = {"type": "string", "format": "binary"}


def _schema_of(kind: Any) -> dict[str, Any]:
    if kind is str:
        return STRING
    if kind is int:
        return {"type": "integer"}
    if kind is bool:
        return {"type": "boolean"}
    return dict(kind)


def json_object(*required: str, body_required: bool = True, **properties: Any) -> Body:
    """A JSON object body: ``required`` names, each property a type (``str``, ``int``,
    ``bool``) or a JSON schema."""
    schema: dict[str, Any] = {"type": "object"}
    if required:
        schema["required"] = list(required)
    if properties:
        schema["properties"] = {k: _schema_of(v) for k, v in properties.items()}
    return Body("application/json", schema, required=body_required)


def form(*required: str, **fields: Any) -> Body:
    """A multipart form with a ``file`` field and text fields (as :func:`json_object`)."""
    schema: dict[str, Any] = {
        "type": "object",
        "required": list(required),
        "properties": {"file": FILE, **{k: _schema_of(v) for k, v in fields.items()}},
    }
    return Body("multipart/form-data", schema)
