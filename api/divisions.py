"""Divisions: resolve a code, search names, find by point, history, children, batch resolve."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import Blueprint, Response, jsonify, request, url_for
from werkzeug.http import http_date

from api.database import get_conn
from api.endpoints import Agency, Code, Date, Int, Num, Text, arg, declare, json_object
from api.parameters import AGENCY_SCHEMA, UNIT_REF_PATTERN, RequiredAgency, RequiredText
from api.params import json_body, str_field
from geo.errors import InvalidParameter
from geo.geodata.registry.lineage import follow_back, follow_forward
from geo.geodata.registry.lookup import (
    batch_resolve,
    batch_resolve_names,
    children,
    history,
    resolve,
)
from geo.geodata.registry.projection import project, project_many
from geo.geodata.registry.references import clean_agency, clean_code
from geo.geodata.registry.search import at_point, search
from geo.models.registry import LEVELS

bp = Blueprint("divisions", __name__)
MAX_BATCH = 100_000  # as the README promises


@bp.get("/divisions/search")
@declare(
    service="divisions",
    replica=True,
    query=[
        # (at least one letter or digit: punctuation alone folds to nothing)
        RequiredText(
            "q",
            max_length=200,
            pattern=r"[0-9A-Za-z\u0621-\u063F\u0641-\u064A\u066E-\u06D3\u06F0-\u06F9]",
        ),
        Agency("agency"),
        Text("level", enum=LEVELS),
        Text("within", pattern=UNIT_REF_PATTERN),
        Date("as_of"),
        Int("limit", default=20, low=1, high=200),
    ],
)
def search_divisions() -> Response:
    """Units whose name (or code) is like ``q``, best first."""
    return jsonify(
        search(
            get_conn(),
            arg("q") or "",
            agency=arg("agency"),
            level=arg("level"),
            within=arg("within"),
            as_of=arg("as_of"),
            limit=arg("limit"),
        )
    )


@bp.get("/divisions/at")
@declare(
    service="divisions",
    replica=True,
    query=[
        Num("lon", low=-180, high=180),
        Num("lat", low=-90, high=90),
        Agency("agency"),
        Date("as_of"),
    ],
)
def divisions_at() -> Response:
    """The units that contain a point."""
    return jsonify(
        at_point(get_conn(), arg("lon"), arg("lat"), agency=arg("agency"), as_of=arg("as_of"))
    )


@bp.get("/divisions/<agency>/<code>")
@declare(
    service="divisions",
    replica=True,
    path=[Agency("agency")],
    query=[
        Date(
            "at", "the unit as it was on this date (Jalali or ISO; the newest edition when absent)"
        ),
        Date("as_of", "the same as at (its older name)"),
        Int("children_limit", default=50, low=1, high=1000),
        Int("children_offset", default=0),
    ],
)
def get_division(agency: str, code: str) -> Response:
    """A unit by any agency's code, as it was on ``at``: parents, children, partners. A
    code its agency replaced before then is 410 ``unit_gone`` with its successors and the
    events between; ``Memento-Datetime`` is when the answering edition came into force."""
    unit = resolve(
        get_conn(),
        clean_agency(agency),
        code,
        as_of=arg("at") or arg("as_of"),
        children_limit=arg("children_limit"),
        children_offset=arg("children_offset"),
    )
    response = jsonify(unit)
    in_force = unit["edition"].get("published_on")
    if in_force is not None:
        response.headers["Memento-Datetime"] = http_date(in_force)
    timemap = url_for("divisions.get_history", agency=unit["agency"], code=unit["code"])
    response.headers["Link"] = f'<{timemap}>; rel="timemap"'
    return response


@bp.get("/divisions/<agency>/<code>/successors")
@declare(
    service="divisions",
    replica=True,
    path=[Agency("agency"), Code("code")],
    query=[
        Date("since", "start from the edition in force then (default: the first holding it)"),
        Date("until", "follow to the edition in force then (default: the newest)"),
    ],
)
def get_successors(agency: str, code: str) -> Response:
    """What a code became: from the edition in force on ``since`` to the one in force on
    ``until``, the units it led to, the change type (1:1, split, merge, n:m, abolished)
    and the events on the way."""
    return jsonify(
        follow_forward(
            get_conn(),
            clean_agency(agency),
            clean_code(code),
            since=arg("since"),
            until=arg("until"),
        )
    )


@bp.get("/divisions/<agency>/<code>/predecessors")
@declare(
    service="divisions",
    replica=True,
    path=[Agency("agency"), Code("code")],
    query=[
        Date("at", "start from the edition in force then (default: the newest holding it)"),
        Date("since", "follow back to the edition in force then (default: the first)"),
    ],
)
def get_predecessors(agency: str, code: str) -> Response:
    """Where a code came from: from the edition in force on ``at`` back to the one in force
    on ``since``, the units it came from, the change type and the events on the way."""
    return jsonify(
        follow_back(
            get_conn(), clean_agency(agency), clean_code(code), at=arg("at"), since=arg("since")
        )
    )


@bp.get("/divisions/<agency>/<code>/children")
@declare(
    service="divisions",
    replica=True,
    path=[Agency("agency"), Code("code")],
    query=[Date("as_of"), Int("limit", default=100, low=1, high=1000), Int("offset", default=0)],
)
def get_children(agency: str, code: str) -> Response:
    """A unit's children, a page at a time."""
    return jsonify(
        children(
            get_conn(),
            clean_agency(agency),
            clean_code(code),
            as_of=arg("as_of"),
            limit=arg("limit"),
            offset=arg("offset"),
        )
    )


