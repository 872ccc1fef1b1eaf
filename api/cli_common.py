"""What every `tagsim` subcommand shares: error printing and a ready database URL."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from psycopg.errors import UndefinedColumn, UndefinedFunction, UndefinedTable
from sqlalchemy.exc import ProgrammingError

from geo.errors import GeoError
from geo.platform.database import Database, check_database, database_url


def reports_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Print a GeoError as ``tagsim: error [code]: message`` and exit 1, no traceback; a
    database not migrated yet says so (``schema_missing``), any other failure is one line
    (``internal_error``; ``TAGSIM_DEBUG=1`` shows the traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except GeoError as exc:
            click.echo(f"tagsim: error [{exc.code}]: {exc.message}", err=True)
            sys.exit(1)
        except ProgrammingError as exc:
            if os.environ.get("TAGSIM_DEBUG"):
                raise
            if isinstance(exc.orig, UndefinedTable | UndefinedFunction | UndefinedColumn):
                click.echo(
                    "tagsim: error [schema_missing]: the database is not at this version's"
                    " schema; run `tagsim db migrate`",
                    err=True,
                )
            else:
                click.echo(f"tagsim: error [internal_error]: {type(exc.orig).__name__}", err=True)
            sys.exit(1)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if os.environ.get("TAGSIM_DEBUG"):
                raise
            click.echo(f"tagsim: error [internal_error]: {type(exc).__name__}: {exc}", err=True)
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
