"""Put an upload's features into ``parcel_stage``: mapped fields, 2D, lon/lat, via COPY."""

from __future__ import annotations

import json
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import Connection

from geo.crs import WGS84, transformer
from geo.db import copy_lines, copy_text

__all__ = ["stage_layer"]


def _reproject(geoms: np.ndarray, epsg: int) -> np.ndarray:
    if epsg == WGS84:
        return geoms
    t = transformer(epsg, WGS84)
    return shapely.transform(geoms, lambda x, y: t.transform(x, y), interleaved=False)


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    out = str(value).strip()
    return out or None


def _number(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(out) else out


def stage_layer(
    conn: Connection,
    upload_id: int,
    layer: str,
    frame: gpd.GeoDataFrame,
    epsg: int,
    fields: dict[str, str | None],
    villages: list[str] | str,
) -> dict[str, int]:
    """Stage one layer; ``villages`` is each feature's village code (or one for all).

    Returns the count of features and of features whose Z/M values were dropped.
    """
    geoms = np.asarray(frame.geometry.values, dtype=object)
    has_z = int(np.count_nonzero(shapely.has_z(geoms)))
    flat = shapely.force_2d(geoms)
    lonlat = _reproject(flat, epsg)
    wkb = shapely.to_wkb(shapely.set_srid(lonlat, WGS84), hex=True, include_srid=True)
    roles = {v: k for k, v in fields.items() if v}
    others = [c for c in frame.columns if c != frame.geometry.name and c not in roles]
    null = "\\N"
    lines = []
    records = frame.drop(columns=frame.geometry.name).to_dict("records")
    per_feature = [villages] * len(records) if isinstance(villages, str) else villages
    for i, (row, geom, village) in enumerate(zip(records, wkb, per_feature, strict=True)):
        attrs = {c: _text(row[c]) for c in others if _text(row[c]) is not None}
        parcel_no = _text(row[fields["parcel_no"]]) if fields.get("parcel_no") else None
        land_use = _text(row[fields["land_use"]]) if fields.get("land_use") else None
        area = _number(row[fields["area"]]) if fields.get("area") else None
        lines.append(
            "\t".join(
                (
                    str(upload_id),
                    layer,
                    copy_text(village),
                    str(i + 1),
                    copy_text(parcel_no) if parcel_no else null,
                    copy_text(land_use) if land_use else null,
                    null if area is None else repr(area),
                    copy_text(json.dumps(attrs, ensure_ascii=False)),
                    null if geom is None else geom,
                )
            )
        )
    copy_lines(
        conn,
        "COPY parcel_stage (upload_id, layer, village, feature, parcel_no,"
        " land_use, area_declared, attrs, geom) FROM STDIN",
        lines,
    )
    return {"features": len(lines), "z_dropped": has_z}
