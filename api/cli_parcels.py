"""`tagsim parcels ...`: ingest a parcel map (with a progress bar), publish a dry run."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from api.cli_common import ready_db, reports_errors


def _bar():  # type: ignore[no-untyped-def]
    state = {"last": -1}

    def progress(fraction: float, message: str) -> None:
        pct = int(fraction * 100)
        if pct != state["last"]:
            state["last"] = pct
            filled = pct // 5
            click.echo(
                f"\r[{'#' * filled}{'.' * (20 - filled)}] {pct:3d}% {message:<60}",
                nl=False,
                err=True,
            )

    return progress


def _show(state: dict) -> None:  # type: ignore[type-arg]
    click.echo("", err=True)
    report = state["report"] or {}
    click.echo(f"upload {state['id']}: {state['status']}")
    if "error" in report:
        click.echo(f"  [{report['error']}] {report['message']}")
        return
    crs = report.get("crs", {})
    where = (
        f"village {state['village_agency']}:{state['village_code']}"
        if state["village_code"]
        else f"{report.get('villages', 0)} villages"
    )
    click.echo(
        f"  {where}; "
        f"CRS {state['detected_crs']} ({crs.get('source')}, {crs.get('confidence')})"
        + (f": {crs['note']}" if crs.get("note") else "")
    )
    summary = report.get("summary", {})
    click.echo(
        f"  {summary.get('features')} features, {summary.get('errors')} errors, "
        f"{summary.get('warnings')} warnings: {json.dumps(summary.get('by_code'))}"
    )
    for f in report.get("findings", [])[:25]:
        where = f" at {f['location']}" if f.get("location") else ""
        click.echo(
            f"  {f['level']:<7} [{f['code']}] feature {f['feature']} "
            f"parcel {f['parcel_no']}: {f['message']}{where}"
        )
    if "published" in report:
        click.echo(f"  published: {json.dumps(report['published'])}")


@click.group()
def parcels() -> None:
    """Guide-plan parcel maps: ingest, validate, publish."""


@parcels.command("ingest")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--village", help="AGENCY:CODE, e.g. hf:01001020020005")
@click.option("--crs", help="EPSG:NNNN, when the .prj is missing or wrong")
@click.option("--dry-run", is_flag=True, help="validate only; publish later")
@click.option("--repair", is_flag=True, help="repair invalid geometries (ST_MakeValid)")
@click.option("--mapping", help='JSON, e.g. {"parcel_no": "PLAK", "land_use": "USE"}')
@click.option("--confirm-removals", is_flag=True, help="may remove over 20% of a village's parcels")
@reports_errors
def ingest(
    file: Path,
    village: str | None,
    crs: str | None,
    dry_run: bool,
    repair: bool,
    mapping: str | None,
    confirm_removals: bool,
) -> None:
    """Upload FILE: a shapefile (.shp with its .shx, .dbf, .prj beside it, or zipped), a
    GeoPackage or GeoJSON.

    Fields are found by their usual names (DBF-truncated ones too: village_co); --mapping
    names others, by role: parcel_no (required), village (the village code of each
    parcel, for a file of many villages), land_use, area (the declared area, m²)."""
    from geo.errors import GeoError, InvalidParameter
    from geo.geodata.parcels.ingest import (
        IngestOptions,
        create_upload,
        get_upload_state,
        process_upload,
    )
    from geo.geodata.parcels.readers import bundle_shapefile
    from geo.geodata.persian import is_digits

    code = (crs or "").upper().removeprefix("EPSG:")
    if code and not is_digits(code):
        raise InvalidParameter("--crs is EPSG:NNNN", field="crs")
    db = ready_db()
    options = IngestOptions(
        village=village,
        crs=int(code) if code else None,
        dry_run=dry_run,
        repair=repair,
        mapping=json.loads(mapping) if mapping else {},
        confirm_removals=confirm_removals,
    )
    with tempfile.TemporaryDirectory(prefix="tagsim-shp-") as folder:
        if file.suffix.lower() == ".shp":  # with its siblings, as one upload
            file = bundle_shapefile(file, Path(folder) / f"{file.stem}.zip")
        upload_id = create_upload(db, file, file.name, options, store=False)
        try:  # processed from FILE itself, stored meanwhile (for the web and the workers)
            state = process_upload(db, upload_id, _bar(), path=file)
        except GeoError:
            _show(get_upload_state(db, upload_id))
            raise
    _show(state)
    if state["status"] == "invalid":
        raise SystemExit(1)


@parcels.command("publish")
@click.argument("upload_id", type=int)
@click.option("--confirm-removals", is_flag=True, help="may remove over 20% of a village's parcels")
@reports_errors
def publish(upload_id: int, confirm_removals: bool) -> None:
    """Publish a validated dry run."""
    from geo.geodata.parcels.ingest import publish_upload

    _show(
        publish_upload(
            ready_db(), upload_id, _bar(), confirm_removals=True if confirm_removals else None
        )
    )
