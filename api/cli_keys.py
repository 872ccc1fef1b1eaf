"""`tagsim keys ...`: API keys for agencies (shown once, stored as a hash)."""

from __future__ import annotations

import click

from api.cli_common import ready_db, reports_errors


@click.group()
def keys() -> None:
    """API keys: create (shown once), list, revoke."""


@keys.command("create")
@click.option("--agency", required=True, help="moi, sci, hf, registration, …")
@click.option(
    "--role", required=True, type=click.Choice(["reader", "uploader", "reviewer", "admin"])
)
@click.option("--name", required=True, help="who holds it, e.g. 'SCI GIS unit'")
@click.option("--expires-days", type=int)
@reports_errors
def create(agency: str, role: str, name: str, expires_days: int | None) -> None:
    """Create a key; it is printed this once and never again."""
    from geo.access.control import create_key

    with ready_db().begin() as conn:
        out = create_key(conn, agency, role, name, expires_days)
    click.echo(out["key"])
    click.echo(
        f"key {out['key_id']} for {agency} ({role}, {name})"
        + (f", expires {out['expires_at']:%Y-%m-%d}" if out["expires_at"] else ""),
        err=True,
    )


@keys.command("list")
@reports_errors
def list_command() -> None:
    """Every key (never the key itself)."""
    from geo.access.control import list_keys

    with ready_db().connect() as conn:
        for k in list_keys(conn):
            state = "revoked" if k["revoked_at"] else "active"
            click.echo(
                f"{k['key_id']:>4}  tgs_{k['prefix']}_…  {k['agency']:<12} {k['role']:<9}"
                f" {state:<8} {k['name']}"
            )


@keys.command("revoke")
@click.argument("key_id", type=int)
@reports_errors
def revoke(key_id: int) -> None:
    """Revoke key KEY_ID at once."""
    from geo.access.control import revoke_key

    with ready_db().begin() as conn:
        revoke_key(conn, key_id)
    click.echo(f"key {key_id} revoked")


@click.group()
def secrets() -> None:
    """Secrets sealed at rest (webhook secrets): rotate the key that seals them."""


@secrets.command("rotate")
@reports_errors
def rotate_command() -> None:
    """Seal every stored secret again under a new key, then retire the old key."""
    from geo.changes.webhooks import reseal_secrets

    done = reseal_secrets(ready_db())
    click.echo(f"{done} secret(s) sealed again under a new key")
