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
    planar = shapely.area(geoms)  # degrees²
    centroids = shapely.centroid(geoms)
    usable = ~(shapely.is_missing(centroids) | shapely.is_empty(centroids))
    lat = np.zeros(len(geoms))
    lat[usable] = shapely.get_y(centroids[usable]) * _RAD
    w = 1.0 - _E2 * np.sin(lat) ** 2
    scale = _A * _A * (1.0 - _E2) / (w * w) * np.cos(lat) * _RAD * _RAD  # M·N·cos φ per deg²
    out = planar * scale
    return np.where(planar == 0.0, 0.0, out)
