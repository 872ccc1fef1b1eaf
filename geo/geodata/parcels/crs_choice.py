"""The CRS of an upload: its .prj, an override, or inferred from coordinates and the village.

Inference tries every CRS uploads arrive in (DESIGN.md section 5): lon/lat, WGS 84 / UTM
38N–41N and ED50(ED77) / UTM 38N–41N. Lon/lat is plain from the numbers. For projected
coordinates the zone (and WGS 84 vs ED77, about 180 m apart) is told by the village's known
location: the candidate that puts the parcels nearest to it wins, and the report says how
sure that is. Without a known location a projected file needs ``--crs``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from pyproj import CRS

from geo.geodata.crs import ED77_UTM, WGS84, WGS84_UTM, transformer
from geo.geodata.parcels.errors import UploadRejected

__all__ = ["CrsChoice", "choose_crs"]

IRAN = (43.5, 24.0, 63.5, 40.0)


@dataclass
class CrsChoice:
    epsg: int
    source: str  # prj | override | inferred
    confidence: str  # certain | high | low
    note: str = ""
    candidates: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "epsg": self.epsg,
            "name": CRS.from_epsg(self.epsg).name,
            "source": self.source,
            "confidence": self.confidence,
            "note": self.note,
            "candidates": self.candidates,
        }


def _km(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    dx = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6371.0 * math.hypot(dx, math.radians(lat2 - lat1))


def _epsg_of(crs: Any) -> int | None:
    if crs is None:
        return None
    try:
        return CRS.from_user_input(crs).to_epsg(min_confidence=60)
    except Exception:
        return None


def choose_crs(
    file_crs: Any,
    bounds: tuple[float, float, float, float],
    override: int | None = None,
    village: tuple[float, float] | None = None,
) -> CrsChoice:
    """Decide the CRS of features with ``bounds`` (in the file's own numbers)."""
    if override:
        try:
            CRS.from_epsg(override)
        except Exception:
            raise UploadRejected(
                f"EPSG:{override} is not a CRS PROJ knows", code="unknown_crs", field="crs"
            ) from None
        return CrsChoice(override, "override", "certain", "given by the uploader")
    declared = _epsg_of(file_crs)
    if declared:
        return CrsChoice(declared, "prj", "certain", "from the file")
    note = "the file names an unknown CRS; " if file_crs is not None else "no .prj; "
    minx, miny, maxx, maxy = bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    if minx >= -180 and maxx <= 180 and miny >= -90 and maxy <= 90:
        return CrsChoice(
            WGS84,
            "inferred",
            "high",
            note + "coordinates are degrees: lon/lat "
            "(WGS 84 assumed; ED50 lon/lat would be ~180 m off)",
        )
    candidates = []
    for epsg in (*WGS84_UTM.values(), *ED77_UTM.values()):
        lon, lat = transformer(epsg, WGS84).transform(cx, cy)
        if IRAN[0] <= lon <= IRAN[2] and IRAN[1] <= lat <= IRAN[3]:
            km = _km(lon, lat, *village) if village else None
            candidates.append(
                {
                    "epsg": epsg,
                    "lon": round(lon, 6),
                    "lat": round(lat, 6),
                    "km_from_village": None if km is None else round(km, 3),
                }
            )
    if not candidates:
        raise UploadRejected(
            note + "the coordinates fit none of the CRSs uploads come in; "
            "give it with --crs EPSG:NNNN",
            code="crs_unknown",
            field="crs",
        )
    if village is None:
        raise UploadRejected(
            note + "projected coordinates, and no known village location "
            "to tell the UTM zone; give the CRS (--crs) or the village",
            code="crs_ambiguous",
            field="crs",
            candidates=candidates,
        )
    candidates.sort(key=lambda c: c["km_from_village"])
    best = candidates[0]
    if best["epsg"] in ED77_UTM.values():  # WGS 84 is the common case: it wins a near tie
        zone = next(z for z, e in ED77_UTM.items() if e == best["epsg"])
        twin = next((c for c in candidates if c["epsg"] == WGS84_UTM[zone]), None)
        if twin and twin["km_from_village"] - best["km_from_village"] < 0.12:
            candidates.remove(twin)
            candidates.insert(0, twin)
            best = twin
    if best["km_from_village"] > 5:
        raise UploadRejected(
            note + f"no CRS puts the parcels near the village (nearest: EPSG:{best['epsg']}, "
            f"{best['km_from_village']} km away); check the village or give --crs",
            code="crs_unknown",
            field="crs",
            candidates=candidates[:4],
        )
    second = candidates[1]["km_from_village"] if len(candidates) > 1 else math.inf
    sure = "high" if second > 2 * best["km_from_village"] + 0.1 else "low"
    return CrsChoice(
        best["epsg"],
        "inferred",
        sure,
        note + f"EPSG:{best['epsg']} puts the parcels {best['km_from_village']} km "
        "from the village's known location"
        + (f"; the next candidate {second:.3f} km" if second < math.inf else ""),
        candidates[:4],
    )
