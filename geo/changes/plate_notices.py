"""The Registration Organization's daily notices of new and changed plates (پلاک ثبتی).

A notice is CSV (columns ``unit,main,sub,wkt`` — or ``registration_unit,main_plate,
sub_plate,geometry`` — and an optional ``action``: ``upsert`` (default) or ``delete``) or
a GeoJSON FeatureCollection with those names as properties. Plate numbers may be typed
with Persian digits; geometries may be in any CRS of DESIGN.md section 5 (``crs``).

Applying a notice is all or nothing: every row is checked first, and one bad row refuses
the notice with a report of every bad row (``invalid_notice``). Then, in one transaction
serialized against other notices, each plate is compared with its current version: a new
number is inserted, a changed geometry or attributes closes the old version and opens a new
one, a ``delete`` closes it — each with a change event carrying before and after. A plate
that is the same as stored is left alone, so a notice applied twice changes nothing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import shape
from sqlalchemy import Connection, text

from geo.errors import GeoError, InvalidParameter, ValidationError
from geo.geodata.features.plot_input import checked_polygon
from geo.geodata.persian import is_digits, normalize_code
from geo.geodata.registry.formats import decode
from geo.platform.database import Database

__all__ = ["NoticeResult", "PlateRow", "apply_notice", "read_notice"]

_COLUMNS = {
    "unit": "unit",
    "registration_unit": "unit",
    "main": "main",
    "main_plate": "main",
    "sub": "sub",
    "sub_plate": "sub",
    "wkt": "wkt",
    "geometry": "wkt",
    "action": "action",
}
MAX_ROWS = 200_000


@dataclass
class PlateRow:
    line: int
    unit: str
    main: str
    sub: str
    action: str
    wkb: bytes | None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def number(self) -> str:
        return f"{self.unit}/{self.main}/{self.sub}"


@dataclass
class NoticeResult:
    name: str
    checksum: str
    rows: int
    counts: dict[str, int]

    def summary(self) -> str:
        c = self.counts
        return (
            f"notice {self.name}: {self.rows} rows; {c['insert']} new, {c['update']} changed,"
            f" {c['delete']} removed, {c['unchanged']} unchanged"
        )


def _records(raw: bytes) -> list[tuple[int, dict[str, Any], Any]]:
    """(line, properties, geometry-or-WKT) of each row of a CSV or GeoJSON notice."""
    head = raw.lstrip()[:1]
    if head == b"{":
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"the notice is not JSON: {exc}", code="invalid_notice") from None
        features = doc.get("features") if isinstance(doc, dict) else None
        if not isinstance(features, list):
            raise ValidationError("a GeoJSON notice is a FeatureCollection", code="invalid_notice")
        return [
            (i + 1, dict(f.get("properties") or {}), f.get("geometry"))
            for i, f in enumerate(features)
            if isinstance(f, dict)
        ]
    try:
        return _csv_records(decode(raw))
    except csv.Error as exc:  # e.g. a bare carriage return inside a field
        raise ValidationError(f"the notice is not CSV: {exc}", code="invalid_notice") from None


def _csv_records(text_body: str) -> list[tuple[int, dict[str, Any], Any]]:
    reader = csv.reader(io.StringIO(text_body, newline=""))
    header = [h.strip().lower() for h in next(reader, [])]
    names = [_COLUMNS.get(h, h) for h in header]
    missing = {"unit", "main", "sub", "wkt"} - set(names)
    if missing:
        raise ValidationError(
            f"the notice lacks the columns {', '.join(sorted(missing))}"
            " (unit,main,sub,wkt[,action])",
            code="invalid_notice",
        )
    out = []
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        row = dict(zip(names, values, strict=False))
        out.append((line, row, row.get("wkt")))
    return out


def read_notice(raw: bytes, epsg: int = 4326) -> list[PlateRow]:
    """Every row checked; ``ValidationError`` (code ``invalid_notice``) listing all bad rows."""
    records = _records(raw)
    if not records:
        raise ValidationError("the notice has no rows", code="invalid_notice")
    if len(records) > MAX_ROWS:
        raise ValidationError(
            f"the notice has {len(records)} rows; at most {MAX_ROWS}", code="invalid_notice"
        )
    rows: list[PlateRow] = []
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for line, props, geometry in records:
        props = {_COLUMNS.get(str(k).lower(), str(k)): v for k, v in props.items()}
        try:
            rows.append(_row(line, props, geometry, epsg))
        except GeoError as exc:
            problems.append({"line": line, "code": exc.code, "message": exc.message})
            continue
        number = rows[-1].number
        if number in seen:
            problems.append(
                {
                    "line": line,
                    "code": "duplicate_plate",
                    "message": f"plate {number} is already on line {seen[number]}",
                }
            )
        seen[number] = line
    if problems:
        raise ValidationError(
            f"{len(problems)} of {len(records)} rows are wrong; nothing was applied",
            code="invalid_notice",
            problems=problems[:500],
        )
    return rows


def _row(line: int, props: dict[str, Any], geometry: Any, epsg: int) -> PlateRow:
    numbers = {}
    for name in ("unit", "main", "sub"):
        value = normalize_code(str(props.get(name) or ""))
        if not is_digits(value):
            raise InvalidParameter(f"{name} must be a number, got {props.get(name)!r}", field=name)
        numbers[name] = value
    action = str(props.get("action") or "upsert").strip().lower()
    if action not in {"upsert", "delete"}:
        raise InvalidParameter("action is upsert or delete", field="action")
    wkb = None
    if action == "upsert":
        try:
            geom = (
                shape(geometry) if isinstance(geometry, dict) else shapely.from_wkt(str(geometry))
            )
        except (shapely.errors.GEOSException, ValueError, TypeError, AttributeError):
            raise InvalidParameter("the geometry cannot be read", code="invalid_geojson") from None
        if geom is None:
            raise InvalidParameter("the geometry is missing", code="empty_geometry")
        wkb = shapely.to_wkb(checked_polygon(geom, epsg), output_dimension=2)
    attrs = {
        k: v
        for k, v in props.items()
        if k not in {"unit", "main", "sub", "wkt", "action"} and v not in (None, "")
    }
    return PlateRow(line, numbers["unit"], numbers["main"], numbers["sub"], action, wkb, attrs)


# a plate's whole feature, exactly (every property the ``plates`` collection publishes, the
# version id, the geometry with 15 decimals: bit for bit, see migration 0028), so that a
# copy kept from the change files equals the service
_STATE = (
    "jsonb_build_object('id', {t}.id, 'registration_unit', {t}.registration_unit,"
    " 'main_plate', {t}.main_plate, 'sub_plate', {t}.sub_plate,"
    " 'area_m2', round(ST_Area({t}.geom::geography)::numeric, 2),"
    " 'source_notice', {t}.source_notice, 'valid_from', {t}.valid_from,"
    " 'valid_to', {t}.valid_to, 'attrs', {t}.attrs,"
    " 'geometry', ST_AsGeoJSON({t}.geom, 15)::jsonb)"
)


def apply_notice(
    db: Database, raw: bytes, name: str, *, epsg: int = 4326, by: str | None = None
) -> NoticeResult:
    """Check the notice, then apply it in one transaction (see the module's docstring)."""
    rows = read_notice(raw, epsg)
    checksum = hashlib.sha256(raw).hexdigest()
    cause = json.dumps({"notice": name, "checksum": checksum, "by": by}, ensure_ascii=False)
    with db.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('tagsim:plate-notices'))"))
        counts = _apply(conn, rows, f"{name} ({checksum[:12]})", cause)
    return NoticeResult(name, checksum, len(rows), counts)


