"""CQL2 filters (OGC API – Features Part 3) compiled to SQL with bound parameters.

A filter arrives as CQL2 text or CQL2 JSON and is parsed by pygeofilter into its syntax
tree; this module walks the tree and writes a WHERE clause over the collection's
**queryables** — its declared properties and its geometry, nothing else — with every value
bound as a parameter (never written into the SQL text). What it takes:

- basic CQL2: ``AND``/``OR``/``NOT``, ``= <> < <= > >=``, ``IS [NOT] NULL``;
- advanced comparison: ``[NOT] LIKE`` (``%`` and ``_``), ``[NOT] BETWEEN``, ``[NOT] IN``;
- arithmetic ``+ - * /`` on numbers;
- ``CASEI`` (lower case) and ``ACCENTI``: tagsim's Persian match key
  (`geo.geodata.persian.match_key`: ي/ی, ك/ک, hamza seats, diacritics, ZWNJ and spaces,
  digits), so ``ACCENTI(land_use) = ACCENTI('مسكوني')`` finds «مسکونی»;
- spatial: ``S_INTERSECTS``, ``S_DISJOINT``, ``S_CONTAINS``, ``S_WITHIN``, ``S_TOUCHES``,
  ``S_CROSSES``, ``S_OVERLAPS``, ``S_EQUALS`` (and ``BBOX``) against WKT, GeoJSON or an
  envelope, in ``filter-crs`` (CRS84 by default);
- temporal: every ``T_*`` predicate on a date-time queryable (an instant) or on an
  ``INTERVAL``, against instants, dates and intervals (``..`` open).

A filter that cannot be read, names an unknown queryable, or compares values of different
kinds is a 400 ``invalid_filter`` that says where and what.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import lru_cache
from typing import Any

from pygeofilter import ast, values
from pygeofilter.cql2 import TEMPORAL_PREDICATES_MAP

from geo.errors import InvalidParameter
from geo.geodata.features.collections import COLLECTIONS, Collection
from geo.geodata.features.query import OutputCrs, parse_crs
from geo.geodata.persian import match_key, match_key_sql

__all__ = [
    "FILTER_LANGS",
    "CqlFilter",
    "Queryable",
    "compile_filter",
    "filter_lang",
    "queryables",
]

FILTER_LANGS = ("cql2-text", "cql2-json", "cql-text")
# ``cql-text``: the draft's name of the text encoding, which GDAL 3.6's OAPIF driver sends
# (with OGR_OAPIF_ALLOW_CQL_TEXT=YES): read as CQL2 text
_ALIASES = {"cql-text": "cql2-text"}


class _TimeIntersects(ast.TemporalPredicate):
    """``T_INTERSECTS`` (pygeofilter reads it as ``T_OVERLAPS``, a narrower predicate)."""

    op = ast.TemporalComparisonOp.TOVERLAPS


# (pygeofilter's shared map: both of its CQL2 parsers read it when they meet a T_ name)
TEMPORAL_PREDICATES_MAP["t_intersects"] = _TimeIntersects


@dataclass(frozen=True)
class Queryable:
    """A name a filter may use: its SQL expression and its kind (``string``, ``number``,
    ``integer``, ``date-time`` or ``geometry``)."""

    name: str
    sql: str
    kind: str
    title: str = ""


def queryables(c: Collection) -> dict[str, Queryable]:
    """The collection's queryables: each declared property, and ``geometry``."""
    found = {
        name: Queryable(
            name,
            sql,
            "date-time" if name in ("valid_from", "valid_to") else kind,
            c.titles_fa.get(name, ""),
        )
        for name, sql, kind in c.properties
    }
    found["geometry"] = Queryable("geometry", c.geometry, "geometry", "هندسه")
    return found


