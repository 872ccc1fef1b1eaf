"""Coordinate reference systems uploads arrive in, and pinned transformations to WGS 84.

DESIGN.md section 5: WGS 84 / UTM 38N–41N (EPSG:32638–32641), legacy ED50(ED77) / UTM
38N–41N (EPSG:2058–2061, geographic EPSG:4154), or plain lon/lat (EPSG:4326).
ED50(ED77) → WGS 84 is pinned to EPSG:1514 ("ED50(ED77) to WGS 84 (1)", Iran onshore
and offshore, about 1 m): PROJ would otherwise pick per call among several.
"""

from __future__ import annotations

from functools import lru_cache

from pyproj import Transformer
from pyproj.transformer import TransformerGroup

__all__ = [
    "ED77_TO_WGS84",
    "SUPPORTED_EPSG",
    "WGS84",
    "ed77_utm_epsg",
    "to_wgs84",
    "transformer",
    "utm_epsg",
    "utm_zone",
]

WGS84 = 4326
ED77_GEOGRAPHIC = 4154
ED77_TO_WGS84 = "EPSG:1514"
_PINNED_NAME = "ED50(ED77) to WGS 84 (1)"
WGS84_UTM = {38: 32638, 39: 32639, 40: 32640, 41: 32641}
ED77_UTM = {38: 2058, 39: 2059, 40: 2060, 41: 2061}
SUPPORTED_EPSG = (WGS84, ED77_GEOGRAPHIC, *WGS84_UTM.values(), *ED77_UTM.values())


def utm_zone(lon: float) -> int:
    """The UTM zone of a longitude, limited to Iran's zones 38–41."""
    return min(41, max(38, int((lon + 180) // 6) + 1))


def utm_epsg(lon: float) -> int:
    """WGS 84 / UTM EPSG code for a longitude in Iran."""
    return WGS84_UTM[utm_zone(lon)]


def ed77_utm_epsg(lon: float) -> int:
    """ED50(ED77) / UTM EPSG code for a longitude in Iran."""
    return ED77_UTM[utm_zone(lon)]


def _is_ed77(epsg: int) -> bool:
    return epsg == ED77_GEOGRAPHIC or epsg in ED77_UTM.values()


@lru_cache(maxsize=64)
def transformer(src: int, dst: int = WGS84) -> Transformer:
    """A lon/lat-ordered transformer src → dst; an ED77 datum shift is always EPSG:1514."""
    if _is_ed77(src) == _is_ed77(dst):
        return Transformer.from_crs(src, dst, always_xy=True)
    group = TransformerGroup(src, dst, always_xy=True)
    for candidate in group.transformers:
        if _PINNED_NAME in candidate.description:
            return candidate
    raise RuntimeError(f"PROJ offers no {_PINNED_NAME} for EPSG:{src} → EPSG:{dst}")


def to_wgs84(src: int, x: float, y: float) -> tuple[float, float]:
    """One point from ``src`` to lon/lat."""
    lon, lat = transformer(src).transform(x, y)
    return lon, lat
