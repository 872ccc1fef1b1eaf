"""The division registry: agency list formats, editions, lookup by any agency's code.

The names below are imported on first use: importing one of the package's modules does
not load the others."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geo.geodata.registry.formats import DivisionRow, detect_format, read_rows
    from geo.geodata.registry.store import ImportResult, import_edition

__all__ = ["DivisionRow", "ImportResult", "detect_format", "import_edition", "read_rows"]
_HOME = {
    "DivisionRow": "geo.geodata.registry.formats",
    "detect_format": "geo.geodata.registry.formats",
    "read_rows": "geo.geodata.registry.formats",
    "ImportResult": "geo.geodata.registry.store",
    "import_edition": "geo.geodata.registry.store",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'geo.geodata.registry' has no attribute {name!r}")
