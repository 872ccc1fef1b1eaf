"""Ellipsoidal areas in bulk (geo/geodata/areas.py) against pyproj's geodesic areas."""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import Geod

from geo.geodata.areas import ellipsoidal_area


def _quad(rng: np.random.Generator) -> shapely.Polygon:
    lon, lat, size = rng.uniform(44, 63), rng.uniform(25, 40), rng.uniform(1e-4, 0.05)
    return shapely.Polygon(
        [
            (lon, lat),
            (lon + size, lat + size * 0.2),
            (lon + size * 0.8, lat + size),
            (lon - size * 0.1, lat + size * 0.7),
        ]
    )


def test_parcels_and_zones_agree_with_the_geodesic_area() -> None:
    geod = Geod(ellps="WGS84")
    rng = np.random.default_rng(7)
    polygons = [_quad(rng) for _ in range(500)]  # ~10 m to ~5 km across, all over Iran
    reference = np.array([abs(geod.geometry_area_perimeter(p)[0]) for p in polygons])
    got = ellipsoidal_area(polygons)
    assert np.max(np.abs(got - reference) / reference) < 2e-5


def test_missing_empty_and_non_polygons() -> None:
    got = ellipsoidal_area(
        [None, shapely.Polygon(), shapely.Point(51, 35), shapely.box(51, 35, 51.001, 35.001)]
    )
    assert np.isnan(got[0]) and got[1] == 0 and got[2] == 0 and 10_000 < got[3] < 10_300


def test_the_coordinate_path_agrees_with_geos() -> None:
    """Polygons without holes are measured from their coordinates; the same shapes as
    multipolygons (measured through GEOS's centroid) or drawn the other way round agree."""
    rng = np.random.default_rng(11)
    polygons = [_quad(rng) for _ in range(200)]
    simple = ellipsoidal_area(polygons)
    as_multi = ellipsoidal_area([shapely.MultiPolygon([p]) for p in polygons])
    reversed_rings = ellipsoidal_area([shapely.Polygon(p.exterior.coords[::-1]) for p in polygons])
    assert np.allclose(simple, as_multi, rtol=1e-12) and np.allclose(simple, reversed_rings)
    holed = shapely.box(51, 35, 51.01, 35.01).difference(
        shapely.box(51.002, 35.002, 51.004, 35.004)
    )
    outer, inner = ellipsoidal_area([shapely.box(51, 35, 51.01, 35.01), holed])
    assert 0.95 < inner / outer < 0.97  # the hole is 4% of the box
