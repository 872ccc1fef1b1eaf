"""`POST /plates/notices`: the Registration Organization's daily notice of new and changed
plates, applied all or nothing; applying the same notice again changes nothing."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request

from api.database import app_db
from api.endpoints import declare, form
from api.params import read_body
from geo.changes.plate_notices import apply_notice
from geo.errors import InvalidParameter, ValidationError
from geo.geodata.crs import SUPPORTED_EPSG
from geo.geodata.features.plot_input import epsg_of

bp = Blueprint("plates", __name__)

MAX_NOTICE = 64 * 1024 * 1024


@bp.post("/plates/notices")
@declare(
    service="plates",
    owner="plates",
    role="uploader",
    body=form(
        "file",
        crs={"type": "string", "enum": [f"EPSG:{code}" for code in SUPPORTED_EPSG]},
        name=str,
    ),
    max_body=MAX_NOTICE,
)
def post_notice() -> Response:
    """A notice as multipart ``file`` (CSV ``unit,main,sub,wkt[,action]`` or GeoJSON) or as
    the request body (``text/csv`` or GeoJSON); ``crs`` and ``name`` optional."""
    upload = request.files.get("file")
    if upload is not None:
        raw, name = upload.read(), upload.filename or "notice"
    else:
        raw, name = read_body(), "notice"
    if upload is None and not raw:
        raise InvalidParameter("send the notice as the multipart field 'file'", field="file")
    if not raw:
        raise ValidationError("the notice file is empty", code="invalid_notice", field="file")
    name = request.values.get("name") or name
    epsg = epsg_of(request.values.get("crs"))
    principal = g.get("principal")
    result = apply_notice(
        app_db(),
        raw,
        name,
        epsg=epsg,
        by=f"{principal.agency}:{principal.name}" if principal else None,
    )
    g.audit_rows = result.rows
    return jsonify(
        {"name": result.name, "checksum": result.checksum, "rows": result.rows, **result.counts}
    )
