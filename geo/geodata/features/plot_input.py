"""A plot polygon sent by a client, checked and brought to EPSG:4326 — or a clear error.

Accepted: a GeoJSON Polygon or MultiPolygon (or a Feature holding one) in any CRS of
DESIGN.md section 5 (WGS 84 lon/lat, WGS 84 / UTM 38N–41N, ED50(ED77) and its UTM zones),
named by ``crs`` (``EPSG:32639``, an OGC URI, or the old GeoJSON ``crs`` member).
``PLOT_SCHEMA`` is the JSON Schema of such a body (the OpenAPI document shows it).

A body that does not have that shape is an ``InvalidParameter`` (HTTP 400):
``invalid_geojson`` (not GeoJSON, or coordinates that are not arrays of numbers nested as
the type says), ``wrong_geometry_type``, ``unsupported_crs``. A plot of the right shape
whose content is wrong is a ``ValidationError`` (HTTP 422): ``empty_geometry``,
``geometry_too_large``, ``invalid_geometry`` (with the reason and where; also a ring too
short to be built), ``outside_iran`` (with a hint when the axes look swapped) and
``plot_too_large``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidParameter, ValidationError
from geo.geodata.crs import SUPPORTED_EPSG, WGS84, transformer
from geo.geodata.features.temporal import DATETIME_PATTERN
from geo.geodata.persian import ascii_digits, is_digits

__all__ = [
    "IRAN_BOUNDS",
    "MAX_PLOT_KM2",
    "MAX_VERTICES",
    "PLOT_CRS_NAMES",
    "PLOT_SCHEMA",
    "checked_polygon",
    "epsg_of",
    "geodesic_area",
    "parse_plot",
]

IRAN_BOUNDS = (43.5, 24.5, 63.8, 40.0)  # lon/lat box around Iran with a margin
MAX_VERTICES = 50_000
MAX_PLOT_KM2 = 500.0
_GEOD = Geod(ellps="WGS84")
_CRS84_NAMES = ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84")
_EPSG_PREFIXES = (
    "http://www.opengis.net/def/crs/EPSG/0/",
    "urn:ogc:def:crs:EPSG::",
    "EPSG:",
    "epsg:",
)
# The spellings the document lists; the parser also takes the other prefixes and bare codes
PLOT_CRS_NAMES = (_CRS84_NAMES[0], *(f"EPSG:{code}" for code in SUPPORTED_EPSG))

_CRS_NAME: dict[str, Any] = {"type": "string", "enum": list(PLOT_CRS_NAMES)}
_CRS_MEMBER: dict[str, Any] = {  # a name, or the old GeoJSON {"type": "name", ...} member
    "anyOf": [
        _CRS_NAME,
        {
            "type": "object",
            "required": ["properties"],
            "properties": {
                "type": {"type": "string"},
                "properties": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": _CRS_NAME},
                },
            },
        },
    ]
}
_POSITION = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3}
_RINGS = {"type": "array", "items": {"type": "array", "items": _POSITION}}
_DEPTH = {"Polygon": 3, "MultiPolygon": 4}  # arrays around a number in the coordinates


def _geometry_schema(kind: str, **beside: Any) -> dict[str, Any]:
    coordinates = _RINGS if kind == "Polygon" else {"type": "array", "items": _RINGS}
    return {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": [kind]},
            "coordinates": coordinates,
            "crs": _CRS_MEMBER,
            **beside,
        },
    }


_DATETIME = {"type": "string", "pattern": DATETIME_PATTERN}
PLOT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        _geometry_schema("Polygon", datetime=_DATETIME),
        _geometry_schema("MultiPolygon", datetime=_DATETIME),
        {
            "type": "object",
            "required": ["geometry"],
            "properties": {
                "type": {"type": "string", "enum": ["Feature"]},
                "geometry": {
                    "anyOf": [_geometry_schema("Polygon"), _geometry_schema("MultiPolygon")]
                },
                "crs": _CRS_MEMBER,
                "datetime": _DATETIME,
            },
        },
    ]
}


def geodesic_area(geom: BaseGeometry) -> float:
    """Area in m² on the WGS 84 ellipsoid (pyproj), of a lon/lat geometry."""
    return abs(_GEOD.geometry_area_perimeter(geom)[0])


def _epsg(crs: str | None) -> int:
    if crs is None or crs == "":
        return WGS84
    raw = str(crs).strip()
    for prefix in _EPSG_PREFIXES:
        raw = raw.removeprefix(prefix)
    if raw in _CRS84_NAMES:
        return WGS84
    raw = ascii_digits(raw)
    if is_digits(raw) and len(raw) < 7 and int(raw) in SUPPORTED_EPSG:
        return int(raw)
    raise InvalidParameter(
        f"crs {crs!r} is not one of EPSG:{', EPSG:'.join(map(str, SUPPORTED_EPSG))}",
        code="unsupported_crs",
        field="crs",
    )


def _geometry_object(body: Any) -> tuple[dict[str, Any], Any]:
    """The geometry and the CRS named beside it, once both have the shape of
    ``PLOT_SCHEMA`` (else ``InvalidParameter``)."""
    if not isinstance(body, dict):
        raise InvalidParameter("send a GeoJSON geometry object", code="invalid_geojson")
    crs = _crs_member(body, "crs")
    geometry = body
    if body.get("type") == "Feature" or "geometry" in body:
        if body.get("type", "Feature") != "Feature":
            raise InvalidParameter(
                "a body with a geometry member is a GeoJSON Feature", code="invalid_geojson"
            )
        geometry = body.get("geometry")  # type: ignore[assignment]
        if not isinstance(geometry, dict):
            raise InvalidParameter(
                "the Feature's geometry must be a GeoJSON Polygon or MultiPolygon",
                code="invalid_geojson",
            )
        crs = crs or _crs_member(geometry, "geometry.crs")
    _check_shape(geometry)
    return geometry, crs


def _crs_member(holder: dict[str, Any], where: str) -> str | None:
    """The CRS name in ``holder``'s ``crs`` member (a name or the old GeoJSON object)."""
    crs = holder.get("crs")
    if crs is None and "crs" not in holder:
        return None
    name = crs
    if isinstance(crs, dict):  # {"type": "name", "properties": {"name": "EPSG:32639"}}
        properties = crs.get("properties")
        name = properties.get("name") if isinstance(properties, dict) else None
    if not isinstance(name, str):
        raise InvalidParameter(
            f"{where} must name a CRS, e.g. EPSG:32639", code="unsupported_crs", field=where
        )
    return name


