"""A generated world's agency lists imported into the registry with their publication dates."""

from __future__ import annotations

from pathlib import Path

from data.generator import EDITIONS, PUBLISHED
from geo.geodata.dates import parse_date
from geo.geodata.registry import import_edition
from geo.platform.database import Database

__all__ = ["import_lists"]

ALL = ("moi_old", "moi", "sci", "hf")


def import_lists(db: Database, world: Path, which: tuple[str, ...] = ALL) -> dict[str, int]:
    """Import the world's lists named in ``which`` (keys of ``EDITIONS``); return key → edition
    id. Publication dates come along, so the registry knows MOI 1401 is newer than MOI 1400
    whatever the order of import."""
    ids: dict[str, int] = {}
    for key in which:
        agency, label, name = EDITIONS[key]
        ids[key] = import_edition(
            db,
            agency,
            label,
            (world / "lists" / name).read_bytes(),
            source_name=name,
            published_on=parse_date(PUBLISHED[key]),
        ).edition_id
    return ids
