"""Users' own tables: matched row by row to an agency's units (``POST /match``), or keyed
by one agency's codes at a date and converted to another agency or date
(``POST /convert``). Both take CSV or XLSX as a multipart ``file`` and answer the same
kind of file (CSV as UTF-8 with a BOM, for Excel; XLSX as XLSX), Persian as typed."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, g, jsonify, request

from api.database import get_conn
from api.endpoints import Date, declare, form
from api.parameters import AGENCY_SCHEMA
from api.params import form_flag
from geo.errors import InvalidParameter
from geo.geodata.registry.conversion import ConversionSpec, convert
from geo.geodata.registry.formats import XLSX_MEDIA, read_table, write_csv, write_xlsx
from geo.geodata.registry.match_table import ROLES, match_table
from geo.geodata.registry.references import clean_agency

bp = Blueprint("tables", __name__)

TABLE_MEDIA = ("text/csv", XLSX_MEDIA)
MAX_TABLE = 32 * 1024 * 1024
_COLUMN = {"type": "string", "maxLength": 200}
_COLUMNS = {"type": "string", "maxLength": 2000}
_CSV = "text/csv; charset=utf-8"


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
    ),
    max_body=MAX_TABLE,
)
def post_match() -> Response:
    """A table of hand-typed names (CSV or XLSX, multipart ``file``) matched row by row to
    ``agency``'s units: the same table back with result columns (status, the unit, score,
    evidence, codes in every agency, candidates); CSV as UTF-8 with a BOM, XLSX as XLSX.
    Fields ``province``, ``county``, ``district``, ``rural``, ``place``, ``code`` and
    another agency's ``moi_code``/``sci_code``/``hf_code`` (projected) name the columns
    (header or 1-based number; recognised from the headers when none is given).
    ``X-Tagsim-Match`` holds the count of rows per status as JSON."""
    upload = request.files.get("file")
    if upload is None:
        raise InvalidParameter("send the table as the multipart field 'file'", field="file")
    agency = clean_agency(request.form.get("agency", ""))
    named = {r: request.form[r] for r in ROLES if request.form.get(r)}
    raw_date = request.form.get("as_of")
    as_of = Date("as_of").parse(raw_date) if raw_date else None
    answer = match_table(get_conn(), upload.read(), agency, named, as_of=as_of)
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
        code=_COLUMN,
        counts=_COLUMNS,
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
    done = convert(get_conn(), read_table(raw), spec)
    g.audit_rows = len(done.targets)
    fmt = request.form.get("format") or ("xlsx" if raw.startswith(b"PK\x03\x04") else "csv")
    if fmt == "json":
        return jsonify(done.as_json())
    if fmt == "xlsx":
        body = write_xlsx({"converted": done.table(), "not converted": done.refused_table()})
        response = Response(body, mimetype=XLSX_MEDIA)
    else:
        response = Response(write_csv(done.table()), mimetype=_CSV)
    stem = (upload.filename or "table").rsplit(".", 1)[0] or "table"
    target = done.to_agency + (f"-{spec.to_date.isoformat()}" if spec.to_date else "")
    response.headers["Content-Disposition"] = (
        f"attachment; filename*=UTF-8''{quote(stem)}.{quote(target)}.{fmt}"
    )
    response.headers["X-Tagsim-Convert"] = json.dumps(done.summary)
    return response


def _agency(field: str) -> str | None:
    raw = request.form.get(field, "").strip()
    return clean_agency(raw) if raw else None


def _names(field: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in request.form.get(field, "").split(",") if n.strip())


def _date(field: str) -> Any:
    raw = request.form.get(field)
    return Date(field).parse(raw) if raw else None
