"""An upload from bytes to a published parcel map: read, place, stage, validate, publish.

Each step reports progress on the ``upload`` row. A file that cannot be used ends
``failed`` with a stable code; a file with errors ends ``invalid`` with its report; a
valid dry run ends ``validated`` and waits for :func:`publish_upload`. Nothing published
changes until the publish transaction commits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import geopandas as gpd
from sqlalchemy import Connection, text

from geo.db import engine
from geo.errors import GeoError, NotFound, ValidationError
from geo.parcels.crs_choice import _km, choose_crs
from geo.parcels.errors import UploadRejected
from geo.parcels.profile import resolve_fields
from geo.parcels.publish import ensure_partitions, publish_stage
from geo.parcels.readers import read_upload
from geo.parcels.stage import stage_layer
from geo.parcels.validate import validate_stage
from geo.persian import normalize_code

__all__ = ["IngestOptions", "create_upload", "get_upload", "process_upload", "publish_upload"]

Progress = Callable[[float, str], None]
VILLAGE_RADIUS_KM = 5.0


@dataclass
class IngestOptions:
    village: str | None = None  # AGENCY:CODE
    crs: int | None = None
    dry_run: bool = False
    repair: bool = False
    mapping: dict[str, str] = field(default_factory=dict)


def create_upload(
    url: str, raw: bytes, file_name: str, options: IngestOptions, principal_id: int | None = None
) -> int:
    """Store the bytes and the options; the upload starts ``received``."""
    with engine(url).begin() as conn:
        upload_id = conn.execute(
            text(
                "INSERT INTO upload (principal_id, file_name, file_size, checksum, options)"
                " VALUES (:p, :n, :s, :c, :o) RETURNING id"
            ),
            {
                "p": principal_id,
                "n": file_name,
                "s": len(raw),
                "c": hashlib.sha256(raw).hexdigest(),
                "o": json.dumps(asdict(options)),
            },
        ).scalar_one()
        conn.execute(
            text("INSERT INTO upload_file (upload_id, content) VALUES (:u, :b)"),
            {"u": upload_id, "b": raw},
        )
    return upload_id


def get_upload(conn: Connection, upload_id: int) -> dict[str, Any]:
    row = (
        conn.execute(
            text(
                "SELECT id, file_name, file_size, checksum, village_agency, village_code,"
                " detected_crs, crs_source, status, progress, report, options, job_id, created_at,"
                " updated_at FROM upload WHERE id = :u"
            ),
            {"u": upload_id},
        )
        .mappings()
        .first()
    )
    if row is None:
        raise NotFound(f"no upload {upload_id}", code="unknown_upload")
    return dict(row)


def _set(url: str, upload_id: int, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    values = {
        k: json.dumps(v, ensure_ascii=False, default=str) if k == "report" else v
        for k, v in values.items()
    }
    with engine(url).begin() as conn:
        conn.execute(
            text(f"UPDATE upload SET {sets}, updated_at = now() WHERE id = :id"),
            {**values, "id": upload_id},
        )


def _village_point(conn: Connection, agency: str, code: str) -> tuple[float, float] | None:
    """The village's known location: its own point, else a crosswalk partner's."""
    from geo.registry.editions import edition_in_force

    try:
        edition = edition_in_force(conn, agency)
    except NotFound:
        raise UploadRejected(f"unknown agency {agency!r}", code="unknown_village") from None
    row = conn.execute(
        text(
            "SELECT level, ST_X(point), ST_Y(point) FROM division WHERE edition_id = :e"
            " AND code = :c"
        ),
        {"e": edition["id"], "c": code},
    ).first()
    if row is None:
        raise UploadRejected(
            f"{agency} has no village {code}", code="unknown_village", field="village"
        )
    if row[1] is not None:
        return row[1], row[2]
    if agency in {"moi", "sci", "hf"}:
        from geo.registry.lookup import partners

        for p in partners(conn, agency, code):
            point = conn.execute(
                text(
                    "SELECT ST_X(d.point), ST_Y(d.point) FROM division d JOIN edition e ON"
                    " e.id = d.edition_id WHERE e.agency = :a AND d.code = :c AND d.point IS"
                    " NOT NULL ORDER BY e.id DESC LIMIT 1"
                ),
                {"a": p["agency"], "c": p["code"]},
            ).first()
            if point:
                return point[0], point[1]
    return None


def _village_from_location(conn: Connection, lon: float, lat: float) -> tuple[str, str] | None:
    row = conn.execute(
        text("""
        SELECT e.agency, d.code, ST_Distance(d.point::geography,
               ST_SetSRID(ST_MakePoint(:x, :y), 4326)::geography) AS m
        FROM division d JOIN edition e ON e.id = d.edition_id
        WHERE d.level IN ('village', 'city') AND d.point IS NOT NULL
          AND d.point && ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 0.05)
        ORDER BY d.point <-> ST_SetSRID(ST_MakePoint(:x, :y), 4326) LIMIT 2"""),
        {"x": lon, "y": lat},
    ).all()
    if row and row[0].m < 3000 and (len(row) == 1 or row[1].m > 2 * row[0].m):
        return row[0].agency, row[0].code
    return None


def _parse_village(value: str) -> tuple[str, str]:
    agency, sep, code = value.partition(":")
    if not sep:
        raise UploadRejected(
            "village is AGENCY:CODE, e.g. hf:01001020020005",
            code="invalid_village",
            field="village",
        )
    return agency.strip().lower(), normalize_code(code)


def _centroid(frame: gpd.GeoDataFrame, epsg: int) -> tuple[float, float]:
    from geo.crs import transformer

    minx, miny, maxx, maxy = frame.total_bounds
    return transformer(epsg, 4326).transform((minx + maxx) / 2, (miny + maxy) / 2)


def _place(
    conn: Connection, layers: Any, fields: dict[str, str | None], options: IngestOptions
) -> tuple[Any, list[tuple[str, str]], list[str] | str]:
    """The CRS and the village(s): one given, one or many from the village field, or one
    found by location. Every village's parcels must lie near its known location."""
    frame = layers.parcels
    villages: list[tuple[str, str]] = []
    per_feature: list[str] | str = ""
    if options.village:
        villages = [_parse_village(options.village)]
    elif fields.get("village"):
        codes = frame[fields["village"]].map(
            lambda v: normalize_code(str(v)) if v is not None and str(v).strip() else ""
        )
        values = sorted(set(codes) - {""})
        if len(values) == 1 and "" not in set(codes):
            villages = [("hf", values[0])]
        elif values:
            if "" in set(codes):
                raise UploadRejected(
                    f"some features name no village in {fields['village']}",
                    code="unknown_village",
                    field="village",
                )
            villages = [("hf", v) for v in values]
            per_feature = list(codes)
    points = {v: _village_point(conn, *v) for v in villages}
    first = next((p for p in points.values() if p), None)
    if len(villages) > 1 and not _epsg_known(frame.crs, options.crs):
        sample = frame[
            frame[fields["village"]].map(lambda v: normalize_code(str(v)))
            == next(v[1] for v, p in points.items() if p)
        ]
        choice = choose_crs(sample.crs, tuple(sample.total_bounds), options.crs, first)
    else:
        choice = choose_crs(frame.crs, tuple(frame.total_bounds), options.crs, first)
    if not villages:
        lon, lat = _centroid(frame, choice.epsg)
        found = _village_from_location(conn, lon, lat)
        if found is None:
            raise UploadRejected(
                "no village given, none in the attributes, and none known "
                "within 3 km of the parcels: name it (--village)",
                code="unknown_village",
                field="village",
            )
        villages = [found]
        points = {found: _village_point(conn, *found)}
    if isinstance(per_feature, str):
        per_feature = villages[0][1]
        groups = {villages[0]: frame}
    else:
        groups = {v: frame[[c == v[1] for c in per_feature]] for v in villages}
    far = []
    for v, group in groups.items():
        point = points.get(v)
        if point is None:
            continue
        lon, lat = _centroid(group, choice.epsg)
        km = _km(lon, lat, *point)
        if km > VILLAGE_RADIUS_KM:
            far.append(f"{v[0]}:{v[1]} ({km:.1f} km)")
    if far:
        raise UploadRejected(
            "the parcels lie far from village "
            + ", ".join(far[:10])
            + ": wrong village or wrong CRS",
            code="village_mismatch",
            field="village",
        )
    return choice, villages, per_feature


