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
from typing import Any, Protocol

from sqlalchemy import Connection

__all__ = ["NoPartners", "Partners", "install_partners", "partners"]


class Partners(Protocol):
    """What geo may ask of the crosswalk."""

    def latest_run_sql(self) -> str:
        """A scalar SQL expression for the run that answers (NULL: none), to embed."""
        ...

    def equivalent_codes(
        self, conn: Connection, agency: str, code: str, run: int | bool | None = True
    ) -> set[tuple[str, str]]:
        """``(agency, code)`` and every accepted counterpart in the other agencies (``run``:
        the run to use, looked up when True)."""
        ...

    def equivalent_codes_of(
        self, conn: Connection, units: Sequence[tuple[str, str]], run: int | bool | None = True
    ) -> dict[tuple[str, str], set[tuple[str, str]]]:
        """:meth:`equivalent_codes` of each of ``units`` (``(agency, code)`` pairs), asked
        at once."""
        ...

    def of_units(
        self, conn: Connection, agency: str, codes: Sequence[str], *, with_method: bool = False
    ) -> dict[str, list[dict[str, Any]]]:
        """Each code's linked units in the other agencies (any status but rejected)."""
        ...


class NoPartners:
    """No crosswalk: every unit stands alone."""

    def latest_run_sql(self) -> str:
        return "CAST(NULL AS bigint)"

    def equivalent_codes(
        self, conn: Connection, agency: str, code: str, run: int | bool | None = True
    ) -> set[tuple[str, str]]:
        return {(agency, code)}

    def equivalent_codes_of(
        self, conn: Connection, units: Sequence[tuple[str, str]], run: int | bool | None = True
    ) -> dict[tuple[str, str], set[tuple[str, str]]]:
        return {unit: {unit} for unit in units}

    def of_units(
        self, conn: Connection, agency: str, codes: Sequence[str], *, with_method: bool = False
    ) -> dict[str, list[dict[str, Any]]]:
        return {}


_installed: Partners = NoPartners()


def install_partners(source: Partners) -> None:
    """Make ``source`` the answer to every partner question in this process."""
    global _installed
    _installed = source


def partners() -> Partners:
    """The installed partner source (:class:`NoPartners` until one is installed)."""
    return _installed
