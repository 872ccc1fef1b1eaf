"""Editions: import an agency's list (multipart), list editions, their events."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import text

from api.database import app_db, get_conn
from api.endpoints import Agency, Date, Int, Text, arg, declare, form
from api.parameters import AGENCY_SCHEMA, FLAG
from api.params import form_flag
from geo.errors import InvalidParameter
from geo.geodata.registry import import_edition
from geo.geodata.registry.editions import get_edition, list_editions
from geo.geodata.registry.references import clean_agency

bp = Blueprint("editions", __name__)


@bp.post("/editions")
@declare(
    service="editions",
    role="admin",
    success=201,
    responses={"200": "the same file was imported before: its edition"},
    body=form(
        "file",
        "agency",
        "edition",
        agency=AGENCY_SCHEMA,
        edition={"type": "string", "minLength": 1},
        published=Date("published").schema(),
        format=str,
        valid_only=FLAG,
    ),
)
def post_edition() -> tuple[Response, int]:
    """Import a list: form fields ``agency``, ``edition``, optional ``published``,
    ``format``, ``valid_only``; the file in ``file``."""
    upload = request.files.get("file")
    if upload is None:
        raise InvalidParameter("send the list as the multipart field 'file'", field="file")
    for name in ("agency", "edition"):
        if not request.form.get(name):
            raise InvalidParameter(f"{name} is required", field=name)
    result = import_edition(
        app_db(),
        clean_agency(request.form["agency"]),
        request.form["edition"],
        upload.read(),
        source_name=upload.filename,
        published_on=Date("published").parse(request.form.get("published")),
        fmt=request.form.get("format") or None,
        valid_only=form_flag("valid_only"),
    )
    body = {
        "edition_id": result.edition_id,
        "agency": result.agency,
        "label": result.label,
        "format": result.format,
        "created": result.created,
        "counts": result.counts,
        "events": result.events,
        "report": result.report,
        "summary": result.summary(),
    }
    return jsonify(body), 201 if result.created else 200


@bp.get("/editions")
@declare(service="divisions", replica=True, query=[Agency("agency")])
def get_editions() -> Response:
    """Every agency's editions (or one agency's), newest first."""
    return jsonify({"editions": list_editions(get_conn(), arg("agency"))})


@bp.get("/editions/<int:edition_id>")
@declare(service="divisions", replica=True)
def get_one_edition(edition_id: int) -> Response:
    return jsonify(get_edition(get_conn(), edition_id))


@bp.get("/editions/<int:edition_id>/events")
@declare(
    service="divisions",
    replica=True,
    query=[Text("kind"), Int("limit", default=100, low=1, high=5000), Int("offset", default=0)],
)
def get_events(edition_id: int) -> Response:
    """The events that made this edition from the one before."""
    get_edition(get_conn(), edition_id)  # 404 when unknown
    kind = arg("kind")
    limit, offset = arg("limit"), arg("offset")
    params = {"e": edition_id, "k": kind, "l": limit, "o": offset}
    where = "to_edition_id = :e AND (CAST(:k AS text) IS NULL OR kind = :k)"
    total = (
        get_conn()
        .execute(text(f"SELECT count(*) FROM division_event WHERE {where}"), params)
        .scalar_one()
    )
    rows = (
        get_conn()
        .execute(
            text(
                f"SELECT id, kind, codes_before, codes_after, detail, from_edition_id"
                f" FROM division_event WHERE {where} ORDER BY id LIMIT :l OFFSET :o"
            ),
            params,
        )
        .mappings()
        .all()
    )
    return jsonify(
        {
            "edition_id": edition_id,
            "total": total,
            "offset": offset,
            "limit": limit,
            "events": [dict(r) for r in rows],
        }
    )
