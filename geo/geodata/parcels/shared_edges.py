"""Which parcels of a tiling share every edge exactly with one neighbour.

Real cadastral maps are tilings: a parcel's edge is its neighbour's edge, the same two
vertices walked the other way. A parcel all of whose edges are so matched — each edge of it
(interior on the left, rings oriented) met exactly once, reversed, by another parcel's edge,
and by no other of the same direction — is *unflagged*. Among valid polygons an overlap
always involves a flagged parcel: the boundary of the region covered twice is made of edges
that are not matched (a matched pair of edges cancels out when crossed). So the overlap
check (:mod:`geo.geodata.parcels.checks`) tests only pairs with a flagged member and, when
one of them does overlap, every pair of the village. On a tiling ~14% of the parcels are
flagged (those on the village's outer boundary); on a map of separated parcels, all.

Edges are matched by the exact bits of their vertices' coordinates (hashed, then compared),
so a map whose neighbours share vertices to the last bit — as one drawn by a GIS, or
reprojected, always has — is recognised; near-coincident vertices are flagged, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

__all__ = ["Edges", "match_edges", "not_shared", "outline"]

_MIX_Y = np.uint64(0x9E3779B97F4A7C15)
_MIX_END = np.uint64(0xC2B2AE3D27D4EB4F)


def _rings(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(coordinates, ring offsets, each ring's polygon index, whether it is an exterior)."""
    _kind, xy, offsets = shapely.to_ragged_array(geoms)
    if len(offsets) == 2:  # polygons: rings, then polygons
        rings, polygons = offsets
        part_of_ring = np.repeat(np.arange(len(polygons) - 1), np.diff(polygons))
        owner = part_of_ring
        firsts = polygons[:-1]
    else:  # multipolygons: rings, parts, geometries
        rings, parts, geometries = offsets
        part_of_ring = np.repeat(np.arange(len(parts) - 1), np.diff(parts))
        owner = np.repeat(np.arange(len(geometries) - 1), np.diff(geometries))[part_of_ring]
        firsts = parts[:-1]
    exterior = np.zeros(len(rings) - 1, dtype=bool)
    exterior[firsts[firsts < len(rings) - 1]] = True
    return np.ascontiguousarray(xy, dtype=np.float64), rings, owner, exterior


@dataclass
class Edges:
    """What matching a village's edges found: each polygon's flag (some edge of it not
    shared) and the loose edges, as (m, 2, 2) coordinates oriented with their polygon on
    the left."""

    flagged: np.ndarray
    loose: np.ndarray


def not_shared(geoms: np.ndarray) -> np.ndarray:
    """For each of ``geoms`` (valid polygons or multipolygons), whether some edge of it is
    not shared exactly with one neighbour (see the module's docstring)."""
    return match_edges(geoms).flagged


def match_edges(geoms: np.ndarray) -> Edges:
    """Match the edges of ``geoms`` (valid polygons or multipolygons) with each other."""
    if len(geoms) < 2:
        return Edges(np.ones(len(geoms), dtype=bool), np.empty((0, 2, 2)))
    flagged = np.ones(len(geoms), dtype=bool)
    xy, rings, owner, exterior = _rings(geoms)
    n = len(xy)
    ring_of = np.repeat(np.arange(len(rings) - 1), np.diff(rings))
    starts = np.ones(n, dtype=bool)
    starts[rings[1:] - 1] = False  # a ring's closing vertex starts no edge
    i = np.flatnonzero(starts)
    x, y = xy[:, 0], xy[:, 1]
    # each ring's signed area (shoelace about its first vertex): exteriors counter-clockwise,
    # holes clockwise, so that every edge has its polygon on the left
    fx, fy = x[rings[:-1]][ring_of[i]], y[rings[:-1]][ring_of[i]]
    cross = (x[i] - fx) * (y[i + 1] - fy) - (x[i + 1] - fx) * (y[i] - fy)
    area = np.bincount(ring_of[i], weights=cross, minlength=len(rings) - 1)
    flip = ((area > 0) != exterior)[ring_of[i]]
    start, end = np.where(flip, i + 1, i), np.where(flip, i, i + 1)
    bits = xy.view(np.uint64).reshape(-1, 2)
    point = bits[:, 0] ^ (bits[:, 1] * _MIX_Y)
    forward = point[start] * _MIX_END + point[end]
    backward = point[end] * _MIX_END + point[start]
    # an edge and its neighbour's reversed copy have the same undirected key: sorted, a
    # shared edge is a run of exactly two, one of each direction, equal to the last bit
    order = np.argsort(np.minimum(forward, backward))
    keys = np.minimum(forward, backward)[order]
    same = keys[1:] == keys[:-1]
    two = np.zeros(len(keys), dtype=bool)  # runs of exactly two begin here
    two[:-1] = same
    two[:-2] &= ~same[1:]  # no third after them
    two[1:] &= ~same  # none before them
    run = two.nonzero()[0]
    p, q = order[run], order[run + 1]
    point_of = xy.view(np.complex128).ravel()  # a vertex as one number, compared exactly
    shared = (
        (forward[p] == backward[q])
        & (point_of[start[p]] == point_of[end[q]])
        & (point_of[end[p]] == point_of[start[q]])
    )
    matched = np.zeros(len(i), dtype=bool)
    matched[p[shared]] = True
    matched[q[shared]] = True
    flagged[:] = False
    flagged[owner[ring_of[i[~matched]]]] = True
    loose = ~matched
    return Edges(flagged, np.stack([xy[start[loose]], xy[end[loose]]], axis=1))


def outline(edges: Edges) -> list[Any] | None:
    """The outline of the polygons' union when it is simple: their loose edges joined into
    closed rings, each counter-clockwise and simple, no two touching or nested; then no
    point lies in two polygons, and the union is exactly these rings' polygons. None
    otherwise (holes, parts meeting at a point, near-shared edges, overlaps): ask pairs.

    Why: the number of polygons over a point is the winding number, about it, of all their
    edges; a shared edge and its reverse cancel, so it is the loose edges' winding number,
    which such rings make 1 inside and 0 outside."""
    if not len(edges.loose):
        return None
    lines = shapely.line_merge(
        shapely.multilinestrings(shapely.linestrings(edges.loose)), directed=True
    )
    rings = shapely.get_parts(lines)
    if not shapely.is_closed(rings).all():
        return None
    parts = [shapely.Polygon(shapely.get_coordinates(r)) for r in rings]
    if not all(shapely.is_valid(parts)) or not all(shapely.is_ccw(rings)):
        return None
    if len(parts) > 1:
        a, b = shapely.STRtree(parts).query(parts, predicate="intersects")
        if (a != b).any():
            return None
    return parts
