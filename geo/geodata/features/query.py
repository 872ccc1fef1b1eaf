"""Selecting features of a collection: bbox, datetime, property filters, paging, output CRS.

One ``FeatureQuery`` serves the GeoJSON items, the downloads and the counts, so every form
of an answer selects the same features. Paging is by key (``after`` = the last id seen),
which stays fast deep into a large layer, unlike an offset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from geo.errors import InvalidParameter
from geo.geodata.features.collections import Collection, Filter
from geo.geodata.features.temporal import TimeFilter
from geo.geodata.persian import (
    ascii_digits,
    is_digits,
    match_key,
    match_key_sql,
    normalize_code,
)
from geo.geodata.registry.agencies import agency_known_sql, require_agency, unknown_agency
from geo.geodata.registry.editions import editions_in_force
from geo.geodata.registry.partners import partners
from geo.geodata.registry.references import parse_unit_ref
from geo.models.crosswalk import LINK_AGENCIES as AGENCIES
from geo.platform.database import read_mapping

__all__ = [
    "CRS84",
    "MAX_WHOLE",
    "FeatureQuery",
    "Lookups",
    "OutputCrs",
    "Selection",
    "SortKey",
    "parse_crs",
]

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
MAX_WHOLE = 2**62  # the largest whole number a filter takes (an id, a count)
_EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
OUTPUT_EPSG = (4326, 3857, 32638, 32639, 32640, 32641)


@dataclass(frozen=True)
class OutputCrs:
    """A CRS answers may be given in: its URI, EPSG code, and whether axes are lat/lon."""

    uri: str
    epsg: int
    lat_first: bool = False

    def wrap(self, geometry_sql: str) -> str:
        """SQL turning an EPSG:4326 lon/lat geometry into this CRS's coordinates."""
        if self.epsg != 4326:
            return f"ST_Transform({geometry_sql}, {self.epsg})"
        return f"ST_FlipCoordinates({geometry_sql})" if self.lat_first else geometry_sql

    @property
    def decimals(self) -> int:
        return 7 if self.epsg == 4326 else 3


def supported_crs() -> list[str]:
    return [CRS84, *(f"{_EPSG_URI}{code}" for code in OUTPUT_EPSG)]


def parse_crs(value: str | None, field_name: str = "crs") -> OutputCrs:
    """A CRS URI, ``EPSG:NNNN`` or a bare code; CRS84 (lon/lat) when absent."""
    raw = (value or "").strip()
    if not raw or raw in {CRS84, "CRS84", "OGC:CRS84"}:
        return OutputCrs(CRS84, 4326)
    code = ascii_digits(raw.removeprefix(_EPSG_URI).removeprefix("EPSG:").removeprefix("epsg:"))
    if is_digits(code) and len(code) < 7 and int(code) in OUTPUT_EPSG:
        epsg = int(code)
        return OutputCrs(f"{_EPSG_URI}{epsg}", epsg, lat_first=epsg == 4326)
    raise InvalidParameter(
        f"{field_name} {raw!r} is not offered; use one of {', '.join(supported_crs())}",
        code="unsupported_crs",
        field=field_name,
    )


@dataclass
class Lookups:
    """The lookups a selection needs before its query (a village's codes in every agency,
    whether its agency exists, the provinces a bbox or village reaches), asked together in
    one statement: named subqueries (``WITH``) and the values to fetch, each bound to the
    query as the parameter of its name."""

    subqueries: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)
    agencies: dict[str, tuple[str, str]] = field(default_factory=dict)  # value: agency, field

    def require_agency(self, name: str, agency_param: str, agency: str, field_name: str) -> None:
        """Check on the way that the agency bound as ``agency_param`` exists."""
        self.values[name] = agency_known_sql(f"CAST(:{agency_param} AS text)")
        self.agencies[name] = (agency, field_name)

    def run(self, conn: Connection, params: dict[str, Any]) -> None:
        """Ask them (nothing when there are none) and bind what they found into ``params``."""
        if not self.values:
            return
        head = f"WITH {', '.join(self.subqueries)} " if self.subqueries else ""
        columns = ", ".join(f"{sql} AS {name}" for name, sql in self.values.items())
        row = read_mapping(conn, f"{head}SELECT {columns}", params)
        for name, (agency, field_name) in self.agencies.items():
            if not row[name]:
                raise unknown_agency(agency, field_name)
        params.update({k: v for k, v in row.items() if k not in self.agencies})


@dataclass(frozen=True)
class SortKey:
    """One ``sortby`` key: the property's SQL, the type its paging value is cast to, and
    the direction (NULLs last either way)."""

    sql: str
    cast: str
    descending: bool = False