@dataclass(frozen=True)
class CqlFilter:
    """A compiled filter: a WHERE fragment over the collection's alias ``t`` and its
    parameters (named ``cql0``, ``cql1``, …)."""

    sql: str
    params: dict[str, Any]
    # SQL of a geometry written in the filter (lon/lat) that every feature it selects
    # meets, or None: such a filter is bounded by a place, like a bbox (its first page is
    # counted with the page; parcels' provinces are pruned by it)
    bounding: str | None = None
    # SQL that the village code of every feature it selects meets (``= :cql3`` or
    # ``IN (…)``), or None: parcels' provinces are pruned by it, as by ``village=``
    village: str | None = None

    @property
    def bounded(self) -> bool:
        return self.bounding is not None


def compile_filter(
    c: Collection, text: str, lang: str | None = None, filter_crs: str | None = None
) -> CqlFilter:
    """Parse ``text`` (``cql2-text`` by default, or ``cql2-json``) and compile it.

    A service collection's filters are kept compiled (the last 1,024): a client repeats its
    filter on every page and every tile of a map, and parsing costs 0.3–0.5 ms. The answer
    is shared: its ``params`` are read, never changed."""
    if COLLECTIONS.get(c.id) is c:
        return _compiled(c.id, text, lang, filter_crs)
    return _compile(c, text, lang, filter_crs)


@lru_cache(maxsize=1024)
def _compiled(collection_id: str, text: str, lang: str | None, filter_crs: str | None) -> CqlFilter:
    return _compile(COLLECTIONS[collection_id], text, lang, filter_crs)


def _compile(c: Collection, text: str, lang: str | None, filter_crs: str | None) -> CqlFilter:
    lang = filter_lang(lang)
    tree = _parse(text, lang)
    crs = parse_crs(filter_crs, "filter-crs")
    writer = _Writer(queryables(c), crs)
    sql, kind = writer.expr(tree)
    if kind != "boolean":
        raise _bad(f"the filter is a {kind} value, not a condition")
    return CqlFilter(
        sql,
        writer.params,
        bounding=_through_and(tree, writer.meeting),
        village=_through_and(tree, writer.villages),
    )


# predicates that keep only features meeting the other geometry (S_DISJOINT does not)
_MEETING = (
    ast.GeometryIntersects,
    ast.GeometryWithin,
    ast.GeometryContains,
    ast.GeometryOverlaps,
    ast.GeometryTouches,
    ast.GeometryCrosses,
    ast.GeometryEquals,
)


def _through_and(node: Any, found: dict[int, str]) -> str | None:
    """What every selected feature meets: the note ``found`` holds for the filter itself,
    or for a term on either side of an AND (an OR or a NOT may reach anything)."""
    if isinstance(node, ast.And):
        return _through_and(node.lhs, found) or _through_and(node.rhs, found)
    return found.get(id(node))


def _meets_literal(node: Any) -> Any:
    """The literal side of ``geometry`` meeting a literal geometry, else None."""
    if not isinstance(node, _MEETING):
        return None
    sides = (node.lhs, node.rhs)
    if not any(isinstance(s, ast.Attribute) and s.name == "geometry" for s in sides):
        return None
    return next((s for s in sides if _literal_geometry(s)), None)


def _names(node: Any, name: str = "village_code") -> bool:
    return isinstance(node, ast.Attribute) and node.name == name


def _literal_geometry(node: Any) -> bool:
    if isinstance(node, values.Geometry | values.Envelope):
        return True
    return isinstance(node, ast.Function) and node.name.lower() == "bbox"


def filter_lang(lang: str | None) -> str:
    """The filter's language (``cql2-text`` when not said); 400 for any other word, asked
    with a filter or without one."""
    said = (lang or "cql2-text").strip().lower()
    if said not in FILTER_LANGS:
        raise InvalidParameter(
            f"filter-lang is one of {', '.join(FILTER_LANGS)}", field="filter-lang"
        )
    return _ALIASES.get(said, said)


