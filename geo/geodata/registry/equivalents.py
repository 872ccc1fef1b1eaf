"""The same place in every agency's coding, through the newest finished crosswalk.

Links are stored pairwise with MOI (the reference): MOI↔SCI rows and MOI↔HF rows, so an
SCI code reaches HF through its MOI unit. Only links a person or the matcher accepted
(``auto``, ``confirmed``) count; a link waiting for review does not decide anything.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

from geo.models.crosswalk import ACCEPTED_SQL, LATEST_RUN_SQL, LINK_AGENCIES

__all__ = ["equivalent_codes", "latest_run"]

AGENCIES = LINK_AGENCIES


def latest_run(conn: Connection) -> int | None:
    """The newest finished crosswalk run, or None."""
    run: int | None = conn.execute(text(f"SELECT {LATEST_RUN_SQL}")).scalar_one()
    return run


def equivalent_codes(
    conn: Connection, agency: str, code: str, run: int | bool | None = True
) -> set[tuple[str, str]]:
    """``(agency, code)`` and every accepted counterpart of it in the other agencies
    (``run``: the crosswalk run to use, looked up when True; None when there is none)."""
    found = {(agency, code)}
    if run is True:
        run = latest_run(conn)
    if run is None or run is False:
        return found
    if agency == "moi":
        moi_codes = [code]
    else:
        moi_codes = list(
            conn.execute(
                text(
                    f"SELECT DISTINCT moi_code FROM crosswalk_link WHERE run_id = :r"
                    f" AND {agency}_code = :c AND moi_code IS NOT NULL"
                    f" AND status IN {ACCEPTED_SQL}"
                ),
                {"r": run, "c": code},
            ).scalars()
        )
    if not moi_codes:
        return found
    rows = conn.execute(
        text(
            f"SELECT moi_code, sci_code, hf_code FROM crosswalk_link WHERE run_id = :r"
            f" AND moi_code = ANY(:m) AND status IN {ACCEPTED_SQL}"
        ),
        {"r": run, "m": moi_codes},
    ).all()
    for row in rows:
        for other, value in zip(AGENCIES, row, strict=True):
            if value:
                found.add((other, value))
    return found
