"""Find divisions by name (through `geo.geodata.persian`) or by code, and by a point on the map.

Ranking: the same match key scores 1.0; the same loose key (variant knowledge: علیا/بالا,
«و», ء, گ/ک, prefixes, reversed lam-alef) 0.9; otherwise trigram similarity of the match
keys (pg_trgm), scaled to at most 0.85. Ties go to the higher level, then to the name.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Connection, text

from geo.errors import InvalidParameter, ValidationError
from geo.geodata.persian import is_code, loose_key, match_key, normalize_code
from geo.geodata.registry.editions import editions_in_force
from geo.geodata.registry.references import parse_unit_ref
from geo.models.crosswalk import LINK_AGENCIES
from geo.models.registry import LEVELS

__all__ = ["at_point", "search"]

AGENCIES = LINK_AGENCIES  # searched when no agency is named


def search(
    conn: Connection,
    q: str,
    *,
    agency: str | None = None,
    level: str | None = None,
    within: str | None = None,
    as_of: date | None = None,
    limit: int = 20,
    min_score: float = 0.35,
) -> dict[str, Any]:
    """Units whose name is like ``q`` (or whose code is ``q``), best first."""
    q = (q or "").strip()
    if not q:
        raise InvalidParameter("q is empty", field="q")
    if len(q) > 200:
        raise InvalidParameter("q is longer than 200 characters", field="q")
    if level and level not in LEVELS:
        raise InvalidParameter(f"level is one of {', '.join(LEVELS)}", field="level")
    if not 1 <= limit <= 200:
        raise InvalidParameter("limit is 1 to 200", field="limit")
    scope_code = None
    if within:
        scope_agency, scope_code = parse_unit_ref(within, "within")
        if agency and agency != scope_agency:
            raise ValidationError(
                f"within names a unit of {scope_agency}, not of {agency}",
                code="within_other_agency",
                field="within",
            )
        agency = scope_agency
    agencies = [agency] if agency else list(AGENCIES)
    editions = editions_in_force(conn, agencies, as_of, skip_missing=not agency)
    by_code = is_code(q)
    key, loose = match_key(q), loose_key(q)
    rows = (
        conn.execute(
            text(
                "SELECT e.agency, e.label AS edition, d.code, d.level, d.name, d.parent_code,"
                " CASE WHEN :by_code THEN 1.0 WHEN d.name_key = :key THEN 1.0"
                "  WHEN d.name_loose = :loose THEN 0.9"
                "  ELSE 0.85 * similarity(d.name_key, :key) END AS score,"
                " (SELECT string_agg(a.name, ' / ' ORDER BY array_position(d.ancestors, a.code))"
                "  FROM division a WHERE a.edition_id = d.edition_id AND a.code = ANY(d.ancestors))"
                "  AS parents"
                " FROM division d JOIN edition e ON e.id = d.edition_id"
                " WHERE d.edition_id = ANY(:editions)"
                " AND (CAST(:level AS text) IS NULL OR d.level = :level)"
                " AND (CAST(:scope AS text) IS NULL OR d.ancestors @> ARRAY[CAST(:scope AS text)])"
                " AND CASE WHEN :by_code THEN d.code = :code OR d.national_id = :code"
                "  ELSE d.name_key = :key OR d.name_loose = :loose OR d.name_key % :key END"
                " ORDER BY score DESC, array_position(:levels, d.level), d.name, d.code"
                " LIMIT :limit"
            ),
            {
                "by_code": by_code,
                "key": key,
                "loose": loose,
                "editions": editions,
                "level": level,
                "scope": scope_code,
                "code": normalize_code(q),
                "levels": list(LEVELS),
                "limit": limit,
            },
        )
        .mappings()
        .all()
    )
    results = [
        {**dict(r), "score": round(float(r["score"]), 3)}
        for r in rows
        if by_code or float(r["score"]) >= min_score
    ]
    return {"q": q, "count": len(results), "results": results}


def at_point(
    conn: Connection,
    lon: float,
    lat: float,
    *,
    agency: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """The divisions whose polygon contains (lon, lat), in the editions in force."""
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise InvalidParameter("lon is -180 to 180 and lat -90 to 90", field="lon,lat")
    agencies = [agency] if agency else list(AGENCIES)
    editions = editions_in_force(conn, agencies, as_of, skip_missing=not agency)
    rows = (
        conn.execute(
            text(
                "SELECT e.agency, e.label AS edition, d.code, d.level, d.name FROM division d"
                " JOIN edition e ON e.id = d.edition_id WHERE d.edition_id = ANY(:editions)"
                " AND d.polygon IS NOT NULL"
                " AND ST_Intersects(d.polygon, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326))"
                " ORDER BY e.agency, array_position(:levels, d.level)"
            ),
            {"editions": editions, "lon": lon, "lat": lat, "levels": list(LEVELS)},
        )
        .mappings()
        .all()
    )
    return {"lon": lon, "lat": lat, "results": [dict(r) for r in rows]}
