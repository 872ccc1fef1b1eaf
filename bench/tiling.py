"""A second bench dataset that looks like a real cadastre: parcels that tile their village.

The generator's parcels (``data.generator.parcels``) are separated by streets of 1–2.5 m,
so no two of them touch; real cadastral maps are tilings, neighbours sharing their edges
exactly. Here each village's guide-plan zone is cut into Voronoi cells of random seeds and
the cells' edges are noded once, densified (a vertex every ``DENSIFY_M`` metres, as
digitised boundaries have), and polygonized: two neighbours hold the very same vertices
along their shared edge, in opposite order. Villages hold 200–3,000 parcels.

The files come the way a GIS office sends them, not shaped to tagsim's defaults:

- ``tiling_<size>_utm39.zip``: one zipped shapefile pair (``parcels``, ``zone``) in
  UTM 39N (EPSG:32639) for the whole country, attribute names as ArcGIS and DBF leave
  them: ``OBJECTID``, ``village_co`` (``village_code`` cut to 10 characters), ``parcel_no``,
  ``landuse``, ``area`` (the deed's area), ``Shape_Leng``, ``Shape_Area``;
- ``tiling_<size>_lonlat.gpkg``: the same map in lon/lat (EPSG:4326) with untruncated names
  (``village_code``, ``parcel_no``, ``landuse``, ``area``).

Villages are the generator's HF villages (so their codes and places are in the registry);
``python -m bench.tiling [--quick]`` builds the files (cached in ``bench/cache``).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.affinity
from shapely.geometry import Polygon

from bench import datasets
from bench.datasets import CACHE
from data.generator.parcels import LAND_USES
from geo.geodata.crs import transformer, utm_epsg

__all__ = ["TilingFiles", "tiling_files"]

DENSIFY_M = 5.0  # a vertex every 5 m along every edge, shared edges alike
SLIVER_M2 = 10.0  # no parcel smaller (a sliver is merged into a neighbour)
UTM_39N = 32639
SIZES = {"quick": (12, 3_000), "full": (1_701, 1_000_000)}  # villages, parcels (about)
MIN_PARCELS, MAX_PARCELS = 200, 3_000


@dataclass
class TilingFiles:
    shapefile_zip: Path  # UTM 39N, DBF-truncated names
    geopackage: Path  # lon/lat, full names
    parcels: int
    villages: int


def _sizes(rng: np.random.Generator, villages: int, parcels: int) -> np.ndarray:
    """Parcels per village: skewed (most villages small, a few large), 200–3,000, summing
    to about ``parcels``."""
    raw = rng.lognormal(mean=0.0, sigma=0.7, size=villages)
    sizes = raw / raw.sum() * parcels
    for _ in range(8):  # clipping moves the sum: rescale the unclipped part
        sizes = np.clip(sizes, MIN_PARCELS, MAX_PARCELS)
        free = (sizes > MIN_PARCELS) & (sizes < MAX_PARCELS)
        gap = parcels - sizes.sum()
        if abs(gap) < parcels * 0.002 or not free.any():
            break
        sizes[free] *= 1 + gap / sizes[free].sum()
    return np.round(sizes).astype(int)


def _zone(rng: np.random.Generator, area_m2: float) -> Polygon:
    """An irregular star-shaped zone of about ``area_m2`` around (0, 0)."""
    n = int(rng.integers(10, 19))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radii = rng.uniform(0.75, 1.2, n)
    ring = Polygon(np.column_stack([radii * np.cos(angles), radii * np.sin(angles)]))
    ring = shapely.make_valid(ring).buffer(0)
    if ring.geom_type != "Polygon":
        ring = max(shapely.get_parts(ring), key=lambda g: g.area)
    scale = math.sqrt(area_m2 / ring.area)
    return shapely.affinity.scale(ring, scale, scale, origin=(0, 0))


def _cells(rng: np.random.Generator, zone: Polygon, n: int) -> np.ndarray:
    """``zone`` cut into about ``n`` parcels that share their densified edges exactly."""
    x0, y0, x1, y1 = zone.bounds
    seeds = np.empty((0, 2))
    while len(seeds) < n:
        xy = rng.uniform((x0, y0), (x1, y1), size=(2 * n, 2))
        seeds = np.vstack([seeds, xy[shapely.contains_xy(zone, xy[:, 0], xy[:, 1])]])
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.multipoints(seeds[:n]), extend_to=zone.buffer(50))
    )
    # Noded once (every crossing a vertex), densified once: each shared edge exists once.
    network = shapely.union_all(shapely.boundary(shapely.intersection(cells, zone)))
    dense = shapely.segmentize(network, DENSIFY_M)
    faces = list(shapely.get_parts(shapely.polygonize(shapely.get_parts(dense))))
    return _without_slivers(faces)


def _without_slivers(faces: list[Polygon]) -> np.ndarray:
    """Faces under ``SLIVER_M2`` (where a Voronoi edge grazes the zone's boundary) merged
    into the neighbour they share most edge with: the union of two faces of one noded
    network keeps every other vertex, so the tiling stays exact."""
    cells = np.asarray(faces, dtype=object)
    tree = shapely.STRtree(cells)
    gone: set[int] = set()
    for i in np.flatnonzero(shapely.area(cells) < SLIVER_M2):
        near = [j for j in tree.query(cells[i]) if j != i and j not in gone]
        if not near:
            continue
        shared = shapely.length(shapely.intersection(cells[i].boundary, cells[near]))
        j = near[int(np.argmax(shared))]
        if shared.max() > 0:
            cells[j] = shapely.coverage_union_all([cells[j], cells[i]])
            gone.add(int(i))
    return np.asarray([c for k, c in enumerate(cells) if k not in gone], dtype=object)


def _village(
    rng: np.random.Generator, code: str, lon: float, lat: float, n: int
) -> tuple[gpd.GeoDataFrame, Polygon]:
    """One village's parcels and zone, in lon/lat."""
    mean_m2 = float(rng.uniform(250, 700))
    cells = _cells(rng, _zone(rng, n * mean_m2), n)
    zone = shapely.coverage_union_all(cells)  # the outer boundary, with the parcels' vertices
    epsg = utm_epsg(lon)
    cx, cy = transformer(4326, epsg).transform(lon, lat)
    back = transformer(epsg, 4326)

    def to_lonlat(g: np.ndarray) -> np.ndarray:
        def move(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(back.transform(xy[:, 0] + cx, xy[:, 1] + cy))

        return shapely.transform(g, move)

    areas = shapely.area(cells)
    words, weights = zip(*LAND_USES, strict=True)
    p = np.asarray(weights) / sum(weights)
    frame = gpd.GeoDataFrame(
        {
            "village_code": code,
            "parcel_no": [str(i) for i in range(1, len(cells) + 1)],
            "landuse": rng.choice(np.asarray(words, dtype=object), size=len(cells), p=p),
            "area": np.round(areas * rng.uniform(0.97, 1.03, len(cells)), 1),
        },
        geometry=to_lonlat(cells),
        crs=4326,
    )
    return frame, to_lonlat(np.asarray([zone]))[0]


def _places(world: Path) -> list[tuple[str, float, float]]:
    """(HF code, lon, lat) of the generator's villages with a clean map, in file order."""
    with (world / "truth/parcel_files.csv").open(encoding="utf-8") as f:
        clean = [r["hf_code"] for r in csv.DictReader(f) if not r["defects"]]
    zones = gpd.read_file(world / "truth/parcels.gpkg", layer="zones").set_index("CODE_HF")
    centers = zones.geometry.representative_point()
    return [(c, centers[c].x, centers[c].y) for c in clean if c in centers.index]


def _write_shapefile_zip(parcels: gpd.GeoDataFrame, zones: gpd.GeoDataFrame, out: Path) -> None:
    folder = out.with_suffix("")
    folder.mkdir(exist_ok=True)
    utm = parcels.to_crs(UTM_39N)
    shp = gpd.GeoDataFrame(
        {
            "OBJECTID": np.arange(1, len(utm) + 1, dtype=np.int32),
            "village_co": utm["village_code"],
            "parcel_no": utm["parcel_no"],
            "landuse": utm["landuse"],
            "area": utm["area"],
            "Shape_Leng": np.round(utm.geometry.length, 3),
            "Shape_Area": np.round(utm.geometry.area, 3),
        },
        geometry=utm.geometry,
        crs=UTM_39N,
    )
    shp.to_file(folder / "parcels.shp", driver="ESRI Shapefile", encoding="UTF-8")
    zone = zones.to_crs(UTM_39N).rename(columns={"village_code": "village_co"})
    zone.to_file(folder / "zone.shp", driver="ESRI Shapefile", encoding="UTF-8")
    partial = out.with_suffix(".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for part in sorted(folder.iterdir()):
            zf.write(part, part.name)
            part.unlink()
    folder.rmdir()
    partial.rename(out)


def tiling_files(quick: bool, echo=print) -> TilingFiles:  # type: ignore[no-untyped-def]
    """The tiling's two files for the chosen size, made once and cached."""
    size = "quick" if quick else "full"
    shp_zip = CACHE / f"tiling_{size}_utm39.zip"
    gpkg = CACHE / f"tiling_{size}_lonlat.gpkg"
    if not (shp_zip.exists() and gpkg.exists()):
        villages, target = SIZES[size]
        places = _places(datasets.world(quick, maps=True))[:villages]
        rng = np.random.default_rng(1402)
        sizes = _sizes(rng, len(places), target if not quick else len(places) * 250)
        frames, zones = [], []
        started = time.monotonic()
        for i, ((code, lon, lat), n) in enumerate(zip(places, sizes, strict=True)):
            frame, zone = _village(rng, code, lon, lat, int(n))
            frames.append(frame)
            zones.append((code, zone))
            if (i + 1) % 100 == 0:
                took = time.monotonic() - started
                echo(f"  tiling: {i + 1} of {len(places)} villages ({took:.0f} s)")
        parcels = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=4326)
        zone_frame = gpd.GeoDataFrame(
            {"village_code": [c for c, _ in zones]}, geometry=[z for _, z in zones], crs=4326
        )
        CACHE.mkdir(exist_ok=True)
        partial = gpkg.with_suffix(".part.gpkg")
        partial.unlink(missing_ok=True)
        parcels.to_file(partial, layer="parcels", driver="GPKG")
        zone_frame.to_file(partial, layer="zone", driver="GPKG")
        partial.rename(gpkg)
        _write_shapefile_zip(parcels, zone_frame, shp_zip)
        echo(f"  tiling: {len(parcels)} parcels in {len(places)} villages written")
    count = len(gpd.read_file(gpkg, layer="parcels", columns=["parcel_no"], ignore_geometry=True))
    villages = len(gpd.read_file(gpkg, layer="zone", ignore_geometry=True))
    return TilingFiles(shp_zip, gpkg, count, villages)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        prog="python -m bench.tiling", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true")
    made = tiling_files(parser.parse_args().quick)
    print(made)
