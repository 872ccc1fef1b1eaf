"""`tagsim divisions ...`: import lists, look codes up, search, history, events."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from api.cli_common import ready_db, reports_errors
from geo.geodata.dates import parse_date


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


@contextmanager
def _rows_bar(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, advanced by ``(rows done, rows in all)``."""
    with click.progressbar(length=1, label=label, file=sys.stderr) as bar:

        def advance(done: int, total: int) -> None:
            bar.length = total
            bar.update(done - bar.pos)

        yield advance


@click.group()
def divisions() -> None:
    """The division registry: agencies' lists as editions; resolve any code."""


@divisions.command("import")
@click.option("--agency", required=True, help="moi, sci, hf or another registered agency")
@click.option("--edition", "label", required=True, help="the edition's label, e.g. 1401-08-25")
@click.option("--published", help="publication date, Jalali (1401-08-25) or Gregorian")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["moi", "sci", "generic"]),
    help="the layout (detected when absent)",
)
@click.option("--valid-only", is_flag=True, help="import the valid rows, skip the rest")
@click.option("--by", "imported_by", help="who imports (recorded with the edition)")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reports_errors
def import_command(
    agency: str,
    label: str,
    published: str | None,
    fmt: str | None,
    valid_only: bool,
    imported_by: str | None,
    file: Path,
) -> None:
    """Import FILE (CSV in UTF-8/Windows-1256, or XLSX) as a new edition."""
    from geo.errors import ValidationError
    from geo.geodata.registry import import_edition

    try:
        result = import_edition(
            ready_db(),
            agency.lower(),
            label,
            file.read_bytes(),
            source_name=file.name,
            published_on=parse_date(published) if published else None,
            fmt=fmt,
            imported_by=imported_by,
            valid_only=valid_only,
        )
    except ValidationError as exc:
        report = exc.details.get("report")
        if isinstance(report, dict):
            for e in report["errors"][:30]:
                click.echo(
                    f"  line {e['line']}: [{e['code']}] {e['field']}: {e['message']}", err=True
                )
            more = report["error_count"] - min(30, len(report["errors"]))
            if more > 0:
                click.echo(f"  … and {more} more", err=True)
        raise
    click.echo(result.summary())
    for s in result.skipped[:30]:
        click.echo(f"  skipped line {s['line']}: [{s['code']}] {s['message']}")


@divisions.command("show")
@click.argument("agency")
@click.argument("code")
@click.option("--as-of", "--at", "as_of", help="the unit as it was on this date")
@reports_errors
def show(agency: str, code: str, as_of: str | None) -> None:
    """The unit AGENCY CODE with its parents, children and partners (JSON); a code replaced
    by then is ``unit_gone`` naming its successors."""
    from geo.geodata.registry.lookup import resolve

    with ready_db().connect() as conn:
        _echo_json(resolve(conn, agency.lower(), code, as_of=parse_date(as_of) if as_of else None))


@divisions.command("search")
@click.argument("query")
@click.option("--agency")
@click.option("--level")
@click.option("--within", help="AGENCY:CODE")
@click.option("--limit", default=10, show_default=True)
@reports_errors
def search_command(
    query: str, agency: str | None, level: str | None, within: str | None, limit: int
) -> None:
    """Units named like QUERY (Persian spellings folded), best first."""
    from geo.geodata.registry.search import search

    with ready_db().connect() as conn:
        found = search(conn, query, agency=agency, level=level, within=within, limit=limit)
    for r in found["results"]:
        click.echo(
            f"{r['score']:.2f}  {r['agency']}:{r['code']}  {r['level']:<8} {r['name']}"
            f"  ({r['parents'] or '-'})"
        )


@divisions.command("history")
@click.argument("agency")
@click.argument("code")
@reports_errors
def history_command(agency: str, code: str) -> None:
    """The code in every edition, and the events that name it (JSON)."""
    from geo.geodata.registry.lookup import history

    with ready_db().connect() as conn:
        _echo_json(history(conn, agency.lower(), code))


@divisions.command("successors")
@click.argument("agency")
@click.argument("code")
@click.option("--since", help="start from the edition in force then (default: first holding it)")
@click.option("--until", help="follow to the edition in force then (default: the newest)")
@reports_errors
def successors_command(agency: str, code: str, since: str | None, until: str | None) -> None:
    """What CODE became: the units it led to, the change type and the events (JSON)."""
    from geo.geodata.registry.lineage import follow_forward
    from geo.geodata.registry.references import clean_code

    with ready_db().connect() as conn:
        start, end = (parse_date(d) if d else None for d in (since, until))
        _echo_json(follow_forward(conn, agency.lower(), clean_code(code), since=start, until=end))


