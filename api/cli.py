"""The `tagsim` command line: the same domain functions the HTTP layer calls."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import click
from sqlalchemy import text

from api.cli_common import ready_db, ready_url, reports_errors
from geo.errors import ConfigError
from geo.geodata.registry.partners import install_partners
from geo.platform.config import settings
from geo.platform.database import check_database, database_url, local_cluster, safe_url


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tagsim")
def main() -> None:
    """tagsim: Iran's divisions, the MOI/SCI/HF crosswalk, parcel maps and coverage."""
    # (imported here, not at the top: `tagsim --help` loads no models)
    from crosswalk.partners import CROSSWALK

    install_partners(CROSSWALK)  # geo asks the crosswalk for partners (a composition root)


# -- db -------------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The database: the project's own PostGIS cluster, or TAGSIM_DATABASE_URL."""


@db.command("up")
@reports_errors
def db_up() -> None:
    """Create (first time) and start the local PostGIS cluster; safe to run twice."""
    cfg = settings()
    if cfg.database_url:
        url = database_url(cfg)
        facts = check_database(url)
        click.echo(f"using external database {safe_url(url)}: PostGIS {facts['postgis_version']}")
        return
    cluster = local_cluster(cfg)
    cluster.up()
    status = cluster.status()
    click.echo(f"PostGIS running on 127.0.0.1:{status.port}")
    click.echo(f"data {status.data_dir}; log {status.log_file}")


@db.command("down")
@reports_errors
def db_down() -> None:
    """Stop the local cluster (its data stays)."""
    stopped = local_cluster().down()
    click.echo("stopped" if stopped else "was not running")


@db.command("status")
@reports_errors
def db_status() -> None:
    """Say whether the cluster exists and runs, and where."""
    cfg = settings()
    if cfg.database_url:
        click.echo(f"external database: {safe_url(database_url(cfg))}")
        return
    st = local_cluster(cfg).status()
    state = "running" if st.running else ("stopped" if st.initialized else "not created")
    click.echo(f"{state}; port {st.port or cfg.pg_port}; data {st.data_dir}; log {st.log_file}")
    sys.exit(0 if st.running else 3)


@db.command("url")
@reports_errors
def db_url() -> None:
    """Print the database URL (with its password: for scripts and psql)."""
    click.echo(database_url())


@db.group("replica")
def db_replica() -> None:
    """A local streaming read replica of the project's cluster (port: TAGSIM_PG_PORT + 1).

    Serve reads from it with TAGSIM_REPLICA_URLS="$(tagsim db replica url)"."""


def _replica() -> Any:
    from geo.platform.replica import LocalReplica

    cfg = settings()
    if cfg.database_url:
        raise ConfigError("a replica of an external database is made on its server, not here")
    port = int(os.environ.get("TAGSIM_REPLICA_PORT", cfg.pg_port + 1))
    return LocalReplica(cfg.home / "replica", port, local_cluster(cfg))


@db_replica.command("up")
@reports_errors
def db_replica_up() -> None:
    """Copy the primary with pg_basebackup (first time) and start the replica."""
    replica = _replica()
    replica.up()
    click.echo(f"replica running on 127.0.0.1:{replica.status().port}, following the primary")


@db_replica.command("down")
@reports_errors
def db_replica_down() -> None:
    """Stop the replica (its data stays; it catches up when started again)."""
    click.echo("stopped" if _replica().down() else "was not running")


@db_replica.command("url")
@reports_errors
def db_replica_url() -> None:
    """Print the replica's database URL."""
    click.echo(_replica().url())


@db.command("migrate")
@click.option("--revision", default="head", show_default=True)
@reports_errors
def db_migrate(revision: str) -> None:
    """Bring the schema up to REVISION (starts the local cluster if needed)."""
    from geo.geodata.registry.store import refold_loose_keys
    from geo.platform import migrate
    from geo.platform.database import Database

    url = ready_url()
    migrate.upgrade(url, revision)
    with Database(url).begin() as conn:  # keys a migration emptied, folded by today's rules
        refolded = refold_loose_keys(conn)
    click.echo(f"schema at {migrate.current_revision(url)}")
    if refolded:
        click.echo(f"{refolded} division names' loose keys folded again")


@db.command("downgrade")
@click.argument("revision")
@reports_errors
def db_downgrade(revision: str) -> None:
    """Take the schema down to REVISION (`base` removes every table of ours)."""
    from geo.platform import migrate

    url = ready_url()
    migrate.downgrade(url, revision)
    click.echo(f"schema at {migrate.current_revision(url)}")


