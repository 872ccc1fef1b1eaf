"""`tagsim crosswalk ...`: build, review, decide, publish, export."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from api.cli_common import ready_db, reports_errors


@click.group()
def crosswalk() -> None:
    """The mapping table between MOI (the reference), SCI and HF codes."""


@crosswalk.command("build")
@click.option("--moi", help="MOI edition (id or label; default the newest)")
@click.option("--sci", help="SCI edition (id or label; default the newest)")
@click.option("--hf", help="HF edition (id or label; default the newest)")
@click.option("--queue", is_flag=True, help="run it as a job for the worker instead of here")
@reports_errors
def build_command(moi: str | None, sci: str | None, hf: str | None, queue: bool) -> None:
    """Match the lists level by level and store the links as a new run."""
    import crosswalk.jobs  # noqa: F401
    from crosswalk.build import build, new_run, start_run
    from geo.platform.jobs import enqueue

    db = ready_db()
    if queue:  # the run and its job in one transaction: both or neither
        with db.begin() as conn:
            run_id = new_run(conn, moi, sci, hf, parameters={"from": "cli"})
            job = enqueue(conn, "tagsim:crosswalk_build", kind="crosswalk_build", run_id=run_id)
        click.echo(f"run {run_id} queued as job {job}")
        return
    run_id = start_run(db, moi, sci, hf, parameters={"from": "cli"})
    counts = build(db, run_id, lambda d, t, m: click.echo(f"[{d}/{t}] {m}", err=True))
    click.echo(f"run {run_id} finished in {counts['seconds']} s")
    for agency in ("sci", "hf"):
        if agency in counts:
            c = counts[agency]
            click.echo(
                f"  moi↔{agency}: {sum(c['links'].values())} links, "
                f"{c['needs_review']} to review, relations {c['relations']}"
            )
    changes = counts["changes_since_release"]
    if changes.get("release"):
        click.echo(
            f"  since release {changes['release']}: {changes['added']} added, "
            f"{changes['removed']} removed, {changes['changed']} changed"
        )


@crosswalk.command("review")
@click.option("--level")
@click.option("--limit", default=20, show_default=True)
@reports_errors
def review_command(level: str | None, limit: int) -> None:
    """The review queue, worst first."""
    from crosswalk.review import review_queue

    with ready_db().connect() as conn:
        page = review_queue(conn, level=level, limit=limit)
    click.echo(f"{page['total']} waiting, {page['progress']['decided']} decided")
    for lk in page["links"]:
        other = (
            ("sci", lk["sci_code"], lk["sci_name"])
            if lk["sci_code"]
            else ("hf", lk["hf_code"], lk["hf_name"])
        )
        click.echo(
            f"{lk['confidence']:.2f} {lk['level']:<8} moi:{lk['moi_code']} "
            f"{lk['moi_name']} ↔ {other[0]}:{other[1]} {other[2]}  "
            f"[{lk['evidence'].get('text', '')}]"
        )


@crosswalk.command("decide")
@click.argument("decision", type=click.Choice(["confirm", "reject", "link"]))
@click.option("--level", required=True)
@click.option("--moi", "moi_code", required=True)
@click.option("--sci", "sci_code")
@click.option("--hf", "hf_code")
@click.option("--note")
@click.option("--by")
@reports_errors
def decide_command(
    decision: str,
    level: str,
    moi_code: str,
    sci_code: str | None,
    hf_code: str | None,
    note: str | None,
    by: str | None,
) -> None:
    """Confirm, reject or make a link; it survives every rebuild."""
    from crosswalk.review import decide
    from geo.errors import InvalidParameter

    if bool(sci_code) == bool(hf_code):
        raise InvalidParameter("give exactly one of --sci and --hf", field="sci")
    agency, code = ("sci", sci_code) if sci_code else ("hf", hf_code or "")
    with ready_db().begin() as conn:
        out = decide(
            conn,
            level=level,
            moi_code=moi_code,
            other_agency=agency,
            other_code=code,
            decision=decision,
            note=note,
            by=by,
        )  # type: ignore[arg-type]
    click.echo(json.dumps(out, ensure_ascii=False))


@crosswalk.command("publish")
@click.option("--run", "run_id", type=int, help="default: the newest finished run")
@click.option("--note")
@click.option("--by")
@reports_errors
def publish_command(run_id: int | None, note: str | None, by: str | None) -> None:
    """Freeze a run as the next numbered release."""
    from crosswalk.release import publish

    with ready_db().begin() as conn:
        out = publish(conn, run_id, by=by, note=note)
    click.echo(f"release {out['number']} (run {out['run_id']}), {out['published_jalali']}")


@crosswalk.command("export")
@click.option("--release", type=int, help="default: the newest release, else the newest run")
@click.option("--run", "run_id", type=int)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="default: standard output (CSV)"
)
@reports_errors
def export_command(release: int | None, run_id: int | None, fmt: str, out: Path | None) -> None:
    """One row per link: level, codes and names of each agency, relation, confidence."""
    from crosswalk.export import export_rows, to_csv, to_xlsx
    from crosswalk.release import run_of_release

    with ready_db().connect() as conn:
        run = run_id or run_of_release(conn, release)
        if fmt == "xlsx":
            if out is None:
                raise click.UsageError("--format xlsx needs --out FILE")
            out.write_bytes(to_xlsx(export_rows(conn, run)))
        else:
            sink = out.open("w", encoding="utf-8", newline="") if out else sys.stdout
            for chunk in to_csv(export_rows(conn, run)):
                sink.write(chunk)
            if out:
                sink.close()
    if out:
        click.echo(f"run {run} written to {out}", err=True)


@crosswalk.command("quality")
@click.argument("truth", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--run", "run_id", type=int)
@reports_errors
def quality_command(truth: Path, run_id: int | None) -> None:
    """Precision and recall of a run against a truth file (the generator's)."""
    from crosswalk.quality import evaluate
    from crosswalk.release import latest_run

    db = ready_db()
    with db.connect() as conn:
        run_id = run_id or latest_run(conn)
    click.echo(json.dumps(evaluate(db, run_id, truth), ensure_ascii=False, indent=2))
