"""A unit's partners in the other agencies' codings: the crosswalk's answer, asked through a
port.

``geo`` cannot import ``crosswalk`` (the crosswalk builds on geo), and only the crosswalk
package knows its tables. So geo asks the :class:`Partners` installed by the composition
roots — the app factory, the command line and the tests install
``crosswalk.partners.CROSSWALK`` — the way they make the one ``Database``. Until one is
installed, a unit has no partners (geo on its own: a migration, a bare script).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection

from geo.errors import NotFound

__all__ = ["NoPartners", "Partners", "codes_json_sql", "install_partners", "partners"]


class Partners(Protocol):
    """What geo may ask of the crosswalk (hashable: statements written through it are
    kept per partner source)."""

    def __hash__(self) -> int: ...

    def latest_run_sql(self) -> str:
        """A scalar SQL expression for the run that answers (NULL: none), to embed."""
        ...

    def equivalent_codes(
        self, conn: Connection, agency: str, code: str, run: int | bool | None = True
    ) -> set[tuple[str, str]]:
        """``(agency, code)`` and every accepted counterpart in the other agencies (``run``:
        the run to use, looked up when True)."""
        ...

    def units_sql(self, agency: str, code: str, run: str) -> str:
        """A subquery of rows ``(agency, code)``: the unit ``(agency, code)`` (SQL
        expressions) and its accepted counterparts through run ``run`` (an SQL expression),
        :meth:`equivalent_codes` inside a statement."""
        ...

    def codes_sql(self, agency: str, code: str, run: str) -> str:
        """The same as a scalar JSON object ``{agency: [codes]}`` (both sorted)."""
        ...

    def of_units(
        self,
        conn: Connection,
        agency: str,
        codes: Sequence[str],
        *,
        with_method: bool = False,
        run: int | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        """Each code's linked units in the other agencies (any status but rejected), in run
        ``run`` (the newest finished one when None)."""
        ...

    def runs(self, conn: Connection) -> list[dict[str, Any]]:
        """The finished runs, oldest first: ``id``, ``finished_at`` and ``editions`` (the
        edition id of each agency it was built on)."""
        ...

    def crossing(
        self, conn: Connection, run: int, agency: str, codes: Sequence[str], to_agency: str
    ) -> dict[str, list[tuple[str, str]]]:
        """Each of ``codes`` (of ``agency``, in the run's edition) to its accepted
        counterparts in ``to_agency`` through run ``run`` (by way of MOI, the reference):
        ``(code, relation)`` pairs, the relations of both links composed."""
        ...

    def latest_release(self, conn: Connection) -> int | None:
        """The newest published crosswalk release's number (None: none yet)."""
        ...

    def write_release(self, conn: Connection, release: int, folder: Path) -> int:
        """Release ``release``'s table into ``folder`` as ``crosswalk.csv`` and
        ``crosswalk.xlsx`` (a snapshot's files); the number of rows."""
        ...


class NoPartners:
    """No crosswalk: every unit stands alone."""

    def latest_run_sql(self) -> str:
        return "CAST(NULL AS bigint)"

    def equivalent_codes(
        self, conn: Connection, agency: str, code: str, run: int | bool | None = True
    ) -> set[tuple[str, str]]:
        return {(agency, code)}

    def units_sql(self, agency: str, code: str, run: str) -> str:
        return f"SELECT {agency} AS agency, {code} AS code"

    def codes_sql(self, agency: str, code: str, run: str) -> str:
        return codes_json_sql(self.units_sql(agency, code, run))

    def of_units(
        self,
        conn: Connection,
        agency: str,
        codes: Sequence[str],
        *,
        with_method: bool = False,
        run: int | None = None,
    ) -> dict[str, list[dict[str, Any]]]:
        return {}

    def runs(self, conn: Connection) -> list[dict[str, Any]]:
        return []

    def crossing(
        self, conn: Connection, run: int, agency: str, codes: Sequence[str], to_agency: str
    ) -> dict[str, list[tuple[str, str]]]:
        return {}

    def latest_release(self, conn: Connection) -> int | None:
        return None

    def write_release(self, conn: Connection, release: int, folder: Path) -> int:
        raise NotFound("no crosswalk is installed", code="no_release")


def codes_json_sql(units: str) -> str:
    """Rows ``(agency, code)`` of the subquery ``units`` as one JSON object
    ``{agency: [codes]}``, agencies and codes sorted (a scalar SQL expression)."""
    return (
        "(SELECT json_object_agg(agency, codes ORDER BY agency) FROM (SELECT agency,"
        f" json_agg(code ORDER BY code) AS codes FROM ({units}) u GROUP BY agency) c)"
    )


_installed: Partners = NoPartners()


def install_partners(source: Partners) -> None:
    """Make ``source`` the answer to every partner question in this process."""
    global _installed
    _installed = source


def partners() -> Partners:
    """The installed partner source (:class:`NoPartners` until one is installed)."""
    return _installed