def _bad(detail: str, code: str = "invalid_filter", **extra: Any) -> InvalidParameter:
    return InvalidParameter(f"filter: {detail}", code=code, field="filter", **extra)


# pygeofilter's CQL2 text grammar takes an INTERVAL of two date-times only: an open end
# ('..') is written as the earliest or latest instant before parsing, and read back as open
_OPEN_START, _OPEN_END = "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"
_INTERVAL_OPEN = re.compile(r"(INTERVAL\s*\(\s*)'\.\.'|('\.\.'(\s*\)))", re.IGNORECASE)


_TEMPORAL_CALL = re.compile(r"\bT_[A-Z]+\s*\(", re.IGNORECASE)


def _temporal_infix(text: str) -> str:
    """``T_AFTER(a, b)`` (CQL2) written ``(a T_AFTER b)``, as pygeofilter's grammar reads
    temporal predicates; quotes and nested parentheses respected."""
    out, at = [], 0
    while (m := _TEMPORAL_CALL.search(text, at)) is not None:
        args, depth, quoted, start, end = [], 0, False, m.end(), None
        for i in range(m.end(), len(text)):
            ch = text[i]
            if ch == "'":
                quoted = not quoted
            elif quoted:
                continue
            elif ch == "(":
                depth += 1
            elif ch == ")" and depth > 0:
                depth -= 1
            elif ch == ")":
                args.append(text[start:i])
                end = i
                break
            elif ch == "," and depth == 0:
                args.append(text[start:i])
                start = i + 1
        if end is None or len(args) != 2:
            return text  # (left as written: the parser says what is wrong)
        name = m.group(0).rstrip("( \t").upper()
        inner = _temporal_infix(args[0]), _temporal_infix(args[1])
        out.append(f"{text[at : m.start()]}({inner[0].strip()} {name} {inner[1].strip()})")
        at = end + 1
    out.append(text[at:])
    return "".join(out)


def _open_ends(text: str) -> str:
    def write(m: re.Match[str]) -> str:
        if m.group(1):
            return f"{m.group(1)}'{_OPEN_START}'"
        return f"'{_OPEN_END}'{m.group(3)}"

    return _INTERVAL_OPEN.sub(write, text)


def _parse(text: str, lang: str) -> Any:
    from lark.exceptions import LarkError, UnexpectedInput

    if lang == "cql2-json":
        from pygeofilter.parsers.cql2_json import parse as parse_json

        try:
            document = json.loads(text)
        except ValueError as exc:
            raise _bad(f"not JSON: {exc}") from None
        try:
            return parse_json(document)
        except Exception as exc:  # pygeofilter raises many kinds on a malformed document
            raise _bad(f"not CQL2 JSON: {type(exc).__name__}: {exc}") from None
    from pygeofilter.parsers.cql2_text import parse as parse_text

    try:
        return parse_text(_temporal_infix(_open_ends(text)))
    except UnexpectedInput as exc:
        column = getattr(exc, "column", None)
        near = text[max(0, (column or 1) - 1) :][:20]
        raise _bad(
            f"cannot read the filter at column {column} (near {near!r})", position=column
        ) from None
    except LarkError as exc:
        raise _bad(f"cannot read the filter: {exc}") from None


