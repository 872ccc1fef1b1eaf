"""Bounding boxes as clients send them: ``x0,y0,x1,y1`` text or a list of four numbers.

The one parser of boxes. A geographic box (WGS 84 longitude/latitude) must lie within
±180/±90 with its corners in order; a projected one (another ``bbox-crs``) only in order.
Text not written as four numbers is malformed (``invalid_parameter``, 400); four numbers
that make no box (corners out of order, off the globe) are wrong content (``invalid_bbox``,
422). ``BBOX_PATTERN`` says the first in the OpenAPI document.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from geo.errors import InvalidParameter, ValidationError

__all__ = ["BBOX_PATTERN", "BBox", "check_bbox", "check_projected", "parse_bbox"]

_NUMBER = r"\s*[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*"
BBOX_PATTERN = rf"^{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$"

BBox = tuple[float, float, float, float]


def check_bbox(values: Sequence[float], field: str = "bbox", *, geographic: bool = True) -> BBox:
    """Four numbers as a box, or ``InvalidParameter`` naming ``field``."""
    message = (
        f"{field} is minlon,minlat,maxlon,maxlat"
        if geographic
        else f"{field} is four numbers x0,y0,x1,y1"
    )
    if len(values) != 4:
        raise InvalidParameter(message, field=field)
    x0, y0, x1, y1 = (float(v) for v in values)
    in_order = x0 <= x1 and y0 <= y1
    on_earth = x0 >= -180 and x1 <= 180 and y0 >= -90 and y1 <= 90
    if not in_order or (geographic and not on_earth):
        raise ValidationError(message, code="invalid_bbox", field=field)
    return x0, y0, x1, y1


def check_projected(box: BBox, epsg: int, field: str = "bbox") -> BBox:
    """``box`` in EPSG:``epsg``, checked to fall on the globe once in lon/lat (PostGIS
    refuses to transform points outside a projection's domain: that was a 500);
    ``invalid_bbox`` (422) otherwise."""
    from geo.geodata.crs import transformer

    xs, ys = transformer(epsg).transform([box[0], box[2]], [box[1], box[3]])
    if not all(math.isfinite(v) and abs(v) <= 180 for v in (*xs, *ys)) or max(map(abs, ys)) > 90:
        raise ValidationError(
            f"{field} lies outside EPSG:{epsg}'s area", code="invalid_bbox", field=field
        )
    return box


def parse_bbox(raw: str | None, field: str = "bbox", *, geographic: bool = True) -> BBox | None:
    """``x0,y0,x1,y1`` text as a box (None when absent), or ``InvalidParameter``."""
    if not raw:
        return None
    if re.fullmatch(BBOX_PATTERN, raw) is None:
        check_bbox([], field, geographic=geographic)  # raises with the field's message
    return check_bbox([float(v) for v in raw.split(",")], field, geographic=geographic)
