"""The crosswalk's answer to geo's partner questions (`geo.geodata.registry.partners`): the
one place outside the crosswalk's own modules where its tables are read for others.

Links are stored pairwise with MOI (the reference): MOI↔SCI rows and MOI↔HF rows, so an
SCI code reaches HF through its MOI unit. Only accepted links (``auto``, ``confirmed``)
make codes equivalent; the partners shown with a unit include those waiting for review.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from geo.geodata.registry.partners import codes_json_sql
from geo.models.crosswalk import LINK_AGENCIES
from geo.platform.database import read_rows

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

    def units_sql(self, agency: str, code: str, run: str) -> str:
        """A subquery of rows ``(agency, code)``: the unit ``(agency, code)`` (SQL
        expressions) and its accepted counterparts through run ``run`` — the rows of
        :meth:`equivalent_codes`, computed inside the statement that embeds it."""
        to_moi = " UNION ".join(
            f"SELECT l.moi_code FROM crosswalk_link l WHERE {agency} = '{other}'"
            f" AND l.run_id = {run} AND l.{other}_code = {code} AND l.moi_code IS NOT NULL"
            f" AND l.status IN {ACCEPTED_SQL}"
            for other in LINK_AGENCIES
            if other != "moi"
        )
        from_moi = " UNION ".join(
            f"SELECT '{other}', l.{other}_code FROM linked l WHERE l.{other}_code IS NOT NULL"
            for other in LINK_AGENCIES
        )
        return f"""WITH mois AS (SELECT {code} AS moi_code WHERE {agency} = 'moi'
        UNION {to_moi}),
    linked AS (SELECT l.* FROM crosswalk_link l WHERE l.run_id = {run}
        AND l.moi_code IN (SELECT moi_code FROM mois) AND l.status IN {ACCEPTED_SQL})
  SELECT {agency} AS agency, {code} AS code UNION {from_moi}"""

    def codes_sql(self, agency: str, code: str, run: str) -> str:
        return codes_json_sql(self.units_sql(agency, code, run))

    def runs(self, conn: Connection) -> list[dict[str, Any]]:
        rows = conn.execute(
            text(
                "SELECT id, finished_at, moi_edition_id, sci_edition_id, hf_edition_id"
                " FROM crosswalk_run WHERE status = 'finished' ORDER BY id"
            )
        ).mappings()
        return [
            {
                "id": r["id"],
                "finished_at": r["finished_at"],
                "editions": {
                    a: r[f"{a}_edition_id"] for a in LINK_AGENCIES if r[f"{a}_edition_id"]
                },
            }
            for r in rows
        ]

    def crossing(
        self, conn: Connection, run: int, agency: str, codes: Sequence[str], to_agency: str
    ) -> dict[str, list[tuple[str, str]]]:
        wanted = sorted(set(codes))
        if agency not in LINK_AGENCIES or to_agency not in LINK_AGENCIES or not wanted:
            return {}
        if agency == "moi":
            to_moi = [(c, c, "same") for c in wanted]
        else:
            to_moi = [
                (str(a), str(m), str(rel))
                for a, m, rel in read_rows(
                    conn,
                    f"SELECT {agency}_code, moi_code, relation FROM crosswalk_link"
                    f" WHERE run_id = :r AND {agency}_code = ANY(string_to_array(:c, ','))"
                    f" AND moi_code IS NOT NULL AND status IN {ACCEPTED_SQL}",
                    {"r": run, "c": ",".join(wanted)},
                )
            ]
        if to_agency == "moi":
            onward: dict[str, list[tuple[str, str]]] = {m: [(m, "same")] for _, m, _ in to_moi}
        else:
            onward = {}
            for moi, other, relation in read_rows(
                conn,
                f"SELECT moi_code, {to_agency}_code, relation FROM crosswalk_link"
                f" WHERE run_id = :r AND moi_code = ANY(string_to_array(:m, ','))"
                f" AND {to_agency}_code IS NOT NULL AND status IN {ACCEPTED_SQL}",
                {"r": run, "m": ",".join(sorted({m for _, m, _ in to_moi}))},
            ):
                onward.setdefault(moi, []).append((other, relation))
        found: dict[str, list[tuple[str, str]]] = {}
        for code, moi, first in to_moi:
            for other, second in onward.get(moi, []):
                relation = first if second == "same" else second if first == "same" else "partial"
                if (other, relation) not in found.setdefault(code, []):
                    found[code].append((other, relation))
        return {c: sorted(v) if len(v) > 1 else v for c, v in found.items()}

    def of_units(
        self,
        conn: Connection,
        agency: str,
        codes: Sequence[str],
        *,
        with_method: bool = False,
        run: int | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        if agency not in LINK_AGENCIES or not codes:
            return {}
        links: dict[str, list[dict[str, Any]]] = {}
        rows = conn.execute(
            text(
                f"SELECT l.{agency}_code AS code, l.moi_code, l.sci_code, l.hf_code,"
                " l.relation, l.confidence, l.status, l.method FROM crosswalk_link l"
                f" WHERE l.{agency}_code = ANY(:codes) AND l.status <> 'rejected'"
                f" AND l.run_id = coalesce(CAST(:run AS int), {LATEST_RUN_SQL})"
            ),
            {"codes": list(codes), "run": run},
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

    def latest_release(self, conn: Connection) -> int | None:
        number: int | None = conn.execute(
            text("SELECT max(number) FROM crosswalk_release")
        ).scalar_one()
        return number

    def write_release(self, conn: Connection, release: int, folder: Path) -> int:
        """The release's table as the export gives it (one row per MOI unit)."""
        from crosswalk.export import export_rows, to_csv, to_xlsx

        run = conn.execute(
            text("SELECT run_id FROM crosswalk_release WHERE number = :n"), {"n": release}
        ).scalar_one()
        rows = list(export_rows(conn, run))
        with (folder / "crosswalk.csv").open("w", encoding="utf-8", newline="") as out:
            for chunk in to_csv(iter(rows)):
                out.write(chunk)
        (folder / "crosswalk.xlsx").write_bytes(to_xlsx(iter(rows)))
        return len(rows)


CROSSWALK = CrosswalkPartners()