@bp.get("/divisions/<agency>/<code>/history")
@declare(service="divisions", replica=True, path=[Agency("agency"), Code("code")])
def get_history(agency: str, code: str) -> Response:
    """A code across the agency's editions."""
    return jsonify(history(get_conn(), clean_agency(agency), code))


@bp.get("/divisions/<agency>/<code>/projected")
@declare(
    service="divisions",
    replica=True,
    path=[Agency("agency"), Code("code")],
    query=[
        RequiredAgency("to_agency", "the agency whose units are wanted (the same: its events)"),
        Date("to_date", "the units in force then (default: the newest edition)"),
        Date("at", "the code as it was then (default: the newest edition holding it)"),
    ],
)
def get_projected(agency: str, code: str) -> Response:
    """A code as another agency's units at a date: the source agency's events to the
    crosswalk run's edition, the run's links, the target agency's events to the date; each
    unit with the way it was reached and a weight only where it is certain."""
    return jsonify(
        project(
            get_conn(),
            clean_agency(agency),
            clean_code(code),
            arg("to_agency"),
            at=arg("at"),
            to_date=arg("to_date"),
        )
    )


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
        options = {
            k: request.form.get(k) for k in ("level", "within", "as_of", "to_agency", "to_date")
        }
        agency = request.form.get("agency", "")
    else:
        body = json_body()
        kind = "names" if "names" in body else "codes"
        given = body.get(kind)
        agency = str_field(body, "agency") or ""
        options = {
            k: str_field(body, k) for k in ("level", "within", "as_of", "to_agency", "to_date")
        }
        if not isinstance(given, list) or not all(isinstance(c, str | int) for c in given):
            raise InvalidParameter(f"{kind} must be a list of strings", field=kind)
        items = [str(c) for c in given]
    if not items:
        raise InvalidParameter(f"no {kind} given", field=kind)
    if len(items) > MAX_BATCH:
        raise InvalidParameter(
            f"at most {MAX_BATCH} {kind} in one request", field=kind, code="too_many_items"
        )
    return clean_agency(agency), kind, [str(c) for c in items], options


@bp.post("/resolve")
@declare(
    service="divisions",
    replica=True,
    body=json_object(
        "agency",
        "codes",
        agency=AGENCY_SCHEMA,
        codes={
            "type": "array",
            "items": {"type": "string"},
            "minItems": 1,
            "maxItems": MAX_BATCH,
        },
        as_of=Date("as_of").schema(),
        to_agency=AGENCY_SCHEMA,
        to_date=Date("to_date").schema(),
    ),
    max_body=16 * 1024 * 1024,  # MAX_BATCH codes as JSON or CSV, with room to spare
)
def resolve_batch() -> Response:
    """Many codes (or names) of one agency at once.

    JSON ``{"agency", "codes": [...]}`` or ``{"agency", "names": [...], "level"?,
    "within"?}``, ``as_of`` optional; or a CSV file (first column, header ``code`` or
    ``name``) with form fields ``agency``, ``level``, ``within``, ``as_of``. With
    ``to_agency`` (and ``to_date``), each code found is also projected: ``projected``
    lists the target agency's units then (see ``/divisions/{agency}/{code}/projected``).
    """
    agency, kind, items, options = _batch_from_request()
    as_of = Date("as_of").parse(str(options["as_of"])) if options.get("as_of") else None
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
    to_agency = options.get("to_agency")
    if not to_agency:
        return jsonify(batch_resolve(get_conn(), agency, items, as_of=as_of))
    # projected: each code found, as the target agency's units in force on to_date
    to_date = Date("to_date").parse(str(options["to_date"])) if options.get("to_date") else None
    conn = get_conn()
    answer = batch_resolve(conn, agency, items, as_of=as_of, with_partners=False)
    used, projected = project_many(
        conn,
        agency,
        [r["code"] for r in answer["results"] if r["status"] == "found"],
        clean_agency(str(to_agency), "to_agency"),
        at=as_of,
        to_date=to_date,
    )
    for result in answer["results"]:
        if result["status"] == "found":
            result["projected"] = projected.get(result["code"], [])
    return jsonify({**answer, "projection": used})
