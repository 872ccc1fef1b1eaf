"""Query parameters and request bodies as an endpoint declares them: each knows its OpenAPI
schema and how to read its text. No web framework here: the OGC core (`api.ogc`) and the
declarations (`api.endpoints`) share them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from geo.errors import InvalidParameter, ValidationError
from geo.geodata.bbox import BBOX_PATTERN, BBox, parse_bbox
from geo.geodata.dates import DATE_PATTERN, parse_date
from geo.geodata.registry.references import clean_agency, clean_code, parse_unit_ref

__all__ = [
    "FILE",
    "STRING",
    "Agency",
    "Bbox",
    "Body",
    "Choice",
    "Code",
    "Date",
    "Int",
    "Num",
    "Param",
    "RequiredAgency",
    "RequiredText",
    "Text",
    "UnitRef",
    "form",
    "json_object",
]


# What the server accepts, said in the OpenAPI document (schemathesis holds us to it): an
# agency's short name, a code in ASCII, Persian or Arabic-Indic digits, and AGENCY:CODE.
AGENCY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,31}$"
CODE_PATTERN = r"^[0-9\u06F0-\u06F9\u0660-\u0669]{1,40}$"
UNIT_REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,31}:[0-9\u06F0-\u06F9\u0660-\u0669]{1,40}$"
AGENCY_SCHEMA: dict[str, Any] = {"type": "string", "pattern": AGENCY_PATTERN}
CODE_SCHEMA: dict[str, Any] = {"type": "string", "pattern": CODE_PATTERN}
UNIT_REF_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": UNIT_REF_PATTERN,
    "description": "AGENCY:CODE, e.g. sci:2301010001000101",
}


@dataclass(frozen=True)
class Param:
    """A query parameter: its name, its OpenAPI schema and how its text is read."""

    name: str
    description: str = ""
    required = False  # (a class attribute: a parameter type that must be given says so)

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}

    def schema_in(self, collection: Any) -> dict[str, Any]:
        """The schema on one collection's path (``/collections/{id}/…``), when it differs."""
        return self.schema()

    def parse(self, raw: str | None) -> Any:
        return raw or None


@dataclass(frozen=True)
class Text(Param):
    """Text, or None when absent or empty (``enum``: the values allowed; ``min_length``
    said in the schema when the view refuses shorter text)."""

    enum: tuple[str, ...] = ()
    min_length: int = 0
    max_length: int = 0
    pattern: str = ""  # said in the schema; the view's parsing holds to it

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            **({"enum": list(self.enum)} if self.enum else {}),
            **({"minLength": self.min_length} if self.min_length else {}),
            **({"maxLength": self.max_length} if self.max_length else {}),
            **({"pattern": self.pattern} if self.pattern else {}),
        }

    def parse(self, raw: str | None) -> str | None:
        if raw and self.enum and raw not in self.enum:
            raise InvalidParameter(f"{self.name} is one of {', '.join(self.enum)}", field=self.name)
        return raw or None


@dataclass(frozen=True)
class RequiredText(Text):
    """Text that must be given."""

    required = True


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
    """A required number, from ``low`` to ``high``."""

    required = True
    low: float = -1e308
    high: float = 1e308

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "minimum": self.low, "maximum": self.high}

    def parse(self, raw: str | None) -> float:
        if raw is None or raw == "":
            raise InvalidParameter(f"{self.name} is required", field=self.name)
        try:
            value = float(raw)
        except ValueError:
            raise InvalidParameter(f"{self.name} must be a number", field=self.name) from None
        if not self.low <= value <= self.high:
            raise InvalidParameter(
                f"{self.name} is from {self.low:g} to {self.high:g}", field=self.name
            )
        return value


@dataclass(frozen=True)
class Date(Param):
    """A date, Gregorian or Jalali (``1402-07-01``, ``۱۴۰۲/۰۷/۰۱``), or None. Text not
    written as a date is 400; a date that does not exist (1402-13-40) is 422
    ``invalid_date``."""

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "pattern": DATE_PATTERN,
            "description": self.description or "a date (Jalali or ISO)",
        }

    def parse(self, raw: str | None) -> date | None:
        if not raw:
            return None
        if re.fullmatch(DATE_PATTERN, raw.strip()) is None:
            raise InvalidParameter(
                f"{self.name} is a date such as 1401-08-25 or 2022-11-16", field=self.name
            )
        try:
            return parse_date(raw)
        except ValidationError as exc:
            raise ValidationError(exc.message, code="invalid_date", field=self.name) from None


