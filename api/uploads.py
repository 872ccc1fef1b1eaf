"""Uploads of parcel maps: POST a file (202), follow its progress and report, publish it."""

from __future__ import annotations

import json
import re

from flask import Blueprint, Response, g, jsonify, request
from sqlalchemy import text

import geo.geodata.parcels.jobs  # noqa: F401  (registers the ingest jobs)
from api.database import get_conn
from api.endpoints import declare, form, json_object
from api.parameters import FLAG, UNIT_REF_SCHEMA
from api.params import form_flag, json_body
from geo.access.ownership import require_visible_upload
from geo.errors import InvalidParameter, ValidationError
from geo.geodata.parcels.ingest import IngestOptions, attach_job, get_upload, record_upload
from geo.geodata.persian import is_digits
from geo.geodata.registry.references import parse_unit_ref
from geo.platform.jobs import enqueue

bp = Blueprint("uploads", __name__)


@bp.post("/uploads")
@declare(
    service="uploads",
    owner="parcels",
    role="uploader",
    success=202,
    body=form(
        "file",
        village=UNIT_REF_SCHEMA,
        crs={"type": "string", "pattern": r"^((EPSG|epsg):)?[0-9]{1,6}$"},
        dry_run=FLAG,
        repair=FLAG,
        mapping={"type": "string", "pattern": r"^\s*\{[\s\S]*\}\s*$"},
        confirm_removals=FLAG,
    ),
)
def post_upload() -> tuple[Response, int]:
    """Multipart ``file`` with optional ``village`` (AGENCY:CODE), ``crs`` (EPSG code),
    ``dry_run``, ``repair`` and ``mapping`` (JSON: role → field)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidParameter("send the file as the multipart field 'file'", field="file")
    crs = request.form.get("crs", "").upper().removeprefix("EPSG:")
    if crs and not is_digits(crs):
        raise InvalidParameter("crs is an EPSG code, e.g. EPSG:32639", field="crs")
    raw_mapping = request.form.get("mapping") or "{}"
    if not re.fullmatch(r"\s*\{[\s\S]*\}\s*", raw_mapping):
        raise InvalidParameter("mapping is a JSON object", field="mapping")
    try:  # written as an object: what is inside must be JSON (422 otherwise)
        mapping = json.loads(raw_mapping)
    except ValueError:
        raise ValidationError(
            "mapping is not JSON", code="invalid_mapping", field="mapping"
        ) from None
    village = request.form.get("village") or None
    if village is not None:
        village = str(parse_unit_ref(village, "village"))  # refused now, not in the job
    options = IngestOptions(
        village=village,
        crs=int(crs) if crs else None,
        dry_run=form_flag("dry_run"),
        repair=form_flag("repair"),
        mapping=mapping,
        confirm_removals=form_flag("confirm_removals"),
    )
    principal = g.get("principal")
    # One unit of work: the upload's row, its file, its job and the job's id commit together
    # with the request, or not at all. The file is Werkzeug's local spool of the body (parsed
    # when request.files was read), so no client I/O happens inside the transaction.
    conn = get_conn()
    upload_id = record_upload(
        conn, upload.stream, upload.filename, options, principal.id if principal else None
    )
    job_id = enqueue(conn, "tagsim:parcel_ingest", kind="parcel_ingest", upload_id=upload_id)
    attach_job(conn, upload_id, job_id)
    return jsonify(
        {
            "upload_id": upload_id,
            "job_id": job_id,
            "status": "received",
            "href": f"/uploads/{upload_id}",
        }
    ), 202


@bp.get("/uploads/<int:upload_id>")
@declare(service="uploads", role="uploader")
def get_one_upload(upload_id: int) -> Response:
    """An upload's status, progress and validation report (its agency's keys only)."""
    require_visible_upload(get_conn(), upload_id, g.get("principal"))
    return jsonify(get_upload(get_conn(), upload_id))


@bp.get("/uploads/<int:upload_id>/features")
@declare(service="uploads", role="uploader", media="application/geo+json")
def get_finding_features(upload_id: int) -> Response:
    """The staged parcels that have a finding (error or warning), as GeoJSON, while the
    upload waits to be published: what the report talks about, on a map."""
    conn = get_conn()
    require_visible_upload(conn, upload_id, g.get("principal"))
    report = get_upload(conn, upload_id)["report"] or {}
    worst: dict[str, str] = {}
    codes: dict[str, list[str]] = {}
    for f in report.get("findings", []):
        key = f.get("parcel_no") or (f"#{f['feature']}" if f.get("feature") is not None else None)
        if key is None:
            continue
        codes.setdefault(key, []).append(f["code"])
        if f.get("level") == "error" or key not in worst:
            worst[key] = f.get("level", "warning")
    rows = conn.execute(
        text(
            "SELECT coalesce(parcel_no, '#' || feature) AS key, parcel_no,"
            " ST_AsGeoJSON(geom, 7) AS g FROM parcel_stage WHERE upload_id = :u"
            " AND layer = 'parcels' AND geom IS NOT NULL"
            " AND (parcel_no = ANY(:k) OR '#' || feature = ANY(:k))"
        ),
        {"u": upload_id, "k": list(codes)},
    ).all()
    features = [
        {
            "type": "Feature",
            "geometry": json.loads(g),
            "properties": {"parcel_no": number, "level": worst[key], "codes": codes[key]},
        }
        for key, number, g in rows
        if key in codes
    ]
    collection = {"type": "FeatureCollection", "features": features}
    return Response(json.dumps(collection, ensure_ascii=False), mimetype="application/geo+json")


@bp.post("/uploads/<int:upload_id>/publish")
@declare(
    service="uploads",
    role="uploader",
    success=202,
    owner="parcels",
    body=json_object(body_required=False, confirm_removals=bool),
)
def publish(upload_id: int) -> tuple[Response, int]:
    """Publish a validated dry run (as a job); 202. ``{"confirm_removals": true}`` lets it
    remove more than 20% of a village's parcels (refused otherwise: ``mass_removal``)."""
    conn = get_conn()  # the claim and the job commit together, with the request
    require_visible_upload(conn, upload_id, g.get("principal"))
    confirm = json_body(required=False).get("confirm_removals", False)
    if not isinstance(confirm, bool):
        raise InvalidParameter("confirm_removals is true or false", field="confirm_removals")
    if confirm:
        conn.execute(
            text(
                "UPDATE upload SET options = options || '{\"confirm_removals\": true}'"
                " WHERE id = :u"
            ),
            {"u": upload_id},
        )
    state = get_upload(conn, upload_id)
    claimed = conn.execute(  # claim it: a second publish of it is refused
        text(
            "UPDATE upload SET status = 'publishing', updated_at = now()"
            " WHERE id = :u AND status = 'validated' RETURNING id"
        ),
        {"u": upload_id},
    ).first()
    if claimed is None:
        from geo.errors import Conflict

        raise Conflict(
            f"upload {upload_id} is {state['status']}; only a validated upload can be published",
            code="not_validated",
        )
    job_id = enqueue(conn, "tagsim:parcel_publish", kind="parcel_publish", upload_id=upload_id)
    attach_job(conn, upload_id, job_id)
    return jsonify({"upload_id": upload_id, "job_id": job_id, "status": "publishing"}), 202