@divisions.command("predecessors")
@click.argument("agency")
@click.argument("code")
@click.option("--at", help="start from the edition in force on this date")
@reports_errors
def predecessors_command(agency: str, code: str, at: str | None) -> None:
    """Where CODE came from: the units back in the first edition, the events (JSON)."""
    from geo.geodata.registry.lineage import follow_back
    from geo.geodata.registry.references import clean_code

    with ready_db().connect() as conn:
        when = parse_date(at) if at else None
        _echo_json(follow_back(conn, agency.lower(), clean_code(code), at=when))


@divisions.command("editions")
@click.option("--agency")
@reports_errors
def editions_command(agency: str | None) -> None:
    """List the editions."""
    from geo.geodata.registry.editions import list_editions

    with ready_db().connect() as conn:
        for e in list_editions(conn, agency):
            click.echo(
                f"{e['id']:>4}  {e['agency']:<4} {e['label']:<14} "
                f"{e['published_jalali'] or '':<11} {e['row_count']:>7} rows  "
                f"{e['source_name'] or ''}"
            )


@divisions.command("events")
@click.argument("edition_id", type=int)
@click.option("--kind")
@reports_errors
def events_command(edition_id: int, kind: str | None) -> None:
    """The events between EDITION_ID and the agency's previous edition."""
    from sqlalchemy import text

    with ready_db().connect() as conn:
        rows = conn.execute(
            text(
                "SELECT kind, codes_before, codes_after, detail FROM division_event"
                " WHERE to_edition_id = :e AND (CAST(:k AS text) IS NULL OR kind = :k)"
                " ORDER BY id"
            ),
            {"e": edition_id, "k": kind},
        ).all()
    for r in rows:
        why = r.detail.get("evidence") or r.detail.get("name", "")
        click.echo(
            f"{r.kind:<8} {' '.join(r.codes_before) or '-':<26} → "
            f"{' '.join(r.codes_after) or '-':<26} {why}"
        )


@divisions.command("boundaries")
@click.option("--agency", required=True)
@click.option("--edition", "label", required=True)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@reports_errors
def boundaries_command(agency: str, label: str, file: Path) -> None:
    """Attach province and county polygons from a GeoJSON file to an edition, by name."""
    from sqlalchemy import text

    from geo.errors import NotFound
    from geo.geodata.registry.boundaries import attach_boundaries

    with ready_db().begin() as conn:
        edition_id = conn.execute(
            text("SELECT id FROM edition WHERE agency = :a AND label = :l"),
            {"a": agency, "l": label},
        ).scalar()
        if edition_id is None:
            raise NotFound(f"{agency} has no edition {label!r}", code="no_edition")
        result = attach_boundaries(conn, edition_id, file.read_bytes())
    click.echo(f"{result.matched} polygons attached")
    for name in result.unmatched:
        click.echo(f"  no unit for {name}", err=True)
    for name in result.ambiguous:
        click.echo(f"  several units for {name}", err=True)


@divisions.command("resolve")
@click.option("--agency", required=True)
@click.argument("codes", type=click.File("r", encoding="utf-8-sig"), default=sys.stdin)
@reports_errors
def resolve_command(agency: str, codes: Any) -> None:
    """Resolve codes (one per line, from a file or standard input) to CSV."""
    import csv

    from geo.geodata.registry.lookup import batch_resolve

    wanted = [line.strip() for line in codes if line.strip()]
    with ready_db().connect() as conn:
        out = batch_resolve(conn, agency.lower(), wanted)
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["input", "status", "code", "level", "name", "parent_code"])
    for r in out["results"]:
        writer.writerow(
            [
                r["input"],
                r["status"],
                r.get("code", ""),
                r.get("level", ""),
                r.get("name", ""),
                r.get("parent_code", ""),
            ]
        )


