"""Users' own tables: matched row by row to an agency's units (``POST /match``), or keyed
by one agency's codes at a date and converted to another agency or date
(``POST /convert``). Both take CSV or XLSX as a multipart ``file`` and answer the same
kind of file (CSV as UTF-8 with a BOM, for Excel; XLSX as XLSX), Persian as typed."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, g, jsonify, request, url_for

from api.database import app_db, get_conn
from api.endpoints import Date, Int, declare, form
from api.parameters import AGENCY_SCHEMA
from api.params import form_flag
from geo.errors import InvalidParameter
from geo.geodata.registry.conversion import ConversionSpec, convert
from geo.geodata.registry.formats import XLSX_MEDIA, read_table
from geo.geodata.registry.match_table import ROLES, match_table
from geo.geodata.registry.references import clean_agency
from geo.geodata.registry.table_jobs import (
    AT_ONCE_ROWS,
    Sender,
    convert_file,
    spec_options,
    submit,
    table_job_answer,
    table_job_state,
)

bp = Blueprint("tables", __name__)

TABLE_MEDIA = ("text/csv", XLSX_MEDIA)
MAX_TABLE = 32 * 1024 * 1024
_COLUMN = {"type": "string", "maxLength": 200}
_COLUMNS = {"type": "string", "maxLength": 2000}
# a column the request cannot do without: some text that is not only space
_NAMED = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"}
_NAMED_LIST = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": "[^,\\s]"}


@bp.post("/match")
@declare(
    service="divisions",
    replica=True,
    media=TABLE_MEDIA,
    body=form(
        "file",
        "agency",
        agency=AGENCY_SCHEMA,
        province=_COLUMN,
        county=_COLUMN,
        district=_COLUMN,
        rural=_COLUMN,
        place=_COLUMN,
        code=_COLUMN,
        moi_code=_COLUMN,
        sci_code=_COLUMN,
        hf_code=_COLUMN,
        as_of=Date("as_of").schema(),
        format={"type": "string", "enum": ["csv", "xlsx"]},
    ),
    max_body=MAX_TABLE,
)
def post_match() -> Response:
    """A table of hand-typed names (CSV or XLSX, multipart ``file``) matched row by row to
    ``agency``'s units: the same table back with result columns (status, the unit, score,
    evidence, codes in every agency, candidates); CSV as UTF-8 with a BOM, XLSX as XLSX.
    Fields ``province``, ``county``, ``district``, ``rural``, ``place``, ``code`` and
    another agency's ``moi_code``/``sci_code``/``hf_code`` (projected) name the columns
    (header or 1-based number; recognised from the headers when none is given);
    ``format`` asks for ``csv`` or ``xlsx`` whatever came.
    ``X-Tagsim-Match`` holds the count of rows per status as JSON."""
    upload = request.files.get("file")
    if upload is None:
        raise InvalidParameter("send the table as the multipart field 'file'", field="file")
    agency = clean_agency(request.form.get("agency", ""))
    named = {r: request.form[r] for r in ROLES if request.form.get(r)}
    raw_date = request.form.get("as_of")
    as_of = Date("as_of").parse(raw_date) if raw_date else None
    raw = upload.read()
    fmt = _format(("csv", "xlsx")) or None
    if _later(raw):
        options = {"agency": agency, "columns": named, "as_of": as_of, "format": fmt}
        return _accepted("match", upload.filename, raw, options)
    answer = match_table(get_conn(), raw, agency, named, as_of=as_of, fmt=fmt)
    g.audit_rows = sum(answer.summary.values())
    stem = (upload.filename or "table").rsplit(".", 1)[0] or "table"
    response = Response(answer.body, mimetype=answer.media_type)
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(stem)}.matched.{answer.extension}"
    )
    response.headers["X-Tagsim-Match"] = json.dumps(answer.summary)
    return response


@bp.post("/convert")
@declare(
    service="divisions",
    replica=True,
    media=(*TABLE_MEDIA, "application/json"),
    body=form(
        "file",
        "agency",
        "code",
        "counts",
        agency=AGENCY_SCHEMA,
        code=_NAMED,
        counts=_NAMED_LIST,
        categories=_COLUMNS,
        at=Date("at").schema(),
        to_agency=AGENCY_SCHEMA,
        to_date=Date("to_date").schema(),
        equal_shares={"type": "string", "enum": ["true", "false"]},
        format={"type": "string", "enum": ["csv", "xlsx", "json"]},
    ),
    max_body=MAX_TABLE,
)
def post_convert() -> Response:
    """A table keyed by ``agency``'s codes in force on ``at`` (column ``code``) re-keyed to
    ``to_agency`` (default the same) in force on ``to_date`` (default the newest edition):
    the ``counts`` columns (comma-separated names or numbers) divided by the weights of
    splits and summed over merges, grouped by the ``categories`` columns; each output row
    with its provenance (input rows, codes, weights, links). Rows that cannot be converted
    are reported with a reason (``unknown_weight`` unless ``equal_shares=true``, …): in the
    JSON answer, the XLSX's second sheet, and counted in ``X-Tagsim-Convert`` (JSON)."""
    upload = request.files.get("file")
    if upload is None:
        raise InvalidParameter("send the table as the multipart field 'file'", field="file")
    raw = upload.read()
    spec = ConversionSpec(
        agency=clean_agency(request.form.get("agency", "")),
        code=request.form.get("code", "").strip(),
        counts=_names("counts"),
        categories=_names("categories"),
        at=_date("at"),
        to_agency=clean_agency(request.form["to_agency"])
        if request.form.get("to_agency")
        else None,
        to_date=_date("to_date"),
        equal_shares=form_flag("equal_shares"),
    )
    if not spec.code:
        raise InvalidParameter("name the code column (code=…)", field="code")
    fmt = _format(("csv", "xlsx", "json")) or ("xlsx" if raw.startswith(b"PK\x03\x04") else "csv")
    if fmt != "json" and _later(raw):
        return _accepted("convert", upload.filename, raw, spec_options(spec, fmt))
    if fmt == "json":
        done = convert(get_conn(), read_table(raw), spec)
        g.audit_rows = len(done.targets)
        return jsonify(done.as_json())
    body, media, summary = convert_file(get_conn(), raw, spec, fmt)
    g.audit_rows = summary["rows_out"]
    response = Response(body, mimetype=media)
    stem = (upload.filename or "table").rsplit(".", 1)[0] or "table"
    target = (spec.to_agency or spec.agency) + (
        f"-{spec.to_date.isoformat()}" if spec.to_date else ""
    )
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(stem)}.{quote(target)}.{fmt}"
    )
    response.headers["X-Tagsim-Convert"] = json.dumps(summary)
    return response


