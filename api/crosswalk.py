"""Crosswalk over HTTP: runs (as jobs), links, the review queue, decisions, releases, export."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request, stream_with_context
from sqlalchemy import text

import crosswalk.jobs  # noqa: F401  (registers the build job)
from api.database import app_db, get_conn
from api.endpoints import Int, Text, arg, declare, json_object
from api.parameters import CODE_SCHEMA
from api.params import json_body, str_field
from crosswalk.build import new_run
from crosswalk.export import export_rows, to_csv, to_xlsx
from crosswalk.release import get_run, list_releases, list_runs, publish, run_of_release
from crosswalk.review import decide, links, review_queue
from crosswalk.units import CROSSWALK_AGENCIES
from geo.errors import InvalidParameter
from geo.models.crosswalk import DECISIONS
from geo.models.registry import LEVELS
from geo.platform.jobs import enqueue, job_state

bp = Blueprint("crosswalk", __name__, url_prefix="/crosswalk")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPORT = [Int("release"), Int("run")]


def _body() -> dict:
    if request.form and request.get_json(silent=True) is None:
        return request.form.to_dict()
    return json_body()


@bp.post("/runs")
@declare(
    service="crosswalk",
    owner="crosswalk",
    role="admin",
    success=202,
    body=json_object(body_required=False, moi=str, sci=str, hf=str),
)
def post_run() -> tuple[Response, int]:
    """Queue a build (editions by id or label; the newest of each by default); 202."""
    body = json_body(required=False)
    conn = get_conn()  # the run and its job commit together, with the request
    run_id = new_run(
        conn,
        str_field(body, "moi"),
        str_field(body, "sci"),
        str_field(body, "hf"),
        parameters={"requested_by": str_field(body, "by")},
    )
    job_id = enqueue(conn, "tagsim:crosswalk_build", kind="crosswalk_build", run_id=run_id)
    return jsonify(
        {
            "run_id": run_id,
            "job_id": job_id,
            "status": "queued",
            "href": f"/crosswalk/runs/{run_id}",
        }
    ), 202


@bp.get("/runs")
@declare(service="crosswalk", query=[Int("limit", default=20, low=1, high=200)])
def get_runs() -> Response:
    """The newest crosswalk runs."""
    return jsonify({"runs": list_runs(get_conn(), arg("limit"))})


@bp.get("/runs/<int:run_id>")
@declare(service="crosswalk")
def get_one_run(run_id: int) -> Response:
    """One run, with its job's progress."""
    run = get_run(get_conn(), run_id)
    job = (
        get_conn()
        .execute(
            text(
                "SELECT job_id FROM job_progress p JOIN procrastinate_jobs j ON j.id = p.job_id"
                " WHERE p.kind = 'crosswalk_build' AND (j.args->>'run_id')::int = :r"
                " ORDER BY job_id DESC LIMIT 1"
            ),
            {"r": run_id},
        )
        .scalar()
    )
    run["job"] = job_state(app_db(), job) if job else None
    return jsonify(run)


@bp.get("/links")
@declare(
    service="crosswalk",
    replica=True,
    query=[
        Int("run"),
        Text("level", enum=LEVELS),
        Text("status"),
        *(Text(agency) for agency in CROSSWALK_AGENCIES),
        Text("parent"),
        Int("limit", default=100, low=1, high=1000),
        Int("offset", default=0),
    ],
)
def get_links() -> Response:
    """Links of a run (the newest finished by default), filtered."""
    agency = next((a for a in CROSSWALK_AGENCIES if arg(a)), None)
    return jsonify(
        links(
            get_conn(),
            run_id=arg("run") or None,
            level=arg("level"),
            status=arg("status"),
            agency=agency,
            code=arg(agency) if agency else None,
            parent=arg("parent"),
            limit=arg("limit"),
            offset=arg("offset"),
        )
    )


