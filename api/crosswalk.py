"""Crosswalk over HTTP: runs (as jobs), links, the review queue, decisions, releases, export."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, stream_with_context
from sqlalchemy import text

import crosswalk.jobs  # noqa: F401  (registers the build job)
from api.database import get_conn, url
from api.params import int_arg, json_body, str_field
from crosswalk.build import start_run
from crosswalk.export import export_rows, to_csv, to_xlsx
from crosswalk.release import get_run, list_releases, list_runs, publish, run_of_release
from crosswalk.review import decide, links, review_queue
from geo.db import engine
from geo.errors import InvalidParameter
from geo.jobs import enqueue, job_state
from geo.persian import is_digits

bp = Blueprint("crosswalk", __name__, url_prefix="/crosswalk")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _body() -> dict:
    if request.form and request.get_json(silent=True) is None:
        return request.form.to_dict()
    return json_body()


@bp.post("/runs")
def post_run() -> tuple[Response, int]:
    """Queue a build (editions by id or label; the newest of each by default); 202."""
    body = json_body(required=False)
    run_id = start_run(
        url(),
        str_field(body, "moi"),
        str_field(body, "sci"),
        str_field(body, "hf"),
        parameters={"requested_by": str_field(body, "by")},
    )
    job_id = enqueue(url(), "tagsim:crosswalk_build", kind="crosswalk_build", run_id=run_id)
    return jsonify(
        {
            "run_id": run_id,
            "job_id": job_id,
            "status": "queued",
            "href": f"/crosswalk/runs/{run_id}",
        }
    ), 202


@bp.get("/runs")
def get_runs() -> Response:
    return jsonify({"runs": list_runs(get_conn(), int_arg("limit", 20, 1, 200))})


@bp.get("/runs/<int:run_id>")
def get_one_run(run_id: int) -> Response:
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
    run["job"] = job_state(url(), job) if job else None
    return jsonify(run)


@bp.get("/links")
def get_links() -> Response:
    args = request.args
    agency = next((a for a in ("moi", "sci", "hf") if args.get(a)), None)
    return jsonify(
        links(
            get_conn(),
            run_id=int_arg("run", 0, 0, 10**9) or None,
            level=args.get("level"),
            status=args.get("status"),
            agency=agency,
            code=args.get(agency) if agency else None,
            parent=args.get("parent"),
            limit=int_arg("limit", 100, 1, 1000),
            offset=int_arg("offset", 0, 0, 10**9),
        )
    )


@bp.get("/review")
def get_review() -> Response:
    return jsonify(
        review_queue(
            get_conn(),
            level=request.args.get("level"),
            limit=int_arg("limit", 50, 1, 500),
            offset=int_arg("offset", 0, 0, 10**9),
        )
    )


@bp.post("/decisions")
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
    with engine(url()).begin() as conn:
        out = decide(
            conn,
            level=fields["level"],
            moi_code=fields["moi_code"],  # type: ignore[arg-type]
            other_agency=other,
            other_code=fields[f"{other}_code"],  # type: ignore[arg-type]
            decision=fields["decision"],  # type: ignore[arg-type]
            note=str_field(body, "note"),
            by=str_field(body, "by"),
        )
    return jsonify(out), 201


@bp.post("/releases")
def post_release() -> tuple[Response, int]:
    body = json_body(required=False)
    run_id = body.get("run_id")
    if run_id is not None and (isinstance(run_id, bool) or not isinstance(run_id, int)):
        raise InvalidParameter("run_id is a number", field="run_id")
    with engine(url()).begin() as conn:
        out = publish(conn, run_id, by=str_field(body, "by"), note=str_field(body, "note"))
    return jsonify(out), 201


@bp.get("/releases")
def get_releases() -> Response:
    return jsonify({"releases": list_releases(get_conn())})


def _export_run() -> int:
    run_id = _export_run_id()
    run = get_run(get_conn(), run_id)  # 404 when there is no such run
    if run["status"] != "finished":
        raise InvalidParameter(f"run {run_id} is {run['status']}, not finished", field="run")
    return run_id


def _export_run_id() -> int:
    release = request.args.get("release")
    if release is not None and not is_digits(release):
        raise InvalidParameter("release is a number", field="release")
    run = request.args.get("run")
    if run:
        if not is_digits(run):
            raise InvalidParameter("run is a number", field="run")
        return int(run)
    return run_of_release(get_conn(), int(release) if release else None)


@bp.get("/export.csv")
def export_csv() -> Response:
    run_id = _export_run()

    def generate():  # type: ignore[no-untyped-def]
        with engine(url()).connect() as conn:
            yield from to_csv(export_rows(conn, run_id))

    return Response(
        stream_with_context(generate()),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": _attachment(run_id, "csv")},
    )


@bp.get("/export.xlsx")
def export_xlsx() -> Response:
    run_id = _export_run()
    data = to_xlsx(export_rows(get_conn(), run_id))
    return Response(
        data, mimetype=XLSX, headers={"Content-Disposition": _attachment(run_id, "xlsx")}
    )


def _attachment(run_id: int, ext: str) -> str:
    return f"attachment; filename=crosswalk-run-{run_id}.{ext}"