@bp.get("/tables/jobs/<int:table_job_id>")
@declare(service="divisions", path=[Int("table_job_id", "the job's id")])
def get_table_job(table_job_id: int) -> Response:
    """A big table's job (``POST /match`` or ``/convert`` answered 202): ``queued``,
    ``running`` with rows done of total, ``done`` with its summary and a link to the
    answer file, or ``failed`` with the error. Seen only by the agency that sent it."""
    state = table_job_state(get_conn(), app_db(), table_job_id, _sender())
    if state["status"] == "done":
        answer = url_for("tables.get_table_job_answer", table_job_id=table_job_id, _external=True)
        state["links"] = [{"rel": "enclosure", "href": answer, "title": "the answer file"}]
    return jsonify(state)


@bp.get("/tables/jobs/<int:table_job_id>/answer")
@declare(service="divisions", path=[Int("table_job_id", "the job's id")], media=TABLE_MEDIA)
def get_table_job_answer(table_job_id: int) -> Response:
    """The answer file of a finished table job (404 ``table_job_not_done`` before)."""
    body, media, name = table_job_answer(get_conn(), table_job_id, _sender())
    response = Response(body, mimetype=media)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(name)}"
    return response


def _format(allowed: tuple[str, ...]) -> str:
    fmt = request.form.get("format", "").strip().lower()
    if fmt and fmt not in allowed:
        raise InvalidParameter(f"format is one of {', '.join(allowed)}", field="format")
    return fmt


def _sender() -> Sender:
    principal = g.get("principal")
    if principal is None:
        return Sender(None, None)
    return Sender(principal.id, principal.agency, principal.role == "admin")


def _later(raw: bytes) -> bool:
    """Answer with a job: the client prefers it (``Prefer: respond-async``) or the table
    has more than ``AT_ONCE_ROWS`` rows."""
    if "respond-async" in request.headers.get("Prefer", ""):
        return True
    return len(read_table(raw)) - 1 > AT_ONCE_ROWS


def _accepted(kind: str, file_name: str | None, raw: bytes, options: dict[str, Any]) -> Response:
    """202 Accepted: the table and its job stored together (on the primary, whichever
    server reads this request), ``Location`` the job to follow."""
    with app_db().begin() as conn:
        made = submit(conn, kind, _sender(), file_name or "table", raw, options)
    where = url_for("tables.get_table_job", table_job_id=made["id"], _external=True)
    response = jsonify(
        {"id": made["id"], "status": "queued", "links": [{"rel": "monitor", "href": where}]}
    )
    response.status_code = 202
    response.headers["Location"] = where
    if "respond-async" in request.headers.get("Prefer", ""):
        response.headers["Preference-Applied"] = "respond-async"
    return response


def _agency(field: str) -> str | None:
    raw = request.form.get(field, "").strip()
    return clean_agency(raw) if raw else None


def _names(field: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in request.form.get(field, "").split(",") if n.strip())


def _date(field: str) -> Any:
    raw = request.form.get(field)
    return Date(field).parse(raw) if raw else None
