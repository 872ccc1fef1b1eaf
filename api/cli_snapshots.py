"""`tagsim snapshot take|list`: dated files of a dataset at a point of the change feed."""

from __future__ import annotations

import click

from api.cli_common import ready_db, reports_errors

DATASETS = ("parcels", "guide_plans", "plates", "divisions", "crosswalk")
FORMATS = ("gpkg", "parquet", "fgb", "csv", "pmtiles", "xlsx")


@click.group()
def snapshot() -> None:
    """Snapshots to download (/downloads): GeoPackage, GeoParquet, FlatGeobuf and CSV of a
    dataset, with SHA-256 and the feed position they hold; the newest kept."""


@snapshot.command("take")
@click.argument("datasets", nargs=-1, type=click.Choice(DATASETS))
@click.option(
    "--format",
    "formats",
    default=None,
    help=f"comma-separated, among {','.join(FORMATS)} (default: all; PMTiles of parcels and"
    " divisions; the crosswalk's newest release as CSV and XLSX)",
)
@click.option("--keep", default=7, show_default=True, help="snapshots kept per dataset")
@reports_errors
def take(datasets: tuple[str, ...], formats: str | None, keep: int) -> None:
    """Take a snapshot of DATASETS (default: all of them)."""
    from geo.changes.snapshots import new_release, take_snapshot  # (not loaded for --help)
    from geo.platform.config import settings

    db = ready_db()
    asked = [f.strip() for f in formats.split(",") if f.strip()] if formats else None
    for dataset in datasets or DATASETS:
        if not datasets and dataset == "crosswalk" and not new_release(db):
            continue  # (all datasets: the crosswalk when a release has no snapshot yet)
        made = take_snapshot(
            db, dataset, settings().downloads_folder, formats=asked, taken_by="cli", keep=keep
        )
        size = sum(f["size"] for f in made["files"]) / 1e6
        click.echo(
            f"{dataset} {made['label']}: {made['features']:,} features,"
            f" {len(made['files'])} files, {size:.1f} MB, position {made['position']}"
        )


@snapshot.command("list")
@reports_errors
def list_() -> None:
    """The snapshots kept, newest first."""
    from geo.changes.snapshots import list_snapshots

    for s in list_snapshots(ready_db()):
        files = ", ".join(f"{f['name']} ({f['size']:,} B)" for f in s["files"])
        click.echo(f"{s['dataset']:<12} {s['label']}  {s['features']:>9,}  {files}")


@snapshot.command("changes")
@click.argument("granularity", type=click.Choice(("hourly", "daily")))
@reports_errors
def changes(granularity: str) -> None:
    """Write the next numbered change file of GRANULARITY now (the workers write them on
    the hour and at 03:00 Tehran time)."""
    from geo.changes.change_files import write_change_file
    from geo.platform.config import settings

    made = write_change_file(ready_db(), settings().downloads_folder, granularity)
    click.echo(
        f"{granularity} {made['sequence']}: {made['changes']:,} changes,"
        f" {made['size']:,} bytes, {made['from_position']} → {made['to_position']}"
    )
