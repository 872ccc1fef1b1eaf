"""`tagsim replicate init|update|status`: a copy of parcels or plates kept in step from a
snapshot and the numbered change files, read from a tagsim service or a downloads folder
(no database of ours needed on the copying side)."""

from __future__ import annotations

import click

from api.cli_common import reports_errors

SOURCE = click.option(
    "--source",
    required=True,
    help="the service's base URL (https://…) or a downloads folder",
)
KEY = click.option(
    "--key",
    envvar="TAGSIM_API_KEY",
    default=None,
    help="API key for a service (default: $TAGSIM_API_KEY)",
)


@click.group()
def replicate() -> None:
    """Keep a copy of parcels or plates (a GeoPackage, or a table in PostGIS) in step: `init` takes
    the latest snapshot, `update` applies the change files after it, in order, refusing a
    missing, repeated or misplaced file."""


@replicate.command("init")
@click.argument("dataset", type=click.Choice(("parcels", "plates")))
@click.argument("target")
@SOURCE
@KEY
@click.option(
    "--granularity",
    type=click.Choice(("daily", "hourly")),
    default="daily",
    show_default=True,
    help="which change files the copy follows",
)
@reports_errors
def init(dataset: str, target: str, source: str, key: str | None, granularity: str) -> None:
    """Make TARGET from the latest snapshot of DATASET: a new GeoPackage file, or a
    PostGIS database (postgresql://…) where the copy becomes table DATASET."""
    from geo.changes.replica import init_replica
    from geo.changes.replica_sources import open_source

    init_replica(open_source(source, key), dataset, target, granularity=granularity, say=click.echo)


@replicate.command("update")
@click.argument("target")
@SOURCE
@KEY
@click.option("--until", type=int, default=None, help="stop after this sequence")
@reports_errors
def update(target: str, source: str, key: str | None, until: int | None) -> None:
    """Apply the change files after TARGET's, in order (run it again after a stop: it
    starts from the last file recorded)."""
    from geo.changes.replica import update_replica
    from geo.changes.replica_sources import open_source

    done = update_replica(open_source(source, key), target, until=until, say=click.echo)
    click.echo(
        f"{done.dataset}: at {done.granularity} file {done.sequence}, position {done.position}"
    )


@replicate.command("status")
@click.argument("target")
@reports_errors
def status(target: str) -> None:
    """Where TARGET stands: its snapshot, last change file and feed position."""
    from geo.changes.replica import read_replica

    r = read_replica(target)
    click.echo(
        f"{r.dataset} from snapshot {r.snapshot}; {r.granularity} file {r.sequence},"
        f" position {r.position}; {r.applied:,} features set since the snapshot"
    )
