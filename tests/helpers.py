"""Test helpers: an HTTP client that carries an API key of a chosen agency and role."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient

from api import create_app
from geo.access import create_key
from geo.db import engine


def client_for(url: str, role: str = "admin", agency: str = "moi", **config: Any) -> FlaskClient:
    """A test client of an app on ``url`` whose every request sends a fresh key."""
    with engine(url).begin() as conn:
        key = create_key(conn, agency, role, f"test {agency} {role}")["key"]
    client = create_app({"DATABASE_URL": url, **config}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client
