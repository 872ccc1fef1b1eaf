"""Which attribute holds what: HF's usual field names by default, or a mapping given."""

from __future__ import annotations

from collections.abc import Iterable

from geo.geodata.parcels.errors import UploadRejected

__all__ = ["DEFAULT_PROFILE", "resolve_fields"]

# HF's GIS staff name fields in Finglish (DBF allows 10 characters) or Persian.
DEFAULT_PROFILE: dict[str, tuple[str, ...]] = {
    "parcel_no": (
        "SHOMARE",
        "SHOMARE_GH",
        "PARCEL_NO",
        "PARCEL",
        "PELAK",
        "PARCELNO",
        "NO",
        "شماره",
        "شماره_قطعه",
        "شماره قطعه",
    ),
    "land_use": ("KARBARI", "LANDUSE", "LAND_USE", "LU", "USE", "کاربری"),
    "area": ("MASAHAT", "AREA", "SHAPE_AREA", "مساحت"),
    "village": ("CODE_HF", "ABADI_CODE", "CODE_ABADI", "VILLAGE", "VILL_CODE", "کد_آبادی"),
}


def resolve_fields(
    columns: Iterable[str], mapping: dict[str, str] | None = None
) -> dict[str, str | None]:
    """Role → column name. A given ``mapping`` wins; otherwise the default profile."""
    cols = [c for c in columns if c != "geometry"]
    by_upper = {c.upper(): c for c in cols}
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
        out[role] = next((by_upper[n.upper()] for n in names if n.upper() in by_upper), None)
    if out["parcel_no"] is None:
        raise UploadRejected(
            "no parcel number field (SHOMARE, PARCEL_NO, …); name it with a mapping "
            '{"parcel_no": "FIELD"}',
            code="missing_field",
            field="parcel_no",
        )
    return out
