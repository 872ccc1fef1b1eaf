"""Areas of lon/lat (EPSG:4326) polygons in square metres on the WGS 84 ellipsoid, in bulk.

A parcel or a village's plan zone spans a few kilometres at most. Over such a span the
ellipsoid's area element ``M(φ) N(φ) cos φ dφ dλ`` is nearly constant, and taken at the
polygon's centroid latitude its first-order variation cancels (the centroid is where the
latitude's first moment is zero). So ``planar area in degrees² × M N cos φ`` at the centroid
is the geodesic area to within a few parts in a million for parcels, computed in one
vectorised pass by shapely instead of one spheroidal integral per polygon in PostGIS
(``ST_Area(geom::geography)``, ~10 µs each: 12 s for a national file).

Example:
    >>> import shapely
    >>> square = shapely.box(51.0, 35.0, 51.001, 35.001)   # ~91 m × 111 m near Tehran
    >>> round(float(ellipsoidal_area([square])[0]))
    10128
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely

__all__ = ["ellipsoidal_area"]

_A = 6378137.0  # WGS 84 semi-major axis, m
_E2 = 0.00669437999014  # first eccentricity squared
_RAD = np.pi / 180.0


def ellipsoidal_area(geoms: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Area in m² of each lon/lat polygon (NaN for a missing geometry, 0 for an empty one)."""
    geoms = np.asarray(geoms, dtype=object)
    planar, lat = _planar_and_latitude(geoms)
    lat = np.nan_to_num(lat) * _RAD
    w = 1.0 - _E2 * np.sin(lat) ** 2
    scale = _A * _A * (1.0 - _E2) / (w * w) * np.cos(lat) * _RAD * _RAD  # M·N·cos φ per deg²
    out = planar * scale
    return np.where(planar == 0.0, 0.0, out)


def _planar_and_latitude(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each geometry's area in degrees² and its centroid's latitude (NaN where none).

    Polygons without holes, nearly every parcel, are done from their coordinates at once
    (the shoelace sums, about each ring's first point for precision): building a centroid
    point per polygon cost more than the rest of the area. Others ask GEOS."""
    planar = shapely.area(geoms)
    lat = np.full(len(geoms), np.nan)
    simple = (shapely.get_type_id(geoms) == 3) & ~shapely.is_empty(geoms)
    simple[simple] = shapely.get_num_interior_rings(geoms[simple]) == 0
    rings = np.flatnonzero(simple)
    if len(rings):
        lat[rings] = _ring_latitudes(geoms[rings])
    other = np.flatnonzero(~simple)
    if len(other):
        centroids = shapely.centroid(geoms[other])
        usable = ~(shapely.is_missing(centroids) | shapely.is_empty(centroids))
        lat[other[usable]] = shapely.get_y(centroids[usable])
    return planar, lat


def _ring_latitudes(polygons: np.ndarray) -> np.ndarray:
    """The centroid latitude of each polygon without holes, from its shell's coordinates."""
    xy, which = shapely.get_coordinates(polygons, return_index=True)
    starts = np.r_[0, np.flatnonzero(np.diff(which)) + 1]
    y0 = xy[starts, 1]
    dx = xy[:, 0] - xy[starts, 0][which]
    dy = xy[:, 1] - y0[which]
    cross = dx[:-1] * dy[1:] - dx[1:] * dy[:-1]  # consecutive points; across rings: dropped
    cross[which[:-1] != which[1:]] = 0.0
    n = len(polygons)
    twice_area = np.bincount(which[:-1], weights=cross, minlength=n)
    moment = np.bincount(which[:-1], weights=(dy[:-1] + dy[1:]) * cross, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return y0 + moment / (3.0 * twice_area)