# -- service ----------------------------------------------------------------------------------
@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn processes")
@click.option(
    "--threads", default=4, show_default=True, type=click.IntRange(1, 64), help="per process"
)
@click.option("--no-front", is_flag=True, help="gunicorn alone, without nginx before it")
@reports_errors
def serve(host: str, port: int, workers: int, threads: int = 4, no_front: bool = False) -> None:
    """Serve the HTTP API: nginx before gunicorn when nginx is installed (api/front.py)."""
    from api.front import serve_behind_front
    from api.serve import serve as run_gunicorn
    from geo.platform.config import settings

    ready_url()
    if no_front:
        run_gunicorn(host, port, workers, threads)
    else:
        serve_behind_front(host, port, workers, settings().home / "front" / str(port), threads)


@main.command()
@click.option("--concurrency", default=1, show_default=True, type=int)
@reports_errors
def worker(concurrency: int) -> None:
    """Run background jobs (uploads, crosswalk builds) and webhook deliveries until stopped."""
    import threading

    import crosswalk.jobs  # noqa: F401  (registers its job)
    import geo.changes.snapshots
    import geo.geodata.parcels.jobs
    import geo.geodata.registry.table_jobs  # noqa: F401
    from geo.changes.webhooks import delivery_loop
    from geo.platform.jobs import recovery_loop, run_worker

    db = ready_db()
    stop = threading.Event()
    helpers = [
        threading.Thread(target=loop, args=(db, stop), daemon=True)
        for loop in (delivery_loop, recovery_loop)  # webhooks; jobs of workers that died
    ]
    for helper in helpers:
        helper.start()
    try:
        run_worker(db, concurrency=concurrency)
    finally:
        stop.set()
        for helper in helpers:
            helper.join(timeout=15)


@main.command()
@click.option("--regenerate", is_flag=True, help="generate the sample files anew")
@reports_errors
def demo(regenerate: bool) -> None:
    """Load the sample data (real MOI and SCI lists, generated HF lists and parcels)."""
    from data.sample import ensure_sample_files, load_sample

    cfg = settings()
    folder = ensure_sample_files(cfg.sample_dir, force=regenerate, echo=click.echo)
    db = ready_db()
    summary = load_sample(db, folder, echo=click.echo)
    click.echo(summary)
    from crosswalk.build import build, start_run
    from crosswalk.partners import LATEST_RUN_SQL

    with db.connect() as conn:  # (closed before the build: no transaction waits on it)
        built = conn.execute(text(f"SELECT {LATEST_RUN_SQL}")).scalar() is not None
    if not built:
        run_id = start_run(db, parameters={"from": "demo"})
        counts = build(db, run_id)
        click.echo(
            f"crosswalk run {run_id}: {counts['sci']['needs_review']} MOI↔SCI and "
            f"{counts['hf']['needs_review']} MOI↔HF links to review"
        )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.pass_context
@reports_errors
def run(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Everything a newcomer needs: database up, migrated, sample loaded, worker, API."""
    ctx.invoke(db_up)
    ctx.invoke(db_migrate, revision="head")
    ctx.invoke(demo, regenerate=False)
    from geo.access.control import create_key

    with ready_db().begin() as conn:
        admin = create_key(conn, "moi", "admin", "demo admin (tagsim run)", expires_days=30)
    click.echo(
        f"admin key for this demo (shown once, valid 30 days):\n  {admin['key']}\n"
        f"  curl -H 'Authorization: Bearer {admin['key']}' "
        f"http://{host}:{port}/divisions/sci/23"
    )
    child = subprocess.Popen([sys.executable, "-m", "api.cli", "worker"], env=os.environ.copy())
    click.echo(f"worker started (pid {child.pid}); serving on http://{host}:{port}")
    try:
        ctx.invoke(serve, host=host, port=port, workers=workers)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)


from api.cli_crosswalk import crosswalk  # noqa: E402  (subcommands register on main)
from api.cli_divisions import divisions  # noqa: E402
from api.cli_keys import keys, secrets  # noqa: E402
from api.cli_parcels import parcels  # noqa: E402
from api.cli_plates import plates  # noqa: E402
from api.cli_replicate import replicate  # noqa: E402
from api.cli_snapshots import snapshot  # noqa: E402

main.add_command(divisions)
main.add_command(parcels)
main.add_command(keys)
main.add_command(secrets)
main.add_command(crosswalk)
main.add_command(plates)
main.add_command(snapshot)
main.add_command(replicate)
# the two table commands a user reaches for first, also at the top level
main.add_command(divisions.commands["match"], "match")
main.add_command(divisions.commands["convert"], "convert")

if __name__ == "__main__":
    main()
