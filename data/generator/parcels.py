"""Guide-plan zones, parcel maps and registered plots for HF villages, as real files.

A zone is an irregular polygon around the village (150–450 m across in radius); its
parcels are the Voronoi cells of a jittered grid (100–2,000 m², streets left between
them), with realistic land uses. Files come the way HF's GIS staff send them: zipped
shapefiles in the village's UTM zone, some in ED50(ED77) / UTM, some with no ``.prj``,
DBF text in UTF-8 (with ``.cpg``) or Windows-1256 (without), and some GeoPackages.
A share of the maps carries known defects for validation to find.
"""

from __future__ import annotations

import io
import math
import random
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.affinity
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon

from geo.geodata.crs import ed77_utm_epsg, transformer, utm_epsg

LAND_USES = [  # (Persian word as HF writes it, share)
    ("مسکونی", 0.58),
    ("زراعی", 0.09),
    ("باغ", 0.10),
    ("تجاری", 0.06),
    ("آموزشی", 0.02),
    ("درمانی", 0.01),
    ("مذهبی", 0.02),
    ("فضای سبز", 0.03),
    ("کارگاهی", 0.03),
    ("اداری", 0.02),
    ("ورزشی", 0.01),
    ("تاسیسات شهری", 0.01),
    ("بایر", 0.02),
]
# HF's usual DBF field names (10 characters at most) and what they hold.
FIELDS = {
    "SHOMARE": "parcel number",
    "KARBARI": "land use",
    "MASAHAT": "declared area m2",
    "ABADI": "village name",
    "CODE_HF": "HF village code",
}
DEFECTS = ("self_intersection", "duplicate_number", "overlap", "outside_zone", "area_mismatch")


@dataclass
class VillageMap:
    """One village's guide plan as generated, in lon/lat, with what went into its file."""

    hf_code: str
    name: str
    zone: Polygon
    parcels: gpd.GeoDataFrame
    epsg: int = 0
    has_prj: bool = True
    encoding: str = "UTF-8"
    file: str = ""
    defects: list[str] = field(default_factory=list)


def _reproject(geom: Any, t: Transformer, dx: float = 0.0, dy: float = 0.0) -> Any:
    """``geom`` through transformer ``t``, after shifting it by (dx, dy)."""
    return shapely.transform(geom, lambda x, y: t.transform(x + dx, y + dy), interleaved=False)


def _zone(rng: random.Random, radius: float) -> Polygon:
    n = rng.randint(10, 18)
    pts = []
    for i in range(n):
        a = 2 * math.pi * i / n + rng.uniform(-0.15, 0.15)
        r = radius * rng.uniform(0.65, 1.2)
        pts.append((r * math.cos(a), r * math.sin(a)))
    return shapely.make_valid(Polygon(pts)).buffer(0)


def _cells(rng: random.Random, zone: Polygon, mean_area: float) -> list[Polygon]:
    step = math.sqrt(mean_area)
    minx, miny, maxx, maxy = zone.bounds
    xs = np.arange(minx, maxx, step)
    ys = np.arange(miny, maxy, step)
    nprng = np.random.default_rng(rng.randrange(2**32))
    gx, gy = np.meshgrid(xs, ys)
    gx = gx + nprng.uniform(-0.35, 0.35, gx.shape) * step
    gy = gy + nprng.uniform(-0.35, 0.35, gy.shape) * step
    seeds = shapely.multipoints(np.column_stack([gx.ravel(), gy.ravel()]))
    cells = shapely.voronoi_polygons(seeds, extend_to=zone.envelope.buffer(step))
    out = []
    for cell in shapely.get_parts(cells):
        piece = cell.intersection(zone).buffer(-rng.uniform(1.0, 2.5), join_style="mitre")
        if piece.is_empty:
            continue
        if isinstance(piece, MultiPolygon):
            piece = max(piece.geoms, key=lambda g: g.area)
        if 100 <= piece.area <= 2000:
            out.append(piece)
    return out


def _land_use(rng: random.Random) -> str:
    words, weights = zip(*LAND_USES, strict=True)
    return rng.choices(words, weights)[0]


