"""How big a generated world is: from unit-test tiny to national scale."""

from __future__ import annotations

from dataclasses import dataclass

from geo.errors import ValidationError


@dataclass(frozen=True)
class Size:
    """A preset.

    Attributes:
        provinces: SCI province codes to keep (``None``: all in the source).
        village_share: share of the source's villages kept (parents always kept).
        hf_share: about this share of inhabited villages has a guide plan (HF list).
        parcel_villages: how many HF villages get a parcel map file.
        plates_per_village: registered plots drawn per mapped village.
        defect_rate: share of parcel maps with a known defect.
        zone_radius: smallest and largest guide-plan zone radius, metres.
    """

    name: str
    provinces: tuple[str, ...] | None
    village_share: float
    hf_share: float
    parcel_villages: int
    plates_per_village: int
    defect_rate: float
    needs_full_source: bool = False
    zone_radius: tuple[float, float] = (150.0, 450.0)


SIZES = {
    "tiny": Size("tiny", ("23", "25"), 0.12, 0.35, 3, 3, 0.34, zone_radius=(90.0, 160.0)),
    "small": Size("small", ("23", "25"), 1.0, 0.35, 12, 4, 0.3, zone_radius=(100.0, 250.0)),
    "sample": Size("sample", ("23", "25"), 1.0, 0.35, 40, 5, 0.2),
    "national": Size("national", None, 0.66, 0.36, 2600, 3, 0.05, needs_full_source=True),
}


def size(name: str) -> Size:
    """The preset called ``name``."""
    try:
        return SIZES[name]
    except KeyError:
        raise ValidationError(
            f"unknown size {name!r}; choose one of {', '.join(SIZES)}", code="unknown_size"
        ) from None
