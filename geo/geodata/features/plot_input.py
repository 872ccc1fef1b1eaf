"""A plot polygon sent by a client, checked and brought to EPSG:4326 — or a clear error.

Accepted: a GeoJSON Polygon or MultiPolygon (or a Feature holding one) in any CRS of
DESIGN.md section 5 (WGS 84 lon/lat, WGS 84 / UTM 38N–41N, ED50(ED77) and its UTM zones),
named by ``crs`` (``EPSG:32639``, an OGC URI, or the old GeoJSON ``crs`` member).
Every refusal is an ``InvalidParameter`` (HTTP 400) with its own code:
``invalid_geojson``, ``wrong_geometry_type``, ``empty_geometry``, ``geometry_too_large``,
``unsupported_crs``, ``invalid_geometry`` (with the reason and where), ``outside_iran``
(with a hint when the axes look swapped) and ``plot_too_large``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Polygon, shape
from shapely.geometry.base import BaseGeometry

from geo.errors import InvalidParameter
from geo.geodata.crs import SUPPORTED_EPSG, WGS84, transformer

__all__ = [
    "IRAN_BOUNDS",
    "MAX_PLOT_KM2",
    "MAX_VERTICES",
    "checked_polygon",
    "epsg_of",
    "geodesic_area",
    "parse_plot",
]

IRAN_BOUNDS = (43.5, 24.5, 63.8, 40.0)  # lon/lat box around Iran with a margin
MAX_VERTICES = 50_000
MAX_PLOT_KM2 = 500.0
_GEOD = Geod(ellps="WGS84")


def geodesic_area(geom: BaseGeometry) -> float:
    """Area in m² on the WGS 84 ellipsoid (pyproj), of a lon/lat geometry."""
    return abs(_GEOD.geometry_area_perimeter(geom)[0])


def _epsg(crs: Any) -> int:
    if crs is None or crs == "":
        return WGS84
    if isinstance(crs, dict):  # {"type": "name", "properties": {"name": "EPSG:32639"}}
        properties = crs.get("properties")
        crs = properties.get("name") if isinstance(properties, dict) else None
    raw = str(crs).strip()
    for prefix in (
        "http://www.opengis.net/def/crs/EPSG/0/",
        "urn:ogc:def:crs:EPSG::",
        "EPSG:",
        "epsg:",
    ):
        raw = raw.removeprefix(prefix)
    if raw in {"http://www.opengis.net/def/crs/OGC/1.3/CRS84", "urn:ogc:def:crs:OGC:1.3:CRS84"}:
        return WGS84
    if raw.isdigit() and int(raw) in SUPPORTED_EPSG:
        return int(raw)
    raise InvalidParameter(
        f"crs {crs!r} is not one of EPSG:{', EPSG:'.join(map(str, SUPPORTED_EPSG))}",
        code="unsupported_crs",
        field="crs",
    )


def _geometry_object(body: Any) -> tuple[dict[str, Any], Any]:
    """The geometry and the CRS named beside it."""
    if not isinstance(body, dict):
        raise InvalidParameter("send a GeoJSON geometry object", code="invalid_geojson")
    crs = body.get("crs")
    if body.get("type") == "Feature" or "geometry" in body:
        geometry = body.get("geometry")
        if isinstance(geometry, dict):
            crs = crs or geometry.get("crs")
        return geometry, crs  # type: ignore[return-value]
    return body, crs


def _build(geometry: Any) -> BaseGeometry:
    if not isinstance(geometry, dict) or "type" not in geometry:
        raise InvalidParameter(
            "the plot must be a GeoJSON Polygon or MultiPolygon", code="invalid_geojson"
        )
    if not isinstance(geometry["type"], str) or geometry["type"] not in {
        "Polygon",
        "MultiPolygon",
    }:
        raise InvalidParameter(
            f"the plot must be a Polygon or MultiPolygon, not {geometry['type']!r}",
            code="wrong_geometry_type",
        )
    try:
        geom = shape(geometry)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise InvalidParameter(
            f"the GeoJSON coordinates cannot be read: {exc}", code="invalid_geojson"
        ) from None
    except shapely.errors.GEOSException as exc:
        raise InvalidParameter(
            f"the GeoJSON coordinates cannot be read: {exc}", code="invalid_geojson"
        ) from None
    return geom


def _check_size(geom: BaseGeometry) -> None:
    if geom.is_empty:
        raise InvalidParameter("the plot has no coordinates", code="empty_geometry")
    vertices = shapely.get_num_coordinates(geom)
    if vertices > MAX_VERTICES:
        raise InvalidParameter(
            f"the plot has {vertices} vertices; at most {MAX_VERTICES} are accepted",
            code="geometry_too_large",
            vertices=int(vertices),
        )
    coords = shapely.get_coordinates(geom)
    if not all(math.isfinite(v) for v in coords.ravel()):
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
    raise InvalidParameter(
        f"the plot lies outside Iran (bounds {x0:.4f},{y0:.4f},{x1:.4f},{y1:.4f}){hint}",
        code="outside_iran",
        swapped_axes=swapped,
    )


def parse_plot(body: Any, crs: Any = None) -> MultiPolygon:
    """The plot as a valid lon/lat MultiPolygon inside Iran, or ``InvalidParameter``."""
    geometry, named = _geometry_object(body)
    return checked_polygon(_build(geometry), epsg_of(crs or named))


def epsg_of(crs: Any) -> int:
    """The EPSG code of a CRS named as ``EPSG:N``, an OGC URI or a GeoJSON ``crs`` member."""
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
        raise InvalidParameter(
            f"the plot is not a valid polygon: {reason}", code="invalid_geometry", reason=reason
        )
    if isinstance(geom, Polygon):
        geom = MultiPolygon([geom])
    if _box_km2(geom) <= MAX_PLOT_KM2:  # a plot's box bounds its area: most need no more
        return geom
    area_km2 = geodesic_area(geom) / 1e6
    if area_km2 > MAX_PLOT_KM2:
        raise InvalidParameter(
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
