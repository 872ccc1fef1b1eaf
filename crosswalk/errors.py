"""Errors of the crosswalk, each with a stable machine code (mapped to HTTP by `api/`)."""

from __future__ import annotations

from geo.errors import Conflict, GeoError, InvalidParameter, NotFound, ValidationError

__all__ = [
    "Conflict",
    "CrosswalkError",
    "InvalidParameter",
    "NoRun",
    "NotFound",
    "ValidationError",
]


class CrosswalkError(GeoError):
    """Base of the crosswalk's own errors."""

    code = "crosswalk_error"


class NoRun(CrosswalkError):
    """There is no finished crosswalk run (or release) to answer from."""

    code = "no_crosswalk_run"