def make_village(
    rng: random.Random,
    hf_code: str,
    name: str,
    lon: float,
    lat: float,
    defect_rate: float,
    radius: tuple[float, float] = (150, 450),
) -> VillageMap:
    """Build one village's zone and parcels in metres around (lon, lat), then to lon/lat."""
    epsg = utm_epsg(lon)
    to_utm = transformer(4326, epsg)
    x0, y0 = to_utm.transform(lon, lat)
    zone = _zone(rng, rng.uniform(*radius))
    cells = _cells(rng, zone, rng.uniform(250, 900))
    numbers = list(range(1, len(cells) + 1))
    declared = [round(c.area * rng.uniform(0.97, 1.03), 1) for c in cells]
    uses = [_land_use(rng) for _ in cells]
    defects: list[str] = []
    if cells and rng.random() < defect_rate:
        kind = rng.choice(DEFECTS)
        defects.append(kind)
        i = rng.randrange(len(cells))
        c = cells[i]
        if kind == "self_intersection":
            minx, miny, maxx, maxy = c.bounds
            cells[i] = Polygon([(minx, miny), (maxx, maxy), (maxx, miny), (minx, maxy)])
        elif kind == "duplicate_number":
            numbers[i] = numbers[(i + 1) % len(numbers)]
        elif kind == "overlap":
            cells.append(shapely.affinity.translate(c, (c.bounds[2] - c.bounds[0]) / 2, 0))
            numbers.append(len(numbers) + 1)
            declared.append(round(c.area, 1))
            uses.append(_land_use(rng))
        elif kind == "outside_zone":
            far = shapely.affinity.translate(c, zone.bounds[2] - zone.bounds[0] + 200, 0)
            cells.append(far)
            numbers.append(len(numbers) + 1)
            declared.append(round(far.area, 1))
            uses.append(_land_use(rng))
        elif kind == "area_mismatch":
            declared[i] = round(c.area * 3.0, 1)
    back = transformer(epsg, 4326)

    def to_lonlat(g: Polygon) -> Polygon:
        return _reproject(g, back, x0, y0)

    frame = gpd.GeoDataFrame(
        {
            "SHOMARE": [str(n) for n in numbers],
            "KARBARI": uses,
            "MASAHAT": declared,
            "ABADI": [name] * len(cells),
            "CODE_HF": [hf_code] * len(cells),
        },
        geometry=[to_lonlat(c) for c in cells],
        crs=4326,
    )
    return VillageMap(hf_code, name, to_lonlat(zone), frame, defects=defects)


def _zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2023, 3, 21, 0, 0, 0))  # Nowruz 1402
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, files[name])
    return buf.getvalue()


def write_village(vm: VillageMap, folder: Path, index: int, tmp: Path) -> None:
    """Write the village's file as HF would send it; record CRS, .prj and encoding.

    The ``index``-th map gets its traits in a fixed rotation, so even a handful of maps
    shows each: every 5th in ED50(ED77) / UTM, every 7th a GeoPackage, every 6th without
    ``.prj``, every 3rd shapefile with Windows-1256 text and no ``.cpg``.
    """
    lon = vm.zone.centroid.x
    vm.epsg = ed77_utm_epsg(lon) if index % 5 == 1 else utm_epsg(lon)
    parcels = vm.parcels.to_crs(vm.epsg) if vm.epsg else vm.parcels
    if vm.epsg in {2058, 2059, 2060, 2061}:
        parcels = vm.parcels.copy()
        t = transformer(4326, vm.epsg)
        parcels.geometry = [_reproject(g, t) for g in vm.parcels.geometry]
        parcels = parcels.set_crs(vm.epsg, allow_override=True)
        zone = _reproject(vm.zone, t)
    else:
        zone = gpd.GeoSeries([vm.zone], crs=4326).to_crs(vm.epsg).iloc[0]
    zone_frame = gpd.GeoDataFrame(
        {"CODE_HF": [vm.hf_code], "NAME": [vm.name]}, geometry=[zone], crs=vm.epsg
    )
    if index % 7 == 6:
        path = folder / f"{vm.hf_code}.gpkg"
        parcels.to_file(path, layer="parcels", driver="GPKG")
        zone_frame.to_file(path, layer="zone", driver="GPKG")
        vm.file, vm.encoding = path.name, "UTF-8"
        return
    vm.has_prj = index % 6 != 2
    vm.encoding = "CP1256" if index % 3 == 0 else "UTF-8"
    if vm.encoding == "CP1256":  # Windows-1256 has no Persian ye: old software writes Arabic ي
        for frame in (parcels, zone_frame):
            for col in frame.columns.drop("geometry"):
                if pd.api.types.is_string_dtype(frame[col]):
                    frame[col] = frame[col].str.replace("ی", "ي").str.replace("ۀ", "ه")
    work = tmp / vm.hf_code
    work.mkdir(parents=True, exist_ok=True)
    parcels.to_file(work / "parcels.shp", driver="ESRI Shapefile", encoding=vm.encoding)
    zone_frame.to_file(work / "zone.shp", driver="ESRI Shapefile", encoding=vm.encoding)
    files: dict[str, bytes] = {}
    for f in sorted(work.iterdir()):
        if f.suffix == ".prj" and not vm.has_prj:
            continue
        if f.suffix == ".cpg" and vm.encoding != "UTF-8":
            continue
        files[f.name] = f.read_bytes()
    shutil.rmtree(work)
    path = folder / f"{vm.hf_code}.zip"
    path.write_bytes(_zip_bytes(files))
    vm.file = path.name