def _keyset(sort: tuple[SortKey, ...], values: list[Any]) -> tuple[str, dict[str, Any]]:
    """Rows after the one whose sort values and id are ``values`` (the next page of a
    sorted selection): for each key in turn, the earlier keys equal and this one further
    along (a NULL comes after every value)."""
    params: dict[str, Any] = {}
    equal: list[str] = []
    ors: list[str] = []
    for i, (key, value) in enumerate(zip(sort, values, strict=False)):
        name = f"k{i}"
        params[name] = value
        bound = f"CAST(:{name} AS {key.cast})"
        if value is not None:
            beyond = f"({key.sql} {'<' if key.descending else '>'} {bound} OR {key.sql} IS NULL)"
            ors.append(" AND ".join([*equal, beyond]))
        equal.append(f"{key.sql} IS NOT DISTINCT FROM {bound}")
    params["kid"] = values[len(sort)]
    ors.append(" AND ".join([*equal, "t.id > :kid"]))
    return "(" + " OR ".join(f"({o})" for o in ors) + ")", params


@dataclass(frozen=True)
class Selection:
    """A query's selection once its lookups are done: a WHERE clause with its parameters."""

    sql: str
    params: dict[str, Any]
    after: int | None = None
    sort: tuple[SortKey, ...] = ()
    after_key: list[Any] | None = None

    def where(self, *, paged: bool = False) -> tuple[str, dict[str, Any]]:
        if paged and self.sort and self.after_key is not None:
            keyset, params = _keyset(self.sort, self.after_key)
            return f"{self.sql} AND {keyset}", {**self.params, **params}
        if paged and self.after is not None:
            return f"{self.sql} AND t.id > :after", {**self.params, "after": self.after}
        return self.sql, dict(self.params)


