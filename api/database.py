"""One database connection per request, on ``g``, closed at teardown (Flask tutorial style)."""

from __future__ import annotations

from flask import Flask, current_app, g, request
from sqlalchemy import Connection

from geo.db import database_url, engine


def url() -> str:
    """The database URL of the running app, resolved once."""
    resolved = current_app.config.get("DATABASE_URL")
    if not resolved:
        resolved = current_app.config["DATABASE_URL"] = database_url()
    return resolved


def get_conn() -> Connection:
    """The request's connection (opened on first use).

    A GET's connection is in autocommit: its reads need no BEGIN/COMMIT round trips (each
    statement sees its own snapshot, as under READ COMMITTED anyway) and its audit row is
    one statement. Other methods get a transaction, committed by the view."""
    if "conn" not in g:
        g.conn = engine(url(), autocommit=request.method in {"GET", "HEAD"}).connect()
    return g.conn


def close_conn(_exc: BaseException | None = None) -> None:
    conn = g.pop("conn", None)
    if conn is not None:
        conn.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_conn)