def _check_shape(geometry: dict[str, Any]) -> None:
    kind = geometry.get("type")
    if not isinstance(kind, str) or kind not in _DEPTH:
        if "type" not in geometry:
            raise InvalidParameter(
                "the plot must be a GeoJSON Polygon or MultiPolygon", code="invalid_geojson"
            )
        raise InvalidParameter(
            f"the plot must be a Polygon or MultiPolygon, not {kind!r}",
            code="wrong_geometry_type",
        )
    if not _nested_numbers(geometry.get("coordinates"), _DEPTH[kind]):
        raise InvalidParameter(
            f"a {kind}'s coordinates are arrays of [x, y] nested {_DEPTH[kind] - 1} deep",
            code="invalid_geojson",
        )


def _nested_numbers(value: Any, depth: int) -> bool:
    """``value`` is arrays nested ``depth`` deep whose innermost hold 2 or 3 finite numbers."""
    if not isinstance(value, list):
        return False
    if depth == 1:
        return 2 <= len(value) <= 3 and all(
            type(v) is int or (type(v) is float and math.isfinite(v)) for v in value
        )
    return all(_nested_numbers(item, depth - 1) for item in value)


def _build(geometry: dict[str, Any]) -> BaseGeometry:
    built = _built_at_once(geometry)
    if built is not None:
        return built
    try:
        return shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, OverflowError) as exc:
        reason = str(exc)
    except shapely.errors.GEOSException as exc:
        reason = str(exc)
    raise ValidationError(
        f"the plot is not a valid polygon: {reason}", code="invalid_geometry", reason=reason
    )


