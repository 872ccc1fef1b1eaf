"""Villages' boxes in ``parcel_extent`` for parcels that do not pass the insert trigger.

``parcel``'s statement trigger grows each village's box for rows inserted through it; a
province's first parcels go in as a table of their own (:mod:`geo.geodata.parcels.first_load`),
so their boxes are written here: from what the stream saw of each village
(:class:`VillageExtent`), or measured in the table. Boxes only grow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

__all__ = ["VillageExtent", "grow_seen_extents", "grow_table_extents", "seen_rows"]


@dataclass(frozen=True)
class VillageExtent:
    """What the stream saw of a loaded village: its province, rows and lon/lat box."""

    province: str
    rows: int
    box: list[float]  # minx, miny, maxx, maxy


def seen_rows(seen: dict[str, VillageExtent]) -> dict[str, int]:
    """Rows per province of the villages the stream saw."""
    rows: dict[str, int] = {}
    for village in seen.values():
        rows[village.province] = rows.get(village.province, 0) + village.rows
    return rows


def grow_seen_extents(
    conn: Connection, agency: str, seen: dict[str, VillageExtent], provinces: set[str]
) -> None:
    """The boxes of the villages of ``provinces`` the stream saw into ``parcel_extent``."""
    _grow_extents(conn, _SEEN_BOXES, _boxes(agency, seen, provinces))


# Each village's box: measured in a table, or as the stream saw it (:class:`VillageExtent`).
_TABLE_BOXES = """
    SELECT province, village_agency, village_code,
           ST_MakeEnvelope(min(ST_XMin(geom)), min(ST_YMin(geom)), max(ST_XMax(geom)),
                           max(ST_YMax(geom)), 4326)
    FROM {table} GROUP BY 1, 2, 3"""
_SEEN_BOXES = """
    SELECT p, :a, v, ST_MakeEnvelope(x0, y0, x1, y1, 4326)
    FROM unnest(CAST(:p AS text[]), CAST(:v AS text[]), CAST(:x0 AS float8[]),
                CAST(:y0 AS float8[]), CAST(:x1 AS float8[]), CAST(:y1 AS float8[]))
      AS b(p, v, x0, y0, x1, y1)"""


def _boxes(agency: str, seen: dict[str, VillageExtent], provinces: set[str]) -> dict[str, Any]:
    villages = [(code, v) for code, v in sorted(seen.items()) if v.province in provinces]
    columns = list(zip(*(v.box for _code, v in villages), strict=True)) or [(), (), (), ()]
    return {
        "a": agency,
        "v": [code for code, _v in villages],
        "p": [v.province for _code, v in villages],
        **{k: list(c) for k, c in zip(("x0", "y0", "x1", "y1"), columns, strict=True)},
    }


def _grow_extents(conn: Connection, boxes: str, params: dict[str, Any]) -> None:
    """Villages' boxes (``boxes``: a query of province, agency, village, box) into
    ``parcel_extent``, as the insert trigger of ``parcel`` does for rows inserted through
    it."""
    conn.execute(
        text(
            """
        INSERT INTO parcel_extent AS e (province, village_agency, village_code, extent)
        """
            + boxes
            + """
        ON CONFLICT (province, village_agency, village_code) DO UPDATE
          SET extent = ST_MakeEnvelope(
            least(ST_XMin(e.extent), ST_XMin(EXCLUDED.extent)),
            least(ST_YMin(e.extent), ST_YMin(EXCLUDED.extent)),
            greatest(ST_XMax(e.extent), ST_XMax(EXCLUDED.extent)),
            greatest(ST_YMax(e.extent), ST_YMax(EXCLUDED.extent)), 4326)"""
        ),
        params,
    )


def grow_table_extents(conn: Connection, table: str) -> None:
    """The boxes of the villages in ``table`` into ``parcel_extent``."""
    _grow_extents(conn, _TABLE_BOXES.format(table=table), {})
