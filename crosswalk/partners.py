"""The crosswalk's answer to geo's partner questions (`geo.geodata.registry.partners`): the
one place outside the crosswalk's own modules where its tables are read for others.

Links are stored pairwise with MOI (the reference): MOI↔SCI rows and MOI↔HF rows, so an
SCI code reaches HF through its MOI unit. Only accepted links (``auto``, ``confirmed``)
make codes equivalent; the partners shown with a unit include those waiting for review.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, text

from geo.models.crosswalk import LINK_AGENCIES

__all__ = ["ACCEPTED_SQL", "ACCEPTED_STATUSES", "CROSSWALK", "LATEST_RUN_SQL", "CrosswalkPartners"]

# Links that decide something (what the matcher or a person accepted); a link waiting for
# review decides nothing.
ACCEPTED_STATUSES = ("auto", "confirmed")
ACCEPTED_SQL = f"({', '.join(repr(s) for s in ACCEPTED_STATUSES)})"  # for `status IN …`
# The run the crosswalk answers from: the newest finished one (a scalar subquery).
LATEST_RUN_SQL = "(SELECT max(id) FROM crosswalk_run WHERE status = 'finished')"


class CrosswalkPartners:
    """Partners from the newest finished crosswalk run."""

    def latest_run_sql(self) -> str:
        return LATEST_RUN_SQL

    def latest_run(self, conn: Connection) -> int | None:
        run: int | None = conn.execute(text(f"SELECT {LATEST_RUN_SQL}")).scalar_one()
        return run

    def equivalent_codes(
        self, conn: Connection, agency: str, code: str, run: int | bool | None = True
    ) -> set[tuple[str, str]]:
        found = {(agency, code)}
        if run is True:
            run = self.latest_run(conn)
        if run is None or run is False or agency not in LINK_AGENCIES:
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
            for other, value in zip(LINK_AGENCIES, row, strict=True):
                if value:
                    found.add((other, value))
        return found

    def equivalent_codes_of(
        self, conn: Connection, units: Sequence[tuple[str, str]], run: int | bool | None = True
    ) -> dict[tuple[str, str], set[tuple[str, str]]]:
        """:meth:`equivalent_codes` of many units in two or three statements (one per agency
        to reach MOI, one from MOI to all), not two per unit."""
        found = {unit: {unit} for unit in units}
        if run is True:
            run = self.latest_run(conn)
        if run is None or run is False:
            return found
        moi_of: dict[tuple[str, str], set[str]] = {}
        for agency in LINK_AGENCIES:
            codes = sorted({c for a, c in units if a == agency})
            if not codes:
                continue
            if agency == "moi":
                for c in codes:
                    moi_of.setdefault((agency, c), set()).add(c)
                continue
            rows = conn.execute(
                text(
                    f"SELECT DISTINCT {agency}_code, moi_code FROM crosswalk_link"
                    f" WHERE run_id = :r AND {agency}_code = ANY(:c) AND moi_code IS NOT NULL"
                    f" AND status IN {ACCEPTED_SQL}"
                ),
                {"r": run, "c": codes},
            ).all()
            for code, moi in rows:
                moi_of.setdefault((agency, code), set()).add(moi)
        every_moi = sorted(set().union(*moi_of.values())) if moi_of else []
        if not every_moi:
            return found
        partners_of: dict[str, set[tuple[str, str]]] = {}
        for row in conn.execute(
            text(
                f"SELECT moi_code, sci_code, hf_code FROM crosswalk_link WHERE run_id = :r"
                f" AND moi_code = ANY(:m) AND status IN {ACCEPTED_SQL}"
            ),
            {"r": run, "m": every_moi},
        ).all():
            linked = partners_of.setdefault(row[0], set())
            for other, value in zip(LINK_AGENCIES, row, strict=True):
                if value:
                    linked.add((other, value))
        for unit, mois in moi_of.items():
            for moi in mois:
                found[unit] |= partners_of.get(moi, set())
        return found

    def of_units(
        self, conn: Connection, agency: str, codes: Sequence[str], *, with_method: bool = False
    ) -> dict[str, list[dict[str, Any]]]:
        if agency not in LINK_AGENCIES or not codes:
            return {}
        links: dict[str, list[dict[str, Any]]] = {}
        rows = conn.execute(
            text(
                f"SELECT l.{agency}_code AS code, l.moi_code, l.sci_code, l.hf_code,"
                " l.relation, l.confidence, l.status, l.method FROM crosswalk_link l"
                f" WHERE l.{agency}_code = ANY(:codes) AND l.status <> 'rejected'"
                f" AND l.run_id = {LATEST_RUN_SQL}"
            ),
            {"codes": list(codes)},
        ).mappings()
        for r in rows:
            for other in LINK_AGENCIES:
                if other != agency and r[f"{other}_code"]:
                    found = {
                        "agency": other,
                        "code": r[f"{other}_code"],
                        "relation": r["relation"],
                        "confidence": r["confidence"],
                        "status": r["status"],
                    }
                    if with_method:
                        found["method"] = r["method"]
                    links.setdefault(r["code"], []).append(found)
        return links


CROSSWALK = CrosswalkPartners()
