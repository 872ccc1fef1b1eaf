"""Database checks, migrations up and down, and the schema's own guarantees."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, inspect, text
from sqlalchemy.exc import DBAPIError

from geo.errors import ConfigError, DatabaseUnreachable, PostGISMissing
from geo.platform import migrate
from geo.platform.database import Database, check_database, dispose


def test_unreachable_url_is_a_clear_error() -> None:
    with pytest.raises(DatabaseUnreachable, match=r"cannot reach the database at .*127.0.0.1:1"):
        check_database("postgresql://someone:secret@127.0.0.1:1/nothing")


def test_password_never_appears_in_the_error() -> None:
    with pytest.raises(DatabaseUnreachable) as info:
        check_database("postgresql://someone:s3cr3t@127.0.0.1:1/nothing")
    assert "s3cr3t" not in info.value.message


def test_garbage_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        check_database("not a url")


def test_database_without_postgis_is_reported(empty_db_url: str) -> None:
    with Database(empty_db_url).begin() as c:
        c.execute(text("DROP EXTENSION postgis"))
    with pytest.raises(PostGISMissing, match="has no PostGIS"):
        check_database(empty_db_url, create_postgis=False)
    facts = check_database(empty_db_url)  # allowed to create it
    assert facts["postgis_version"].startswith("3.")


def _tables(url: str) -> set[str]:
    with Database(url).connect() as conn:
        return set(inspect(conn).get_table_names())


def test_migrations_up_down_up(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(empty_db_url) == migrate.head_revision()
    tables = _tables(empty_db_url)
    assert {"division", "parcel", "change", "audit", "procrastinate_jobs"} <= tables
    migrate.downgrade(empty_db_url, "base")
    dispose(empty_db_url)
    left = _tables(empty_db_url) - {
        "spatial_ref_sys",
        "alembic_version",
    }
    assert left == set()
    migrate.upgrade(empty_db_url)
    assert migrate.current_revision(empty_db_url) == migrate.head_revision()


def test_models_and_migrations_agree(db_url: str) -> None:
    assert migrate.schema_drift(db_url) == []


def test_drift_would_be_seen(empty_db_url: str) -> None:
    migrate.upgrade(empty_db_url)
    with Database(empty_db_url).begin() as c:
        c.execute(text("ALTER TABLE parcel DROP COLUMN land_use"))
    assert any("land_use" in str(d) for d in migrate.schema_drift(empty_db_url))


def test_audit_trail_is_append_only(conn: Connection) -> None:
    conn.execute(
        text("INSERT INTO audit (service, endpoint, method, status) VALUES ('x', '/x', 'GET', 200)")
    )
    with pytest.raises(DBAPIError, match="append-only"):
        conn.execute(text("UPDATE audit SET status = 500"))


def test_agencies_are_seeded(conn: Connection) -> None:
    codes = set(conn.execute(text("SELECT code FROM agency")).scalars())
    assert {"moi", "sci", "hf", "registration"} <= codes


_READ = (
    "SELECT CAST(:a AS int) + 1 AS n, '50%' AS pct, CAST(:names AS text[]) AS names,"
    " ST_AsText(ST_GeomFromWKB(:wkb, 4326)) AS wkt"
)


def test_reads_through_the_driver_equal_reads_through_sqlalchemy(db_url: str) -> None:
    """A GET's connection (autocommit) reads straight through psycopg; a transaction's
    through SQLAlchemy: the same rows either way, binds, casts and ``%`` included."""
    import shapely

    from geo.platform.database import read_mapping, read_row

    params = {"a": 41, "names": ["ری", "قم"], "wkb": shapely.to_wkb(shapely.Point(51, 35))}
    db = Database(db_url)
    with db.serving(autocommit=True) as direct, db.connect() as in_transaction:
        assert direct.connection.driver_connection.autocommit
        answers = [read_mapping(c, _READ, params) for c in (direct, in_transaction)]
        expected = {"n": 42, "pct": "50%", "names": ["ری", "قم"], "wkt": "POINT(51 35)"}
        assert answers[0] == expected and answers[1] == expected
        assert read_row(direct, "SELECT 1 WHERE false", {}) is None
        with pytest.raises(DBAPIError) as bad:  # SQLAlchemy's errors, as from conn.execute
            read_row(direct, "SELECT 1 / :zero", {"zero": 0})
        assert "division by zero" in str(bad.value.orig)
        assert read_row(direct, "SELECT 2", {}) == (2,)  # the connection still serves
