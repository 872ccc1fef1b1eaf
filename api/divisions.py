"""Divisions: resolve a code, search names, find by point, history, children, batch resolve."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Blueprint, Response, jsonify, request

from api.database import get_conn
from api.params import agency_arg, date_arg, float_arg, int_arg, json_body, str_field
from geo.dates import parse_date
from geo.errors import InvalidParameter, ValidationError
from geo.registry.lookup import (
    batch_resolve,
    batch_resolve_names,
    children,
    clean_code,
    history,
    resolve,
)
from geo.registry.search import at_point, search

bp = Blueprint("divisions", __name__)
MAX_BATCH = 200_000


@bp.get("/divisions/search")
def search_divisions() -> Response:
    return jsonify(
        search(
            get_conn(),
            request.args.get("q", ""),
            agency=agency_arg(request.args["agency"]) if request.args.get("agency") else None,
            level=request.args.get("level") or None,
            within=request.args.get("within") or None,
            as_of=date_arg("as_of"),
            limit=int_arg("limit", 20, 1, 200),
        )
    )


@bp.get("/divisions/at")
def divisions_at() -> Response:
    agency = request.args.get("agency")
    return jsonify(
        at_point(
            get_conn(),
            float_arg("lon"),
            float_arg("lat"),
            agency=agency_arg(agency) if agency else None,
            as_of=date_arg("as_of"),
        )
    )


@bp.get("/divisions/<agency>/<code>")
def get_division(agency: str, code: str) -> Response:
    return jsonify(
        resolve(
            get_conn(),
            agency_arg(agency),
            code,
            as_of=date_arg("as_of"),
            children_limit=int_arg("children_limit", 50, 1, 1000),
            children_offset=int_arg("children_offset", 0, 0, 10**9),
        )
    )


@bp.get("/divisions/<agency>/<code>/children")
def get_children(agency: str, code: str) -> Response:

    return jsonify(
        children(
            get_conn(),
            agency_arg(agency),
            clean_code(code),
            as_of=date_arg("as_of"),
            limit=int_arg("limit", 100, 1, 1000),
            offset=int_arg("offset", 0, 0, 10**9),
        )
    )


@bp.get("/divisions/<agency>/<code>/history")
def get_history(agency: str, code: str) -> Response:
    return jsonify(history(get_conn(), agency_arg(agency), code))


def _batch_from_request() -> tuple[str, str, list[str], dict[str, Any]]:
    """(agency, "codes" or "names", the items, options) from JSON or a CSV upload."""
    upload = request.files.get("file")
    if upload is not None:
        text = upload.read().decode("utf-8-sig", errors="replace")
        rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0].strip()]
        kind = "codes"
        if rows and rows[0][0].strip().lower() in {"code", "کد", "name", "نام"}:
            kind = "names" if rows[0][0].strip().lower() in {"name", "نام"} else "codes"
            rows = rows[1:]
        items = [r[0] for r in rows]
        options = {k: request.form.get(k) for k in ("level", "within", "as_of")}
        agency = request.form.get("agency", "")
    else:
        body = json_body()
        kind = "names" if "names" in body else "codes"
        items = body.get(kind)
        agency = str_field(body, "agency") or ""
        options = {k: str_field(body, k) for k in ("level", "within", "as_of")}
        if not isinstance(items, list) or not all(isinstance(c, str | int) for c in items):
            raise InvalidParameter(f"{kind} must be a list of strings", field=kind)
    if not items:
        raise InvalidParameter(f"no {kind} given", field=kind)
    if len(items) > MAX_BATCH:
        raise InvalidParameter(
            f"at most {MAX_BATCH} {kind} in one request", field=kind, code="too_many_items"
        )
    return agency_arg(agency), kind, [str(c) for c in items], options


@bp.post("/resolve")
def resolve_batch() -> Response:
    """Many codes (or names) of one agency at once.

    JSON ``{"agency", "codes": [...]}`` or ``{"agency", "names": [...], "level"?,
    "within"?}``, ``as_of`` optional; or a CSV file (first column, header ``code`` or
    ``name``) with form fields ``agency``, ``level``, ``within``, ``as_of``.
    """
    agency, kind, items, options = _batch_from_request()
    as_of = None
    if options.get("as_of"):
        try:
            as_of = parse_date(str(options["as_of"]))
        except ValidationError as exc:
            raise InvalidParameter(exc.message, field="as_of") from None
    if kind == "names":
        return jsonify(
            batch_resolve_names(
                get_conn(),
                agency,
                items,
                level=options.get("level") or None,
                within=options.get("within") or None,
                as_of=as_of,
            )
        )
    return jsonify(batch_resolve(get_conn(), agency, items, as_of=as_of))
