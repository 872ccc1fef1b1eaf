"""Attach boundary polygons (e.g. OpenStreetMap's) to an edition's units by name.

A feature names its unit by ``name`` (a county's «شهرستان» prefix is dropped) and, for
counties, its province by the enclosing province feature or ``province`` property. Names
are compared through `geo.geodata.persian` (match key, then loose key); a name that fits none or
several units is reported, not guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import MultiPolygon, shape
from sqlalchemy import Connection, text

from geo.errors import ValidationError
from geo.geodata.persian import loose_key, match_key

__all__ = ["BoundaryResult", "attach_boundaries"]


@dataclass
class BoundaryResult:
    matched: int = 0
    unmatched: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)


def _name(props: dict[str, Any]) -> tuple[str, str]:
    tags = props.get("tags") or {}
    name = props.get("name") or props.get("name:fa") or tags.get("name") or ""
    level = props.get("level") or ("county" if tags.get("admin_level") == "5" else "province")
    return name.removeprefix("شهرستان").removeprefix("استان").strip(), level


def attach_boundaries(conn: Connection, edition_id: int, geojson: bytes) -> BoundaryResult:
    """Set ``division.polygon`` of the edition's provinces and counties from GeoJSON."""
    try:
        features = json.loads(geojson)["features"]
    except (ValueError, KeyError, TypeError):
        raise ValidationError("not a GeoJSON FeatureCollection", code="malformed_geojson") from None
    units = conn.execute(
        text(
            "SELECT code, level, name_key, name_loose, ancestors FROM division"
            " WHERE edition_id = :e AND level IN ('province', 'county')"
        ),
        {"e": edition_id},
    ).all()
    result = BoundaryResult()
    updates = []
    for f in features:
        name, level = _name(f.get("properties") or {})
        key, loose = match_key(name), loose_key(name)
        hits = [u for u in units if u.level == level and u.name_key == key] or [
            u for u in units if u.level == level and u.name_loose == loose
        ]
        if not hits:
            result.unmatched.append(f"{level} {name}")
            continue
        if len(hits) > 1:
            result.ambiguous.append(f"{level} {name}")
            continue
        geom = shape(f["geometry"])
        if geom.geom_type == "Polygon":
            geom = MultiPolygon([geom])
        updates.append({"e": edition_id, "c": hits[0].code, "g": f"SRID=4326;{geom.wkt}"})
    if updates:
        conn.execute(
            text(
                "UPDATE division SET polygon = ST_Multi(ST_MakeValid(CAST(:g AS geometry)))"
                " WHERE edition_id = :e AND code = :c"
            ),
            updates,
        )
    result.matched = len(updates)
    return result