def _built_at_once(geometry: dict[str, Any]) -> BaseGeometry | None:
    """The common plot — flat (x, y) rings of four or more positions, each closed — built
    from arrays in one call (``shape`` builds each ring as an object: ~0.1 ms for a round
    plot); anything else (``None``) is left to ``shape`` and its errors."""
    coordinates = geometry["coordinates"]
    polygons = [coordinates] if geometry["type"] == "Polygon" else coordinates
    built = []
    for rings in polygons:
        if not rings:
            return None
        try:
            arrays = [np.asarray(ring, dtype=float) for ring in rings]
        except ValueError:  # (positions of 2 and 3 numbers mixed)
            return None
        for ring in arrays:
            if ring.ndim != 2 or ring.shape[0] < 4 or ring.shape[1] != 2:
                return None
            if not (ring[0] == ring[-1]).all():
                return None
        built.append(shapely.polygons(arrays[0], holes=arrays[1:] or None))
    if geometry["type"] == "Polygon":
        return built[0]  # type: ignore[no-any-return]
    return shapely.multipolygons(built) if built else None


def _check_size(geom: BaseGeometry) -> None:
    if geom.is_empty:
        raise ValidationError("the plot has no coordinates", code="empty_geometry")
    vertices = shapely.get_num_coordinates(geom)
    if vertices > MAX_VERTICES:
        raise ValidationError(
            f"the plot has {vertices} vertices; at most {MAX_VERTICES} are accepted",
            code="geometry_too_large",
            vertices=int(vertices),
        )
    if not np.isfinite(shapely.get_coordinates(geom)).all():
        raise InvalidParameter(
            "the plot has coordinates that are not numbers", code="invalid_geojson"
        )


def _inside_iran(geom: BaseGeometry) -> None:
    x0, y0, x1, y1 = geom.bounds
    lo_x, lo_y, hi_x, hi_y = IRAN_BOUNDS
    if lo_x <= x0 and x1 <= hi_x and lo_y <= y0 and y1 <= hi_y:
        return
    swapped = lo_x <= y0 and y1 <= hi_x and lo_y <= x0 and x1 <= hi_y
    hint = (
        "; the coordinates look like latitude, longitude — GeoJSON is longitude first"
        if swapped
        else ""
    )
    raise ValidationError(
        f"the plot lies outside Iran (bounds {x0:.4f},{y0:.4f},{x1:.4f},{y1:.4f}){hint}",
        code="outside_iran",
        swapped_axes=swapped,
    )


def parse_plot(body: Any, crs: Any = None) -> MultiPolygon:
    """The plot as a valid lon/lat MultiPolygon inside Iran, or ``InvalidParameter``."""
    geometry, named = _geometry_object(body)
    epsg = epsg_of(crs or named)  # (a shape error, so before any content error)
    return checked_polygon(_build(geometry), epsg)


def epsg_of(crs: str | None) -> int:
    """The EPSG code of a CRS named as ``EPSG:N``, an OGC URI or a bare code (lon/lat when
    absent), or ``unsupported_crs``."""
    return _epsg(crs)


def checked_polygon(geom: BaseGeometry, epsg: int = WGS84) -> MultiPolygon:
    """A polygon in ``epsg`` as a valid lon/lat MultiPolygon inside Iran, or InvalidParameter."""
    if geom.geom_type not in {"Polygon", "MultiPolygon"}:
        raise InvalidParameter(
            f"the plot must be a Polygon or MultiPolygon, not {geom.geom_type!r}",
            code="wrong_geometry_type",
        )
    _check_size(geom)
    if epsg != WGS84:
        t = transformer(epsg)
        geom = shapely.transform(geom, lambda xy: _xy(t, xy))
    _inside_iran(geom)
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise ValidationError(
            f"the plot is not a valid polygon: {reason}", code="invalid_geometry", reason=reason
        )
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    if _box_km2(geom) <= MAX_PLOT_KM2:  # a plot's box bounds its area: most need no more
        return geom
    area_km2 = geodesic_area(geom) / 1e6
    if area_km2 > MAX_PLOT_KM2:
        raise ValidationError(
            f"the plot covers {area_km2:,.0f} km²; at most {MAX_PLOT_KM2:,.0f} km² is accepted",
            code="plot_too_large",
        )
    return geom


def _box_km2(geom: BaseGeometry) -> float:
    """More than the area of the lon/lat box around ``geom``, in km² (a sphere of the
    ellipsoid's equatorial radius, the box's widest latitude): an upper bound of its area."""
    x0, y0, x1, y1 = geom.bounds
    widest = math.cos(math.radians(min(abs(y0), abs(y1)))) if y0 * y1 > 0 else 1.0
    return (x1 - x0) * (y1 - y0) * (6378.137 * math.pi / 180) ** 2 * widest * 1.01


def _xy(t: Any, xy: Any) -> Any:
    x, y = t.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])
