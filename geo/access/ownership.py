"""Who owns each writable dataset, and the rules that follow (DESIGN.md §11).

Parcels and guide-plan zones, plates and the crosswalk's decisions each have one owner
agency (``dataset_owner``, seeded from ``OWNED_DATASETS``; an admin may hand a dataset over);
a division list is owned by its own agency. Only the owner's keys write a dataset; an
upload, its report, its features and its publish are seen by the uploading key's agency
alone. Admins pass every ownership rule. Reads stay governed by the policies
(:mod:`geo.access.control`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from geo.access.control import Forbidden, Principal
from geo.errors import InvalidParameter, NotFound
from geo.geodata.registry.agencies import require_agency
from geo.models.access import OWNED_DATASETS

__all__ = [
    "check_owner",
    "owner_of",
    "owners",
    "require_visible_upload",
    "set_owner",
]


def owners(conn: Connection) -> dict[str, str | None]:
    """Each owned dataset and its agency (``None``: no owner, admins only)."""
    found: dict[str, str] = dict(
        conn.execute(text("SELECT dataset, agency FROM dataset_owner")).all()  # type: ignore[arg-type]
    )
    return {dataset: found.get(dataset) for dataset in OWNED_DATASETS}


def owner_of(conn: Connection, dataset: str) -> str | None:
    if dataset not in OWNED_DATASETS:
        raise KeyError(f"{dataset!r} is not an owned dataset")
    return conn.execute(
        text("SELECT agency FROM dataset_owner WHERE dataset = :d"), {"d": dataset}
    ).scalar()


def check_owner(conn: Connection, dataset: str, principal: Principal) -> None:
    """``Forbidden`` (``not_owner``) unless the principal's agency owns ``dataset``."""
    if principal.role == "admin":
        return
    owner = owner_of(conn, dataset)
    if principal.agency != owner:
        raise Forbidden(
            f"the {dataset} data belong to {owner or 'no agency'}; a key of {principal.agency}"
            " may read them but not write them",
            code="not_owner",
        )


def set_owner(conn: Connection, dataset: str, agency: str, by: str | None = None) -> dict[str, Any]:
    if dataset not in OWNED_DATASETS:
        raise InvalidParameter(f"dataset is one of {', '.join(OWNED_DATASETS)}", field="dataset")
    require_agency(conn, agency)
    conn.execute(
        text(
            "INSERT INTO dataset_owner (dataset, agency, updated_by) VALUES (:d, :a, :by)"
            " ON CONFLICT (dataset) DO UPDATE SET agency = :a, updated_by = :by,"
            " updated_at = now()"
        ),
        {"d": dataset, "a": agency, "by": by},
    )
    return {"dataset": dataset, "agency": agency}


def require_visible_upload(conn: Connection, upload_id: int, principal: Principal | None) -> None:
    """``NotFound`` (``unknown_upload``, as for an upload that does not exist: its existence is
    not told either) unless the upload was made by a key of the principal's agency. Uploads
    made at the console (no key) are seen by the parcels' owner. Admins see every upload;
    a caller without a key (a service opened to the public) sees none."""
    agency = conn.execute(
        text(
            "SELECT coalesce(p.agency, (SELECT agency FROM dataset_owner WHERE dataset ="
            " 'parcels')) FROM upload u LEFT JOIN principal p ON p.id = u.principal_id"
            " WHERE u.id = :u"
        ),
        {"u": upload_id},
    ).first()
    if (
        agency is None
        or principal is None
        or (principal.role != "admin" and principal.agency != agency[0])
    ):
        raise NotFound(f"no upload {upload_id}", code="unknown_upload")