@dataclass(frozen=True)
class Agency(Param):
    """An agency's short name (lower case), or None."""

    def schema(self) -> dict[str, Any]:
        return AGENCY_SCHEMA

    def parse(self, raw: str | None) -> str | None:
        return clean_agency(raw, self.name) if raw else None


@dataclass(frozen=True)
class RequiredAgency(Agency):
    """An agency's short name that must be given."""

    required = True

    def parse(self, raw: str | None) -> str | None:
        if not raw:
            raise InvalidParameter(f"{self.name} is required (moi, sci, hf, …)", field=self.name)
        return super().parse(raw)


@dataclass(frozen=True)
class Choice(Param):
    """Text the schema lists (``values``) while the view's parser also takes other
    spellings of them (e.g. ``EPSG:4326`` for its URI); None when absent."""

    values: tuple[str, ...] = ()

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.values)}


@dataclass(frozen=True)
class Code(Param):
    """A unit's code (digits of any script), as ASCII digits; or None."""

    def schema(self) -> dict[str, Any]:
        return CODE_SCHEMA

    def parse(self, raw: str | None) -> str | None:
        return clean_code(raw, self.name) if raw else None


@dataclass(frozen=True)
class UnitRef(Param):
    """``AGENCY:CODE``, or None."""

    def schema(self) -> dict[str, Any]:
        return UNIT_REF_SCHEMA

    def parse(self, raw: str | None) -> Any:
        return parse_unit_ref(raw, self.name) if raw else None


@dataclass(frozen=True)
class Bbox(Param):
    """``minlon,minlat,maxlon,maxlat`` in WGS 84, or None."""

    def schema(self) -> dict[str, Any]:
        return {
            "type": "string",
            "pattern": BBOX_PATTERN,
            "description": self.description or "minlon,minlat,maxlon,maxlat",
        }

    def parse(self, raw: str | None) -> BBox | None:
        return parse_bbox(raw, self.name)


@dataclass(frozen=True)
class Body:
    """A request body: its media type and JSON schema."""

    media_type: str
    schema: dict[str, Any]
    required: bool = True


STRING: dict[str, Any] = {"type": "string"}
FILE: dict[str, Any] = {"type": "string", "format": "binary"}
FLAG: dict[str, Any] = {"type": "string", "enum": ["true", "false"]}  # a form's yes/no


def _schema_of(kind: Any) -> dict[str, Any]:
    if kind is str:
        return STRING
    if kind is int:
        return {"type": "integer"}
    if kind is bool:
        return {"type": "boolean"}
    return dict(kind)


def json_object(
    *required: str,
    body_required: bool = True,
    one_of_required: tuple[str, ...] = (),
    **properties: Any,
) -> Body:
    """A JSON object body: ``required`` names, each property a type (``str``, ``int``,
    ``bool``) or a JSON schema; ``one_of_required``: at least one of these names."""
    schema: dict[str, Any] = {"type": "object"}
    if required:
        schema["required"] = list(required)
    if one_of_required:
        schema["anyOf"] = [{"required": [name]} for name in one_of_required]
    if properties:
        schema["properties"] = {k: _schema_of(v) for k, v in properties.items()}
    return Body("application/json", schema, required=body_required)


def form(*required: str, **fields: Any) -> Body:
    """A multipart form with a ``file`` field and text fields (as :func:`json_object`).
    An optional text field sent empty is its absence (as HTML forms send it), so its
    pattern or list admits the empty text."""
    properties = {k: _schema_of(v) for k, v in fields.items()}
    for name, schema in properties.items():
        if name not in required:
            properties[name] = _or_empty(schema)
    schema = {"type": "object", "required": list(required), "properties": {"file": FILE}}
    schema["properties"].update(properties)
    return Body("multipart/form-data", schema)


def _or_empty(schema: dict[str, Any]) -> dict[str, Any]:
    if "pattern" in schema:
        return {**schema, "pattern": f"^$|{schema['pattern']}"}
    if "enum" in schema and "" not in schema["enum"]:
        return {**schema, "enum": [*schema["enum"], ""]}
    return schema
