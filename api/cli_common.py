"""What every `tagsim` subcommand shares: error printing and a ready database URL."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from geo.errors import GeoError
from geo.platform.database import Database, check_database, database_url


def reports_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print a GeoError as ``tagsim: error [code]: message`` and exit 1, no traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GeoError as exc:
            click.echo(f"tagsim: error [{exc.code}]: {exc.message}", err=True)
            sys.exit(1)

    return wrapper


def ready_url() -> str:
    """The database URL, started (local cluster) and checked for PostGIS."""
    url = database_url(start=True)
    check_database(url)
    return url


def ready_db() -> Database:
    """The command's database (see :func:`ready_url`): made once, passed to the domain."""
    return Database(ready_url())
