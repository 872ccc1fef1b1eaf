"""The division registry: agency list formats, editions, lookup by any agency's code."""

from geo.geodata.registry.formats import DivisionRow, detect_format, read_rows
from geo.geodata.registry.store import ImportResult, import_edition

__all__ = ["DivisionRow", "ImportResult", "detect_format", "import_edition", "read_rows"]