def _epsg_known(file_crs: Any, override: int | None) -> bool:
    from geo.parcels.crs_choice import _epsg_of

    return bool(override or _epsg_of(file_crs))


def _zone_villages(
    zone: Any, fields: dict[str, str | None], villages: list[tuple[str, str]]
) -> list[str] | str | None:
    """Each zone feature's village: the single village, or the zone's village field."""
    if len(villages) == 1:
        return villages[0][1]
    if fields.get("village"):
        return [normalize_code(str(v)) for v in zone[fields["village"]]]
    return None


def process_upload(url: str, upload_id: int, progress: Progress | None = None) -> dict[str, Any]:
    """Read, place, stage and validate an upload; publish it too unless a dry run."""
    say = progress or (lambda _f, _m: None)
    with engine(url).connect() as conn:
        up = get_upload(conn, upload_id)
        raw = conn.execute(
            text("SELECT content FROM upload_file WHERE upload_id = :u"), {"u": upload_id}
        ).scalar_one()
    options = IngestOptions(**up["options"])
    _set(url, upload_id, status="validating", progress=0.05)
    try:
        say(0.1, "reading the file")
        layers = read_upload(bytes(raw), up["file_name"])
        fields = resolve_fields(layers.parcels.columns, options.mapping)
        with engine(url).connect() as conn:
            placement = _place(conn, layers, fields, options)
        choice, villages, per_feature = placement
        say(
            0.3,
            f"staging {len(layers.parcels)} features of {len(villages)} villages "
            f"in EPSG:{choice.epsg}",
        )
        with engine(url).begin() as conn:
            conn.execute(text("DELETE FROM parcel_stage WHERE upload_id = :u"), {"u": upload_id})
            staged = stage_layer(
                conn, upload_id, "parcels", layers.parcels, choice.epsg, fields, per_feature
            )
            if layers.zone is not None:
                zone_fields = resolve_fields(
                    layers.zone.columns, {"parcel_no": str(layers.zone.columns[0])}
                )
                zone_villages = _zone_villages(layers.zone, zone_fields, villages)
                if zone_villages is not None:
                    zone_crs = choose_crs(
                        layers.zone.crs,
                        tuple(layers.zone.total_bounds),
                        options.crs or choice.epsg,
                        None,
                    )
                    stage_layer(
                        conn,
                        upload_id,
                        "zone",
                        layers.zone,
                        zone_crs.epsg,
                        zone_fields,
                        zone_villages,
                    )
            conn.execute(text("ANALYZE parcel_stage"))  # good plans for the checks below
            say(0.6, "validating")
            report = validate_stage(
                conn, upload_id, repair=options.repair, z_dropped=staged["z_dropped"]
            )
        agency = villages[0][0]
        single = villages[0][1] if len(villages) == 1 else None
        report.update(
            {
                "format": layers.format,
                "encoding": layers.encoding,
                "crs": choice.as_dict(),
                "fields": fields,
                "village": {"agency": agency, "code": single} if single else None,
                "villages": len(villages),
            }
        )
        status = "validated" if report["valid"] else "invalid"
        _set(
            url,
            upload_id,
            status=status,
            progress=1.0 if options.dry_run or not report["valid"] else 0.7,
            report=report,
            village_agency=agency,
            village_code=single,
            detected_crs=f"EPSG:{choice.epsg}",
            crs_source=choice.source,
        )
        say(
            0.7,
            f"{status}: {report['summary']['errors']} errors, "
            f"{report['summary']['warnings']} warnings",
        )
    except GeoError as exc:
        _set(
            url,
            upload_id,
            status="failed",
            progress=1.0,
            report={
                "error": exc.code,
                "message": exc.message,
                **{k: v for k, v in exc.details.items() if k != "report"},
            },
        )
        raise
    except Exception as exc:
        _set(
            url,
            upload_id,
            status="failed",
            progress=1.0,
            report={"error": "internal_error", "message": type(exc).__name__},
        )
        raise
    if report["valid"] and not options.dry_run:
        return publish_upload(url, upload_id, progress=say)
    return get_upload_state(url, upload_id)