@dataclass
class PlateSet:
    """Registered plots and the parcels each overlaps (ground truth for coverage)."""

    frame: gpd.GeoDataFrame
    overlaps: list[tuple[str, str, str, float, float]]  # plate id, hf code, parcel no, m², share


def make_plates(rng: random.Random, maps: list[VillageMap], per_village: int) -> PlateSet:
    """Plots made from parcels: shifted copies, unions of neighbours, parts of one parcel."""
    rows, overlaps = [], []
    unit = 0
    for vm in maps:
        unit += 1
        if vm.parcels.empty:
            continue
        epsg = utm_epsg(vm.zone.centroid.x)
        local = vm.parcels.to_crs(epsg)
        local = local[local.is_valid].reset_index(drop=True)  # planted defects are not plotted
        main = rng.randint(10, 400)
        for sub in range(1, per_village + 1):
            i = rng.randrange(len(local))
            base = local.geometry.iloc[i]
            kind = rng.choice(["shifted", "union", "part"])
            if kind == "shifted":
                geom = shapely.affinity.translate(base, rng.uniform(-3, 3), rng.uniform(-3, 3))
            elif kind == "union":
                near = local.sindex.query(base.buffer(4), predicate="intersects")
                others = [j for j in near if j != i]
                geom = (
                    base.buffer(3)
                    .union(local.geometry.iloc[rng.choice(others)].buffer(3))
                    .buffer(-3)
                    if others
                    else base
                )
            else:
                minx, miny, maxx, maxy = base.bounds
                geom = base.intersection(
                    Polygon(
                        [
                            (minx, miny),
                            ((minx + maxx) / 2, miny),
                            ((minx + maxx) / 2, maxy),
                            (minx, maxy),
                        ]
                    )
                )
            if geom.is_empty or geom.area < 20:
                continue
            if isinstance(geom, Polygon):
                geom = MultiPolygon([geom])
            plate_id = f"{unit:03d}-{main}-{sub}"
            hits = local.sindex.query(geom, predicate="intersects")
            for j in hits:
                inter = geom.intersection(local.geometry.iloc[j]).area
                if inter > 0.01:
                    overlaps.append(
                        (
                            plate_id,
                            vm.hf_code,
                            local["SHOMARE"].iloc[j],
                            round(inter, 2),
                            round(inter / geom.area, 4),
                        )
                    )
            lonlat = gpd.GeoSeries([geom], crs=epsg).to_crs(4326).iloc[0]
            rows.append(
                {
                    "registration_unit": f"{unit:03d}",
                    "main_plate": str(main),
                    "sub_plate": str(sub),
                    "kind": kind,
                    "hf_code": vm.hf_code,
                    "geometry": lonlat,
                }
            )
    frame = (
        gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
        if rows
        else gpd.GeoDataFrame({"geometry": []}, crs=4326)
    )
    return PlateSet(frame, overlaps)


__all__ = [
    "DEFECTS",
    "FIELDS",
    "LAND_USES",
    "PlateSet",
    "VillageMap",
    "make_plates",
    "make_village",
    "write_village",
]