_COMPARISON = {
    ast.Equal: "=",
    ast.NotEqual: "<>",
    ast.LessThan: "<",
    ast.LessEqual: "<=",
    ast.GreaterThan: ">",
    ast.GreaterEqual: ">=",
}
_SPATIAL = {
    ast.GeometryIntersects: "ST_Intersects",
    ast.GeometryDisjoint: "ST_Disjoint",
    ast.GeometryContains: "ST_Contains",
    ast.GeometryWithin: "ST_Within",
    ast.GeometryTouches: "ST_Touches",
    ast.GeometryCrosses: "ST_Crosses",
    ast.GeometryOverlaps: "ST_Overlaps",
    ast.GeometryEquals: "ST_Equals",
}
_ARITHMETIC = {ast.Add: "+", ast.Sub: "-", ast.Mul: "*", ast.Div: "/"}
# Temporal predicates on two ranges a and b (instants are ranges of one instant).
_TEMPORAL: dict[type, Callable[[str, str], str]] = {
    _TimeIntersects: lambda a, b: f"({a} && {b})",
    ast.TimeDisjoint: lambda a, b: f"(NOT ({a} && {b}))",
    ast.TimeBefore: lambda a, b: f"({a} << {b})",
    ast.TimeAfter: lambda a, b: f"({a} >> {b})",
    ast.TimeEquals: lambda a, b: f"({a} = {b})",
    ast.TimeDuring: lambda a, b: f"({a} <@ {b} AND {a} <> {b})",
    ast.TimeContains: lambda a, b: f"({a} @> {b} AND {a} <> {b})",
    ast.TimeMeets: lambda a, b: f"(upper({a}) = lower({b}))",
    ast.TimeMetBy: lambda a, b: f"(lower({a}) = upper({b}))",
    ast.TimeOverlaps: lambda a, b: (
        f"(lower({a}) < lower({b}) AND upper({a}) > lower({b}) AND upper({a}) < upper({b}))"
    ),
    ast.TimeOverlappedBy: lambda a, b: (
        f"(lower({b}) < lower({a}) AND upper({b}) > lower({a}) AND upper({b}) < upper({a}))"
    ),
    ast.TimeBegins: lambda a, b: f"(lower({a}) = lower({b}) AND upper({a}) < upper({b}))",
    ast.TimeBegunBy: lambda a, b: f"(lower({a}) = lower({b}) AND upper({a}) > upper({b}))",
    ast.TimeEnds: lambda a, b: f"(upper({a}) = upper({b}) AND lower({a}) > lower({b}))",
    ast.TimeEndedBy: lambda a, b: f"(upper({a}) = upper({b}) AND lower({a}) < lower({b}))",
}
_COMPARABLE = {"string": "string", "number": "number", "integer": "number", "date-time": "time"}