@dataclass
class FeatureQuery:
    """What a request asks of a collection."""

    collection: Collection
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: OutputCrs = field(default_factory=lambda: parse_crs(None))
    time: TimeFilter | None = None
    filters: dict[str, str] = field(default_factory=dict)
    limit: int | None = 10
    after: int | None = None
    crs: OutputCrs = field(default_factory=lambda: parse_crs(None))
    # a compiled filter (`cql2.compile_filter`): a WHERE fragment and its parameters
    condition: tuple[str, dict[str, Any]] | None = None
    # SQL of a place (lon/lat) the filter's features all meet (`CqlFilter.bounding`)
    condition_bounding: str | None = None
    # SQL the village code of the filter's features all meet (`CqlFilter.village`)
    condition_village: str | None = None
    properties: tuple[str, ...] | None = None  # the properties answered (None: all)
    sort: tuple[SortKey, ...] = ()  # sortby (then id); empty: id order
    after_key: list[Any] | None = None  # a sorted page's paging key: sort values, then id
    _resolved: Selection | None = field(default=None, repr=False, compare=False)

    def where(self, conn: Connection, *, paged: bool = False) -> tuple[str, dict[str, Any]]:
        """The WHERE clause and its parameters; ``paged`` adds the key paging (``after``).
        The lookups behind it (editions in force, a village's codes in every agency, the
        provinces a bbox reaches) run once per query: its page, count and download share
        them."""
        if self._resolved is None:
            self._resolved = self.resolve(conn)
        return self._resolved.where(paged=paged)

    def resolve(self, conn: Connection) -> Selection:
        """Run the lookups the selection needs and build its WHERE clause (no paging)."""
        c = self.collection
        parts: list[str] = []
        params: dict[str, Any] = {}
        if c.versioned:
            if self.time is None:
                parts.append("t.valid_to IS NULL")
            else:
                sql, p = self.time.sql("t")
                parts.append(sql)
                params.update(p)
        else:
            parts.append(self._editions(conn, params))
        if self.bbox is not None:
            parts.append(f"ST_Intersects({c.geometry}, {self._envelope()})")
            params.update(dict(zip(("bx0", "by0", "bx1", "by1"), self.bbox, strict=True)))
        if self.condition is not None:
            parts.append(f"({self.condition[0]})")
            params.update(self.condition[1])
        lookups = Lookups()
        for name, value in self.filters.items():
            parts.append(self._filter(name, c.filters[name], value, params, lookups))
        if c.base_table == "parcel":
            parts.extend(self._provinces(lookups))
        lookups.run(conn, params)
        return Selection(" AND ".join(parts), params, self.after, self.sort, self.after_key)

    def _provinces(self, lookups: Lookups) -> list[str]:
        """Parcels are partitioned by province: name the provinces a bbox, a filter's place
        or village, or a village can reach (from the villages' extents), bound as a value
        the planner prunes the other partitions by (`docs/scaling.md`)."""
        where = []
        if self.bbox is not None:
            where.append(f"e.extent && {self._envelope()}")
        if self.condition_bounding is not None:
            where.append(f"e.extent && {self.condition_bounding}")
        if self.condition_village is not None:
            where.append(f"e.village_code {self.condition_village}")
        villages = [k for k, f in self.collection.filters.items() if f.kind == "village"]
        for name in villages:
            if name in self.filters:
                where.append(f"(e.village_agency, e.village_code) IN (SELECT * FROM u_{name})")
        if not where:
            return []
        lookups.values["provinces"] = (
            "(SELECT coalesce(array_agg(DISTINCT e.province), '{}') FROM parcel_extent e"
            f" WHERE {' AND '.join(where)})"
        )
        return ["t.province = ANY(:provinces)"]

    def _envelope(self) -> str:
        b = self.bbox_crs
        if b.epsg == 4326:
            x0, y0, x1, y1 = (
                ("by0", "bx0", "by1", "bx1") if b.lat_first else ("bx0", "by0", "bx1", "by1")
            )
            return f"ST_MakeEnvelope(:{x0}, :{y0}, :{x1}, :{y1}, 4326)"
        return f"ST_Transform(ST_MakeEnvelope(:bx0, :by0, :bx1, :by1, {b.epsg}), 4326)"

    def _editions(self, conn: Connection, params: dict[str, Any]) -> str:
        """Divisions: the edition in force of each agency (on the instant asked, if any)."""
        as_of = None
        if self.time is not None:
            if not self.time.instant:
                raise InvalidParameter(
                    "divisions take a datetime instant (the editions in force then)",
                    field="datetime",
                )
            as_of = self.time.start.date() if self.time.start else None
        agency = self.filters.get("agency")
        agencies = [agency.strip().lower()] if agency else list(AGENCIES)
        for a in agencies:
            require_agency(conn, a, "agency")
        # an agency without an edition has no divisions to show
        params["editions"] = editions_in_force(conn, agencies, as_of, skip_missing=True)
        return "t.edition_id = ANY(:editions)"

    def _filter(
        self,
        name: str,
        flt: Filter,
        value: str,
        params: dict[str, Any],
        lookups: Lookups,
    ) -> str:
        key = f"f_{name}"
        if flt.kind in ("village", "within"):
            return self._village(name, value, params, lookups, inside=flt.kind == "within")
        if flt.kind == "code":
            code = normalize_code(value)
            if not is_digits(code):
                raise InvalidParameter(f"{name} is a code (digits only)", field=name)
            params[key] = code
            return f"{flt.column} = :{key}"
        if flt.kind == "int":
            digits = normalize_code(value)
            if (
                not is_digits(digits)
                or len(digits) > len(str(MAX_WHOLE))
                or int(digits) > MAX_WHOLE
            ):
                raise InvalidParameter(f"{name} is a whole number to {MAX_WHOLE}", field=name)
            params[key] = int(digits)
            return f"{flt.column} = :{key}"
        if flt.kind == "name_key":
            params[key] = match_key(value)
            return f"{flt.column} = :{key}"
        if flt.kind == "name":  # folded in PostgreSQL: no scan of the stored spellings
            params[key] = match_key(value)
            return f"{match_key_sql(flt.column)} = :{key}"
        if name == "agency":
            return "TRUE"  # chosen with the editions
        params[key] = value.strip()
        return f"{flt.column} = :{key}"

    def _village(
        self,
        name: str,
        value: str,
        params: dict[str, Any],
        lookups: Lookups,
        *,
        inside: bool = False,
    ) -> str:
        """The village asked by any agency's code: its units in every agency (through the
        crosswalk, looked up on the way as ``u_<name>``), bound as two arrays. ``inside``:
        the villages inside the unit asked (a county, a province…), whose codes begin with
        one of those units' codes (every agency's codes nest)."""
        key = f"f_{name}"
        agency, code = parse_unit_ref(value, name)
        params[f"{key}_agency"], params[f"{key}_code"] = agency, code
        lookups.require_agency(f"{key}_known", f"{key}_agency", agency, name)
        crosswalk = partners()
        units = crosswalk.units_sql(
            f"CAST(:{key}_agency AS text)", f"CAST(:{key}_code AS text)", crosswalk.latest_run_sql()
        )
        lookups.subqueries.append(f"u_{name} AS ({units})")
        for column, suffix in (("agency", "a"), ("code", "c")):
            lookups.values[f"{key}_{suffix}"] = (
                f"(SELECT coalesce(array_agg({column} ORDER BY agency, code), '{{}}')"
                f" FROM u_{name})"
            )
        if inside:
            return (
                f"EXISTS (SELECT 1 FROM unnest(CAST(:{key}_a AS text[]),"
                f" CAST(:{key}_c AS text[])) AS u(a, c) WHERE u.a = t.village_agency"
                f" AND left(t.village_code, length(u.c)) = u.c)"
            )
        return (
            f"(t.village_agency, t.village_code) IN (SELECT * FROM"
            f" unnest(CAST(:{key}_a AS text[]), CAST(:{key}_c AS text[])))"
        )

    def order(self) -> str:
        """Id order; with a bbox (or a filter's place) the sort comes after the spatial
        filter (``+ 0`` keeps the planner from walking the whole primary key looking for
        the few rows in the box).
        With ``sort``: its keys (NULLs last), then id."""
        if self.sort:
            keys = [f"{k.sql} {'DESC' if k.descending else 'ASC'} NULLS LAST" for k in self.sort]
            return ", ".join([*keys, "t.id"])
        placed = self.bbox is not None or self.condition_bounding is not None
        return "t.id + 0" if placed else "t.id"


def parse_filters(collection: Collection, args: dict[str, str]) -> dict[str, str]:
    """The collection's filter parameters present in ``args`` (empty values ignored)."""
    return {
        name: value
        for name, value in args.items()
        if name in collection.filters and value is not None and value.strip() != ""
    }
