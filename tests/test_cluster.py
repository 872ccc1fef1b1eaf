"""The local PostGIS lifecycle, on throwaway clusters beside the project's own."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from geo.errors import PortInUse, PostGISMissing
from geo.platform import install
from geo.platform.cluster import LocalCluster, port_is_free


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(project_dir: Path) -> Iterator[LocalCluster]:
    root = project_dir / ".tagsim" / "test-clusters" / f"c{_free_port()}"
    shutil.rmtree(root, ignore_errors=True)
    c = LocalCluster(root, _free_port())
    yield c
    c.destroy()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_up_twice_down_and_up_keeps_data(cluster: LocalCluster) -> None:
    url = cluster.up()
    assert cluster.status().running and cluster.status().port == cluster.port
    assert cluster.up() == url  # a second `up` changes nothing
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        assert conn.execute("SELECT postgis_lib_version()").fetchone()[0].startswith("3.")
        conn.execute("CREATE TABLE kept (name text)")
        conn.execute("INSERT INTO kept VALUES ('تهران')")
    assert cluster.down() is True
    assert not cluster.status().running
    assert cluster.down() is False
    cluster.up()
    with psycopg.connect(_libpq(cluster.url()), autocommit=True) as conn:
        assert conn.execute("SELECT name FROM kept").fetchall() == [("تهران",)]


def test_cluster_listens_on_loopback_only_and_needs_a_password(cluster: LocalCluster) -> None:
    cluster.up()
    conf = (cluster.data_dir / "postgresql.conf").read_text()
    assert "listen_addresses = '127.0.0.1'" in conf
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(
            f"postgresql://tagsim:wrong@127.0.0.1:{cluster.port}/tagsim", connect_timeout=5
        )
    assert cluster.password_file.stat().st_mode & 0o077 == 0


def test_port_taken_by_another_program_is_a_clear_error(cluster: LocalCluster) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", cluster.port))
        blocker.listen()
        assert not port_is_free(cluster.port)
        with pytest.raises(PortInUse, match=r"port \d+ on 127.0.0.1 is taken.*TAGSIM_PG_PORT"):
            cluster.up()


def test_postgis_missing_and_not_root_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TAGSIM_PG_BINDIR", str(tmp_path))  # no initdb there
    monkeypatch.setattr(install.os, "geteuid", lambda: 1000)
    with pytest.raises(PostGISMissing, match="apt-get install postgresql-15-postgis-3"):
        install.ensure_postgis_installed()
