"""Fixtures: a throwaway database on a real PostGIS, migrated to head.

The server is ``TAGSIM_TEST_DATABASE_URL``'s (any database on it: a fresh one is
created beside it) or, by default, the project's own local cluster, started if needed.
Each test session gets its own database, dropped at the end.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Connection

from crosswalk.partners import CROSSWALK
from geo.geodata.registry.partners import install_partners
from geo.platform import database as geo_db
from geo.platform import migrate
from geo.platform.database import Database, database_url, normalize_url

# The composition root of the tests: geo asks the crosswalk for a unit's partners.
install_partners(CROSSWALK)

# Audit journals of the tests' throwaway databases live and die with the session, and move
# each row in its request (no mover thread outliving a module's database; the batched path
# is tested in tests/test_audit_journal.py).
os.environ.setdefault("TAGSIM_AUDIT_DIR", tempfile.mkdtemp(prefix="tagsim-audit-"))
os.environ.setdefault("TAGSIM_AUDIT_FLUSH_S", "0")
# Webhook receivers of the tests listen on loopback, which outbound.check_url refuses unless
# the host is allowed (tests of that refusal clear it for themselves).
os.environ.setdefault("TAGSIM_WEBHOOK_ALLOW", "127.0.0.1")
# Sealed secrets: a key of the session's own (the workers it starts inherit it), never the
# developer's .tagsim/secret.key.
os.environ.setdefault("TAGSIM_SECRET_KEY", Fernet.generate_key().decode())


def _server_url() -> str:
    explicit = os.environ.get("TAGSIM_TEST_DATABASE_URL")
    return normalize_url(explicit) if explicit else database_url(start=True)


def create_database(server_url: str, prefix: str = "tagsim_test") -> str:
    """An empty database with PostGIS beside ``server_url``, named ``prefix_<random>``."""
    return geo_db.create_database(server_url, f"{prefix}_{uuid.uuid4().hex[:10]}")


drop_database = geo_db.drop_database


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL on the PostGIS server the tests use (its database is not touched)."""
    return _server_url()


@pytest.fixture(scope="session")
def db_url(server_url: str) -> Iterator[str]:
    """A throwaway database migrated to head, for the whole session."""
    url = create_database(server_url)
    migrate.upgrade(url)
    yield url
    drop_database(url)


@pytest.fixture
def empty_db_url(server_url: str) -> Iterator[str]:
    """A fresh database with PostGIS and nothing else, dropped after the test."""
    url = create_database(server_url, "tagsim_empty")
    yield url
    drop_database(url)


@pytest.fixture
def conn(db_url: str) -> Iterator[Connection]:
    """A connection in a transaction that is always rolled back."""
    with Database(db_url).connect() as connection:
        trans = connection.begin()
        try:
            yield connection
        finally:
            trans.rollback()


@pytest.fixture(scope="session")
def project_dir() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture
def fresh_url(empty_db_url: str) -> str:
    """A fresh database migrated to head, dropped after the test."""
    migrate.upgrade(empty_db_url)
    return empty_db_url


@pytest.fixture(scope="module")
def sample_url(server_url: str) -> Iterator[str]:
    """A database holding the sample (lists, boundaries, parcel maps, plates), per module."""
    from data.sample import ensure_sample_files, load_sample
    from geo.platform.config import settings

    url = create_database(server_url, "tagsim_sample")
    migrate.upgrade(url)
    load_sample(Database(url), ensure_sample_files(settings().sample_dir, echo=_quiet), echo=_quiet)
    yield url
    drop_database(url)


def _quiet(_message: str) -> None:
    return None


@pytest.fixture(scope="module")
def module_db_url(server_url: str) -> Iterator[str]:
    """A database migrated to head, shared by one test module."""
    url = create_database(server_url, "tagsim_mod")
    migrate.upgrade(url)
    yield url
    drop_database(url)
