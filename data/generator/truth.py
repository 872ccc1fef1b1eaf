"""The true world the three agency lists are drawn from: real SCI units, placed on the map.

Units come from a file in SCI's geography layout (the committed Tehran + Qom sample,
or the full 1399 file in ``../shared/data``). Each unit's truth id is its SCI code at
the start; villages get a location inside their real county (OpenStreetMap boundary
when the county's name matches, else the province, else a box around the province).
"""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from shapely.geometry import Point, box, shape
from shapely.geometry.base import BaseGeometry
from shapely.prepared import prep

from geo.geodata.persian import match_key
from geo.geodata.registry.formats import SCI_LEVELS

LEVEL_OF_CODEREC = SCI_LEVELS  # CODEREC → level, as the registry reads it


@dataclass
class Unit:
    """One true unit. ``uid`` is stable across editions; codes are per agency."""

    uid: str
    level: str
    name: str
    parent: str | None
    sci_code: str | None = None
    farm: bool = False  # CODEREC 8: a farm or industrial point, kept by SCI only
    lon: float | None = None
    lat: float | None = None
    population: int = 0
    children: list[str] = field(default_factory=list)


@dataclass
class World:
    """Units by uid in file order (parents before children)."""

    units: dict[str, Unit]
    province_order: list[str]

    def of_level(self, level: str) -> list[Unit]:
        return [u for u in self.units.values() if u.level == level]

    def ancestor(self, uid: str, level: str) -> Unit | None:
        unit: Unit | None = self.units[uid]
        while unit is not None and unit.level != level:
            unit = self.units.get(unit.parent) if unit.parent else None
        return unit


def read_sci_layout(path: Path, provinces: set[str] | None = None) -> World:
    """Read a file in SCI's layout; ``provinces`` limits it to those 2-digit codes."""
    units: dict[str, Unit] = {}
    order: list[str] = []
    with path.open(encoding="utf-8-sig") as src:
        reader = csv.reader(src)
        next(reader)
        rows = [r for r in reader if not provinces or r[0] in provinces]
    # Parents first: the file is sorted by CODEREC, not by hierarchy.
    rows.sort(key=lambda r: "123456 8".index(r[10]) if r[10] in "12345678" else 9)
    for r in rows:
        kind = r[10]
        level = LEVEL_OF_CODEREC.get(kind)
        if level is None:
            continue
        p, c, d, rd, v = r[0], r[2], r[4], r[6], r[8]
        parts = {
            "province": (p, None),
            "county": (p + c, p),
            "district": (p + c + d, p + c),
            "rural": (p + c + d + rd, p + c + d),
            "city": (p + c + d + rd, p + c + d),
            "village": (p + c + d + rd + v, p + c + d + rd),
        }
        code, parent = parts[level]
        if code in units or (parent and parent not in units):
            continue
        name = (
            r[9]
            if level in {"province", "village"}
            else {"county": r[3], "district": r[5]}.get(level, r[7])
        )
        unit = Unit(
            uid=code, level=level, name=name.strip(), parent=parent, sci_code=code, farm=kind == "8"
        )
        units[code] = unit
        if parent:
            units[parent].children.append(code)
        else:
            order.append(code)
    return World(units=units, province_order=order)


def _load_boundaries(path: Path | None) -> tuple[dict[str, BaseGeometry], dict[str, BaseGeometry]]:
    """Province shapes by name key, county shapes by (province key + county key)."""
    provinces: dict[str, BaseGeometry] = {}
    counties: dict[str, BaseGeometry] = {}
    if path is None or not path.exists():
        return provinces, counties
    data = json.loads(path.read_text(encoding="utf-8"))
    feats = data["features"]
    for f in feats:
        props = f["properties"]
        name = props.get("name") or props.get("name:fa") or ""
        if props.get("level", "province") == "province" and "tags" not in props:
            provinces[match_key(name)] = shape(f["geometry"])
    for f in feats:
        props = f["properties"]
        if props.get("level") == "county":
            counties[match_key(props["name"])] = shape(f["geometry"])
        elif "tags" in props:
            name = props["tags"].get("name", "").removeprefix("شهرستان").strip()
            counties[match_key(name)] = shape(f["geometry"])
    return provinces, counties


_BOX = box(44.0, 25.0, 63.3, 39.8)  # Iran's extent, last resort


def place(world: World, boundaries: list[Path], rng: random.Random) -> None:
    """Give every village and city a location and a population."""
    provinces: dict[str, BaseGeometry] = {}
    counties: dict[str, BaseGeometry] = {}
    for path in boundaries:
        p, c = _load_boundaries(path)
        provinces.update(p)
        counties.update(c)
    area_of: dict[str, tuple[BaseGeometry, object]] = {}

    def area(uid: str) -> tuple[BaseGeometry, object]:
        if uid in area_of:
            return area_of[uid]
        unit = world.units[uid]
        province = world.ancestor(uid, "province")
        geom = counties.get(match_key(unit.name)) if unit.level == "county" else None
        if geom is None and province is not None:
            geom = provinces.get(match_key(province.name))
        if geom is None:  # a box of about 150 km, placed by the province's position in order
            i = world.province_order.index(province.uid) if province else 0
            lon = 45.0 + (i * 3.7) % 17.5
            lat = 26.5 + (i * 2.3) % 11.5
            geom = box(lon, lat, lon + 1.4, lat + 1.4)
        area_of[uid] = (geom, prep(geom))
        return area_of[uid]

    def random_point(geom: BaseGeometry, prepared: object) -> tuple[float, float]:
        minx, miny, maxx, maxy = geom.bounds
        for _ in range(200):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if prepared.contains(Point(x, y)):  # type: ignore[attr-defined]
                return x, y
        c = geom.representative_point()
        return c.x, c.y

    for rural in [u for u in world.units.values() if u.level in {"rural", "district"}]:
        county = world.ancestor(rural.uid, "county")
        geom, prepared = area(county.uid) if county else (_BOX, prep(_BOX))
        cx, cy = random_point(geom, prepared)
        for child_id in rural.children:
            child = world.units[child_id]
            if child.level not in {"village", "city"}:
                continue
            for _ in range(20):
                r = abs(rng.gauss(0, 0.04))  # about 4.5 km
                a = rng.uniform(0, 2 * math.pi)
                x, y = cx + r * math.cos(a), cy + r * math.sin(a) * 0.85
                if prepared.contains(Point(x, y)):  # type: ignore[attr-defined,union-attr]
                    break
            else:
                x, y = cx, cy
            child.lon, child.lat = round(x, 6), round(y, 6)
            if child.level == "city":
                child.population = int(rng.lognormvariate(9.3, 1.2))
            elif not child.farm and rng.random() > 0.12:  # some villages are uninhabited
                child.population = int(rng.lognormvariate(5.3, 1.1))