class _Writer:
    """The tree written as SQL: each node gives (SQL, kind)."""

    def __init__(self, known: dict[str, Queryable], crs: OutputCrs) -> None:
        self.known, self.crs = known, crs
        self.params: dict[str, Any] = {}
        self.meeting: dict[int, str] = {}  # id of a predicate meeting a literal → its SQL
        self.villages: dict[int, str] = {}  # id of a village_code = / IN literal → SQL

    def bind(self, value: Any, cast: str = "") -> str:
        name = f"cql{len(self.params)}"
        self.params[name] = value
        return f"CAST(:{name} AS {cast})" if cast else f":{name}"

    def expr(self, node: Any) -> tuple[str, str]:
        if isinstance(node, ast.And | ast.Or):
            op = "AND" if isinstance(node, ast.And) else "OR"
            return f"({self.condition(node.lhs)} {op} {self.condition(node.rhs)})", "boolean"
        if isinstance(node, ast.Not):
            return f"(NOT {self.condition(node.sub_node)})", "boolean"
        if type(node) in _COMPARISON:
            written = self._compare(node.lhs, _COMPARISON[type(node)], node.rhs)
            if isinstance(node, ast.Equal):
                self._note_village(node, [node.rhs] if _names(node.lhs) else [node.lhs], "=")
            return written, "boolean"
        if isinstance(node, ast.Between):
            left, low, high = self.scalar(node.lhs), self.scalar(node.low), self.scalar(node.high)
            self._same_kind(left[1], low[1], high[1], what="BETWEEN")
            neg = "NOT " if node.not_ else ""
            return f"({left[0]} {neg}BETWEEN {low[0]} AND {high[0]})", "boolean"
        if isinstance(node, ast.Like):
            lhs, kind = self.expr(node.lhs)
            if kind != "string":
                raise _bad(f"LIKE compares text; {self._said(node.lhs)} is a {kind}")
            pattern = self.scalar(node.pattern)
            if pattern[1] != "string":
                raise _bad("a LIKE pattern is text")
            like = "ILIKE" if node.nocase else "LIKE"
            return f"({lhs} {'NOT ' if node.not_ else ''}{like} {pattern[0]})", "boolean"
        if isinstance(node, ast.In):
            lhs, kind = self.expr(node.lhs)
            items = [self.scalar(v) for v in node.sub_nodes]
            self._same_kind(kind, *(k for _, k in items), what="IN")
            inside = ", ".join(s for s, _ in items)
            if not node.not_ and _names(node.lhs):
                self._note_village(node, list(node.sub_nodes), "IN")
            return f"({lhs} {'NOT ' if node.not_ else ''}IN ({inside}))", "boolean"
        if isinstance(node, ast.IsNull):
            lhs, _ = self.expr(node.lhs)
            return f"({lhs} IS {'NOT ' if node.not_ else ''}NULL)", "boolean"
        if type(node) in _SPATIAL:
            return self._spatial(node), "boolean"
        if type(node) in _TEMPORAL:
            a, b = self._range(node.lhs), self._range(node.rhs)
            return _TEMPORAL[type(node)](a, b), "boolean"
        if type(node) in _ARITHMETIC:
            left, right = self.scalar(node.lhs), self.scalar(node.rhs)
            if not {left[1], right[1]} <= {"number", "integer"}:
                raise _bad(f"{_ARITHMETIC[type(node)]} takes numbers")
            return f"({left[0]} {_ARITHMETIC[type(node)]} {right[0]})", "number"
        if isinstance(node, ast.Function):
            return self._function(node)
        if isinstance(node, ast.Attribute):
            q = self.known.get(node.name)
            if q is None:
                raise _bad(
                    f"{node.name!r} is not a queryable; this collection's are"
                    f" {', '.join(sorted(self.known))}",
                    code="unknown_queryable",
                )
            return q.sql, q.kind
        if isinstance(node, ast.Include):
            return ("FALSE" if node.not_ else "TRUE"), "boolean"
        if isinstance(node, bool):
            return ("TRUE" if node else "FALSE"), "boolean"
        if isinstance(node, values.Geometry | values.Envelope):
            return self._geometry(node.__geo_interface__), "geometry"
        return self.scalar(node)

    def condition(self, node: Any) -> str:
        sql, kind = self.expr(node)
        if kind != "boolean":
            raise _bad(f"{self._said(node)} is a {kind} value, not a condition")
        return sql

    def scalar(self, node: Any) -> tuple[str, str]:
        """A literal value (bound) or any expression."""
        if isinstance(node, bool):
            return ("TRUE" if node else "FALSE"), "boolean"
        if isinstance(node, int | float):
            return self.bind(node), "number"
        if isinstance(node, str):
            return self.bind(node, "text"), "string"
        if isinstance(node, datetime):
            return self.bind(node, "timestamptz"), "date-time"
        if isinstance(node, date):
            return self.bind(datetime.combine(node, time()), "timestamp"), "date-time"
        if isinstance(node, ast.Node | values.Geometry | values.Envelope):
            return self.expr(node)
        raise _bad(f"{type(node).__name__} values are not taken here")

    def _note_village(self, node: Any, values_: list[Any], op: str) -> None:
        """``village_code = 'X'`` or ``village_code IN ('X', 'Y')``: noted with its values
        bound again, for the province lookup (see :attr:`CqlFilter.village`)."""
        sides = (node.lhs, getattr(node, "rhs", None))
        if not any(_names(s) for s in sides) or not all(isinstance(v, str) for v in values_):
            return
        bound = ", ".join(self.bind(v, "text") for v in values_)
        self.villages[id(node)] = f"= {bound}" if op == "=" else f"IN ({bound})"

    def _compare(self, lhs_node: Any, op: str, rhs_node: Any) -> str:
        lhs, rhs = self.scalar(lhs_node), self.scalar(rhs_node)
        self._same_kind(lhs[1], rhs[1], what=op)
        return f"({lhs[0]} {op} {rhs[0]})"

    def _same_kind(self, *kinds: str, what: str) -> None:
        seen = {_COMPARABLE.get(k, k) for k in kinds}
        if len(seen) > 1:
            raise _bad(f"{what} compares values of different kinds: {', '.join(sorted(seen))}")

    def _function(self, node: ast.Function) -> tuple[str, str]:
        name = node.name.lower()
        args = node.arguments
        if name in ("lower", "casei") and len(args) == 1:
            sql, kind = self.scalar(args[0])
            if kind != "string":
                raise _bad("CASEI takes text")
            return f"lower({sql})", "string"
        if name == "accenti" and len(args) == 1:
            if isinstance(args[0], str):  # folded here, by the one module that folds names
                return self.bind(match_key(args[0]), "text"), "string"
            sql, kind = self.scalar(args[0])
            if kind != "string":
                raise _bad("ACCENTI takes text")
            return match_key_sql(sql), "string"
        if name == "bbox" and len(args) in (4, 6):
            x0, y0, x1, y1 = (args[0], args[1], args[3], args[4]) if len(args) == 6 else args
            return self._geometry(values.Envelope(x0, x1, y0, y1).geometry), "geometry"
        raise _bad(f"no function {node.name}({len(args)} arguments); there are CASEI, ACCENTI")

    def _geometry(self, geojson: dict[str, Any]) -> str:
        """A literal geometry in ``filter-crs``, made EPSG:4326 (lon/lat) like the data."""
        shape = f"ST_GeomFromGeoJSON({self.bind(json.dumps(geojson), 'text')})"
        if self.crs.epsg == 4326:
            flipped = f"ST_FlipCoordinates({shape})" if self.crs.lat_first else shape
            return f"ST_SetSRID({flipped}, 4326)"
        return f"ST_Transform(ST_SetSRID({shape}, {self.crs.epsg}), 4326)"

    def _spatial(self, node: Any) -> str:
        function = _SPATIAL[type(node)]
        lhs, rhs = self.expr(node.lhs), self.expr(node.rhs)
        if lhs[1] != "geometry" or rhs[1] != "geometry":
            raise _bad(f"{function.removeprefix('ST_').upper()} compares geometries")
        literal = _meets_literal(node)
        if literal is not None:
            self.meeting[id(node)] = rhs[0] if literal is node.rhs else lhs[0]
        return f"{function}({lhs[0]}, {rhs[0]})"

    def _range(self, node: Any) -> str:
        """A time range: ``[t, t]`` for an instant, ``[start, end]`` for an interval."""
        if isinstance(node, values.Interval):
            start = "'-infinity'::timestamptz" if _open(node.start) else self._instant(node.start)
            end = "'infinity'::timestamptz" if _open(node.end) else self._instant(node.end)
            return f"tstzrange({start}, coalesce({end}, 'infinity'), '[]')"
        instant = self._instant(node)
        return f"tstzrange({instant}, {instant}, '[]')"

    def _instant(self, node: Any) -> str:
        if isinstance(node, str) and node == "..":
            raise _bad("'..' opens an INTERVAL only")
        sql, kind = self.scalar(node)
        if kind != "date-time":
            raise _bad(f"T_ predicates take instants and intervals; {self._said(node)} is {kind}")
        return f"CAST({sql} AS timestamptz)"

    @staticmethod
    def _said(node: Any) -> str:
        return node.name if isinstance(node, ast.Attribute) else repr(node)[:40]


def _open(end: Any) -> bool:
    """An interval's open end: ``..``, nothing, or the text parser's stand-ins for ``..``."""
    if isinstance(end, datetime) and end.year in (1, 9999):
        return True
    return end is None or end == ".."
