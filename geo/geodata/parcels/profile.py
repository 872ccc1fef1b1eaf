"""Which attribute holds what: HF's usual field names by default, or a mapping given.

A shapefile's DBF keeps at most 10 characters of a field's name, so a column of exactly 10
characters also matches the longer names it begins (``VILLAGE_CO`` is ``VILLAGE_CODE``).
The roles, for a mapping: ``parcel_no`` (required), ``village`` (each parcel's village code,
for a file of many villages), ``land_use``, ``area`` (the declared area, m²)."""

from __future__ import annotations

from collections.abc import Iterable

from geo.geodata.parcels.errors import UploadRejected

__all__ = ["DBF_NAME_LENGTH", "DEFAULT_PROFILE", "resolve_fields"]

DBF_NAME_LENGTH = 10

# HF's GIS staff name fields in Finglish (DBF allows 10 characters) or Persian.
DEFAULT_PROFILE: dict[str, tuple[str, ...]] = {
    "parcel_no": (
        "SHOMARE",
        "SHOMARE_GH",
        "PARCEL_NO",
        "PARCEL_NUMBER",
        "PARCEL_ID",
        "PLOT_NO",
        "PARCEL",
        "PELAK",
        "PARCELNO",
        "NO",
        "شماره",
        "شماره_قطعه",
        "شماره قطعه",
    ),
    "land_use": ("KARBARI", "LANDUSE", "LAND_USE", "LANDUSE_TYPE", "LU", "USE", "کاربری"),
    "area": ("MASAHAT", "AREA", "AREA_M2", "DECLARED_AREA", "SHAPE_AREA", "مساحت"),
    "village": (
        "CODE_HF",
        "ABADI_CODE",
        "CODE_ABADI",
        "VILLAGE",
        "VILLAGE_CODE",
        "VILLAGE_ID",
        "VILL_CODE",
        "DEH_CODE",
        "کد_آبادی",
    ),
}


def _names(column: str, name: str) -> bool:
    """Whether ``column`` is the field ``name`` (any case; or its DBF-truncated form)."""
    column, name = column.upper(), name.upper()
    return column == name or (len(column) == DBF_NAME_LENGTH and name.startswith(column))


def resolve_fields(
    columns: Iterable[str], mapping: dict[str, str] | None = None
) -> dict[str, str | None]:
    """Role → column name. A given ``mapping`` wins; otherwise the default profile."""
    cols = [c for c in columns if c != "geometry"]
    out: dict[str, str | None] = {}
    for role, names in DEFAULT_PROFILE.items():
        wanted = (mapping or {}).get(role)
        if wanted:
            if wanted not in cols:
                raise UploadRejected(
                    f"the mapping names field {wanted!r} for {role}, but the "
                    f"file has only {', '.join(cols)}",
                    code="missing_field",
                )
            out[role] = wanted
            continue
        out[role] = next((c for n in names for c in cols if _names(c, n)), None)
    if out["parcel_no"] is None:
        raise UploadRejected(
            "no parcel number field (SHOMARE, PARCEL_NO, …); name it with a mapping "
            '{"parcel_no": "FIELD"}',
            code="missing_field",
            field="parcel_no",
        )
    return out