@bp.get("/review")
@declare(
    service="crosswalk",
    role="reviewer",
    query=[
        Text("level", enum=LEVELS),
        Int("limit", default=50, low=1, high=500),
        Int("offset", default=0),
    ],
)
def get_review() -> Response:
    """The review queue, worst first."""
    return jsonify(
        review_queue(get_conn(), level=arg("level"), limit=arg("limit"), offset=arg("offset"))
    )


@bp.post("/decisions")
@declare(
    service="crosswalk",
    owner="crosswalk",
    role="reviewer",
    success=201,
    body=json_object(
        "level",
        "moi_code",
        "decision",
        one_of_required=("sci_code", "hf_code"),
        level={"type": "string", "enum": list(LEVELS)},
        moi_code=CODE_SCHEMA,
        sci_code=CODE_SCHEMA,
        hf_code=CODE_SCHEMA,
        decision={"type": "string", "enum": list(DECISIONS)},
        note=str,
    ),
)
def post_decision() -> tuple[Response, int]:
    """``{"level", "moi_code", "sci_code" | "hf_code", "decision": confirm|reject|link, "note"}``"""
    body = _body()
    other = "sci" if body.get("sci_code") else "hf" if body.get("hf_code") else None
    if other is None:
        raise InvalidParameter("name the other unit: sci_code or hf_code", field="sci_code")
    fields = {
        n: str_field(body, n, required=True)
        for n in ("level", "moi_code", "decision", f"{other}_code")
    }
    out = decide(
        get_conn(),
        level=fields["level"],  # type: ignore[arg-type]
        moi_code=fields["moi_code"],  # type: ignore[arg-type]
        other_agency=other,
        other_code=fields[f"{other}_code"],  # type: ignore[arg-type]
        decision=fields["decision"],  # type: ignore[arg-type]
        note=str_field(body, "note"),
        by=str_field(body, "by"),
    )
    return jsonify(out), 201


@bp.post("/releases")
@declare(
    service="crosswalk",
    owner="crosswalk",
    role="admin",
    success=201,
    responses={"200": "the run was released before: that release"},
    body=json_object(body_required=False, run_id=int, note=str),
)
def post_release() -> tuple[Response, int]:
    """Release a finished run: the crosswalk announced to the agencies."""
    body = json_body(required=False)
    run_id = body.get("run_id")
    if run_id is not None and (isinstance(run_id, bool) or not isinstance(run_id, int)):
        raise InvalidParameter("run_id is a number", field="run_id")
    out = publish(get_conn(), run_id, by=str_field(body, "by"), note=str_field(body, "note"))
    return jsonify(out), 201


@bp.get("/releases")
@declare(service="crosswalk", replica=True)
def get_releases() -> Response:
    """Every release, newest first."""
    return jsonify({"releases": list_releases(get_conn())})


def _export_run() -> int:
    run_id = _export_run_id()
    run = get_run(get_conn(), run_id)  # 404 when there is no such run
    if run["status"] != "finished":
        raise InvalidParameter(f"run {run_id} is {run['status']}, not finished", field="run")
    return run_id


def _export_run_id() -> int:
    run: int | None = arg("run")
    return run if run is not None else run_of_release(get_conn(), arg("release"))


@bp.get("/export.csv")
@declare(service="crosswalk", replica=True, query=EXPORT, media="text/csv")
def export_csv() -> Response:
    """The crosswalk of a release (the newest by default) as CSV, one row per MOI unit."""
    run_id = _export_run()

    def generate() -> Iterator[str]:
        yield from to_csv(export_rows(get_conn(), run_id))

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": _attachment(run_id, "csv")},
    )


@bp.get("/export.xlsx")
@declare(service="crosswalk", replica=True, query=EXPORT, media=XLSX)
def export_xlsx() -> Response:
    """The same as an Excel workbook."""
    run_id = _export_run()
    data = to_xlsx(export_rows(get_conn(), run_id))
    return Response(
        data, mimetype=XLSX, headers={"Content-Disposition": _attachment(run_id, "xlsx")}
    )


def _attachment(run_id: int, ext: str) -> str:
    return f"attachment; filename=crosswalk-run-{run_id}.{ext}"