@divisions.command("match")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--agency", required=True, help="whose units to match the rows to (moi, sci, hf…)")
@click.option("--province", help="the column holding province names (header or number)")
@click.option("--county", help="the column of county names")
@click.option("--district", help="the column of district names")
@click.option("--rural", help="the column of rural district names")
@click.option("--place", help="the column of city or village names")
@click.option("--code", help="the column of the agency's codes")
@click.option(
    "--other-code",
    "others",
    multiple=True,
    help="another agency's code column, as AGENCY=COLUMN (e.g. moi=کد کشوری): projected",
)
@click.option("--as-of", help="match against the edition in force on this date")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="where to write")
@reports_errors
def match_command(
    file: Path,
    agency: str,
    province: str | None,
    county: str | None,
    district: str | None,
    rural: str | None,
    place: str | None,
    code: str | None,
    others: tuple[str, ...],
    as_of: str | None,
    out: Path | None,
) -> None:
    """Match a table's rows (CSV or XLSX of hand-typed names, codes optional) to AGENCY's
    units; write the table with result columns added (status: exact, variant, former_name,
    ambiguous, wrong_parent, not_found; the unit, score, evidence, codes in every agency,
    candidates). Columns are recognised from their headers when none is named."""
    from geo.geodata.registry.match_table import match_table

    roles = {
        "province": province,
        "county": county,
        "district": district,
        "rural": rural,
        "place": place,
        "code": code,
    }
    named = {role: column for role, column in roles.items() if column}
    for other in others:
        agency_of, _, column = other.partition("=")
        if not column:
            raise click.BadParameter(f"{other!r}: write AGENCY=COLUMN", param_hint="--other-code")
        named[f"{agency_of.strip().lower()}_code"] = column
    with ready_db().connect() as conn, _rows_bar("matching") as advance:
        answer = match_table(
            conn,
            file.read_bytes(),
            agency.lower(),
            named,
            as_of=parse_date(as_of) if as_of else None,
            progress=advance,
        )
    target = out or file.with_name(f"{file.stem}.matched.{answer.extension}")
    target.write_bytes(answer.body)
    said = ", ".join(f"{k} {v}" for k, v in sorted(answer.summary.items()))
    click.echo(f"{target}: {said} (columns: {answer.columns})")


@divisions.command("convert")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--agency", required=True, help="whose codes key the table (moi, sci, hf…)")
@click.option("--code", required=True, help="the column of codes (header or number)")
@click.option(
    "--count", "counts", multiple=True, required=True, help="a count column (repeat for more)"
)
@click.option(
    "--category", "categories", multiple=True, help="a column kept as is, grouping the output"
)
@click.option("--at", help="the codes as they were on this date (default: the newest edition)")
@click.option("--to-agency", help="the agency wanted (default: the same)")
@click.option("--to-date", help="the units in force on this date (default: the newest edition)")
@click.option("--equal-shares", is_flag=True, help="divide a row equally where a weight is unknown")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), help="where to write")
@reports_errors
def convert_command(
    file: Path,
    agency: str,
    code: str,
    counts: tuple[str, ...],
    categories: tuple[str, ...],
    at: str | None,
    to_agency: str | None,
    to_date: str | None,
    equal_shares: bool,
    out: Path | None,
) -> None:
    """Re-key a table of AGENCY's codes to another agency and/or date: counts divided by
    the weights of splits, summed over merges, each row with its provenance. Rows that
    cannot be converted go to FILE.not-converted.csv with their reason."""
    from geo.geodata.registry.conversion import ConversionSpec, convert
    from geo.geodata.registry.formats import read_table, write_csv, write_xlsx

    raw = file.read_bytes()
    spec = ConversionSpec(
        agency=agency.lower(),
        code=code,
        counts=counts,
        categories=categories,
        at=parse_date(at) if at else None,
        to_agency=to_agency.lower() if to_agency else None,
        to_date=parse_date(to_date) if to_date else None,
        equal_shares=equal_shares,
    )
    with ready_db().connect() as conn, _rows_bar("converting") as advance:
        done = convert(conn, read_table(raw), spec, progress=advance)
    xlsx = raw.startswith(b"PK\x03\x04")
    target = out or file.with_name(f"{file.stem}.{done.to_agency}.{'xlsx' if xlsx else 'csv'}")
    if xlsx:
        sheets = {"converted": done.table(), "not converted": done.refused_table()}
        target.write_bytes(write_xlsx(sheets))
    else:
        target.write_bytes(write_csv(done.table()))
        if done.refused:
            report = target.with_name(f"{target.stem}.not-converted.csv")
            report.write_bytes(write_csv(done.refused_table()))
            click.echo(f"{report}: {len(done.refused)} rows not converted")
    summary = done.summary
    click.echo(
        f"{target}: {summary['rows_converted']} rows converted into {summary['rows_out']},"
        f" {summary['rows_refused']} refused {summary['refused'] or ''}"
    )
    for name, sums in summary["totals"].items():
        click.echo(f"  {name}: in {sums['in']}, out {sums['out']}, not converted {sums['refused']}")
