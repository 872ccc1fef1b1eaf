"""Divisions: resolve a code, search names, find by point, history, children, batch resolve."""

from __future__ import annotations

import csv
import io

from flask import Blueprint, Response, jsonify, request

from api.database import get_conn
from api.params import agency_arg, date_arg, float_arg, int_arg
from geo.errors import InvalidParameter
from geo.registry.lookup import batch_resolve, children, history, resolve
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
    from geo.registry.lookup import clean_code

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


def _batch_from_request() -> tuple[str, list[str]]:
    upload = request.files.get("file")
    if upload is not None:
        text = upload.read().decode("utf-8-sig", errors="replace")
        rows = list(csv.reader(io.StringIO(text)))
        if rows and rows[0] and rows[0][0].strip().lower() in {"code", "کد"}:
            rows = rows[1:]
        codes = [r[0] for r in rows if r and r[0].strip()]
        agency = request.form.get("agency", "")
    else:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise InvalidParameter(
                'send JSON {"agency": ..., "codes": [...]} or a CSV file', field="body"
            )
        codes = body.get("codes")
        agency = body.get("agency", "")
        if not isinstance(codes, list) or not all(isinstance(c, str | int) for c in codes):
            raise InvalidParameter("codes must be a list of strings", field="codes")
    if not codes:
        raise InvalidParameter("no codes given", field="codes")
    if len(codes) > MAX_BATCH:
        raise InvalidParameter(
            f"at most {MAX_BATCH} codes in one request", field="codes", code="too_many_items"
        )
    return agency_arg(agency), [str(c) for c in codes]


@bp.post("/resolve")
def resolve_batch() -> Response:
    """Many codes of one agency at once: JSON ``{"agency", "codes", "as_of"?}`` or a CSV file."""
    agency, codes = _batch_from_request()
    body = request.get_json(silent=True) or {}
    as_of = date_arg("as_of")
    if as_of is None and isinstance(body, dict) and body.get("as_of"):
        from api.params import parse_date

        as_of = parse_date(str(body["as_of"]))
    return jsonify(batch_resolve(get_conn(), agency, codes, as_of=as_of))