def _apply(conn: Connection, rows: list[PlateRow], source: str, cause: str) -> dict[str, int]:
    conn.execute(
        text(
            "CREATE TEMP TABLE notice_row (unit text, main text, sub text, action text,"
            " geom geometry(MultiPolygon, 4326), attrs jsonb) ON COMMIT DROP"
        )
    )
    conn.execute(
        text(
            "INSERT INTO notice_row SELECT u, m, s, a, ST_GeomFromWKB(g, 4326), CAST(j AS jsonb)"
            " FROM unnest(CAST(:u AS text[]), CAST(:m AS text[]), CAST(:s AS text[]),"
            " CAST(:a AS text[]), CAST(:g AS bytea[]), CAST(:j AS text[])) AS r(u, m, s, a, g, j)"
        ),
        {
            "u": [r.unit for r in rows],
            "m": [r.main for r in rows],
            "s": [r.sub for r in rows],
            "a": [r.action for r in rows],
            "g": [r.wkb for r in rows],
            "j": [json.dumps(r.attrs, ensure_ascii=False) for r in rows],
        },
    )
    conn.execute(
        text(
            """
            CREATE TEMP TABLE notice_diff ON COMMIT DROP AS
            SELECT n.*, p.id AS old_id,
                   CASE WHEN n.action = 'delete' THEN
                          CASE WHEN p.id IS NULL THEN 'none' ELSE 'delete' END
                        WHEN p.id IS NULL THEN 'insert'
                        WHEN ST_AsEWKB(p.geom) = ST_AsEWKB(n.geom) AND p.attrs = n.attrs
                          THEN 'none'
                        ELSE 'update' END AS op
            FROM notice_row n LEFT JOIN plate p ON p.valid_to IS NULL
              AND p.registration_unit = n.unit AND p.main_plate = n.main AND p.sub_plate = n.sub
            """
        )
    )
    conn.execute(
        text(
            "UPDATE plate SET valid_to = now() WHERE id IN"
            " (SELECT old_id FROM notice_diff WHERE op IN ('update', 'delete'))"
        )
    )
    conn.execute(
        text(
            f"""
            WITH ins AS (
                INSERT INTO plate (registration_unit, main_plate, sub_plate, geom, attrs,
                                   source_notice)
                SELECT unit, main, sub, geom, attrs, :source FROM notice_diff
                WHERE op IN ('insert', 'update')
                RETURNING *)
            INSERT INTO change (entity_kind, entity_id, operation, cause, before, after)
            SELECT 'plate', d.unit || '/' || d.main || '/' || d.sub, d.op,
                   CAST(:cause AS jsonb),
                   (SELECT {_STATE.format(t="o")} FROM plate o WHERE o.id = d.old_id),
                   CASE WHEN ins.id IS NOT NULL THEN {_STATE.format(t="ins")} END
            FROM notice_diff d LEFT JOIN ins ON ins.registration_unit = d.unit
              AND ins.main_plate = d.main AND ins.sub_plate = d.sub
            WHERE d.op IN ('insert', 'update', 'delete')
            """
        ),
        {"source": source, "cause": cause},
    )
    found: dict[str, int] = dict(
        conn.execute(text("SELECT op, count(*) FROM notice_diff GROUP BY op")).all()  # type: ignore[arg-type]
    )
    return {
        "insert": found.get("insert", 0),
        "update": found.get("update", 0),
        "delete": found.get("delete", 0),
        "unchanged": found.get("none", 0),
    }