def get_upload_state(url: str, upload_id: int) -> dict[str, Any]:
    with engine(url).connect() as conn:
        return get_upload(conn, upload_id)


def publish_upload(url: str, upload_id: int, progress: Progress | None = None) -> dict[str, Any]:
    """Validate the staged upload again and publish it in one transaction."""
    say = progress or (lambda _f, _m: None)
    with engine(url).connect() as conn:
        up = get_upload(conn, upload_id)
    if up["status"] == "published":
        raise ValidationError(f"upload {upload_id} is already published", code="already_published")
    if up["status"] not in {"validated", "publishing"}:  # publishing: claimed by the API
        raise ValidationError(
            f"upload {upload_id} is {up['status']}; only a validated upload can be published",
            code="not_validated",
        )
    _set(url, upload_id, status="publishing", progress=0.8)
    say(0.8, "publishing")
    try:
        with engine(url).begin() as conn:
            ensure_partitions(conn, upload_id, up["village_agency"])
        with engine(url).begin() as conn:
            report = (
                up["report"]
                if up["report"].get("summary")
                else validate_stage(conn, upload_id, repair=up["options"].get("repair", False))
            )
            # The staged rows are the ones validated (nothing changes them before publish),
            # so the report stands; a stage emptied since then is refused.
            staged = conn.execute(
                text(
                    "SELECT count(*) FROM parcel_stage WHERE upload_id = :u AND layer = 'parcels'"
                ),
                {"u": upload_id},
            ).scalar_one()
            if staged != report["summary"]["features"]:
                raise ValidationError(
                    "the staged features are gone; upload the file again", code="stage_missing"
                )
            if not report["valid"]:
                raise ValidationError(
                    "the upload no longer validates",
                    code="invalid_upload",
                    report=report["summary"],
                )
            changes = publish_stage(
                conn,
                upload_id,
                up["village_agency"],
                {"upload": upload_id, "file": up["file_name"]},
            )
            conn.execute(
                text(
                    "UPDATE upload SET status = 'published', progress = 1, updated_at = now(),"
                    " report = report || jsonb_build_object('published', CAST(:c AS jsonb))"
                    " WHERE id = :u"
                ),
                {"u": upload_id, "c": json.dumps(changes)},
            )
    except Exception:
        _set(url, upload_id, status="validated", progress=0.7)
        raise
    say(1.0, f"published: {changes}")
    return get_upload_state(url, upload_id)
