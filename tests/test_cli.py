"""The `tagsim` command line: help, database commands, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from api.cli import main


def test_help_lists_the_commands() -> None:
    out = CliRunner().invoke(main, ["--help"]).output
    for command in ("db", "serve", "worker", "demo", "run"):
        assert command in out
    db_help = CliRunner().invoke(main, ["db", "--help"]).output
    for command in ("up", "down", "status", "url", "migrate"):
        assert command in db_help


def test_db_status_and_url_for_the_local_cluster() -> None:
    result = CliRunner().invoke(main, ["db", "status"])
    assert result.exit_code == 0 and result.output.startswith("running")
    assert CliRunner().invoke(main, ["db", "url"]).output.startswith("postgresql+psycopg://")


def test_unreachable_external_database_is_a_one_line_error() -> None:
    env = {"TAGSIM_DATABASE_URL": "postgresql://u:p@127.0.0.1:1/db"}
    result = CliRunner().invoke(main, ["db", "up"], env=env)
    assert result.exit_code == 1
    assert "tagsim: error [database_unreachable]: cannot reach the database" in result.output
    assert "Traceback" not in result.output


def test_bad_port_setting_is_reported() -> None:
    result = CliRunner().invoke(main, ["db", "status"], env={"TAGSIM_PG_PORT": "eighty"})
    assert result.exit_code == 1 and "[config_error]" in result.output


def test_installed_entry_point_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert "version" in done.stdout


def test_a_command_on_a_database_not_yet_migrated_is_one_line(
    empty_db_url: str, tmp_path: Path
) -> None:
    """Issue 22, finding 12: it printed a SQL traceback."""
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("code,name,level,parent\n23,تهران,province,\n", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["divisions", "import", "--agency", "moi", "--edition", "1401", str(csv_file)],
        env={"TAGSIM_DATABASE_URL": empty_db_url},
    )
    assert result.exit_code == 1, result.output
    assert "[schema_missing]" in result.output and "tagsim db migrate" in result.output
    assert "Traceback" not in result.output


def test_the_help_loads_neither_the_web_app_nor_the_models() -> None:
    """`tagsim --help` imports only the command line (1.6 s when it loaded everything)."""
    import subprocess
    import sys

    probe = (
        "import sys, api.cli\n"
        "heavy = ['flask', 'geo.models', 'crosswalk.build', 'geopandas', 'pyogrio', 'shapely']\n"
        "print(' '.join(m for m in heavy if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""
