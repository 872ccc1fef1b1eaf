"""Editions: import an agency's list (multipart), list editions, their events."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import text

from api.database import get_conn, url
from api.params import agency_arg, date_arg, int_arg
from geo.errors import InvalidParameter
from geo.registry import import_edition
from geo.registry.editions import get_edition, list_editions

bp = Blueprint("editions", __name__)


@bp.post("/editions")
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
        url(),
        agency_arg(request.form["agency"]),
        request.form["edition"],
        upload.read(),
        source_name=upload.filename,
        published_on=date_arg("published"),
        fmt=request.form.get("format") or None,
        valid_only=request.form.get("valid_only", "").lower() in {"1", "true", "yes"},
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
def get_editions() -> Response:
    agency = request.args.get("agency")
    return jsonify({"editions": list_editions(get_conn(), agency_arg(agency) if agency else None)})


@bp.get("/editions/<int:edition_id>")
def get_one_edition(edition_id: int) -> Response:
    return jsonify(get_edition(get_conn(), edition_id))


@bp.get("/editions/<int:edition_id>/events")
def get_events(edition_id: int) -> Response:
    get_edition(get_conn(), edition_id)  # 404 when unknown
    kind = request.args.get("kind") or None
    limit, offset = int_arg("limit", 100, 1, 5000), int_arg("offset", 0, 0, 10**9)
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
