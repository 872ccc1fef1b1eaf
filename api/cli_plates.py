"""`tagsim plates import FILE`: apply a notice of the Registration Organization."""

from __future__ import annotations

from pathlib import Path

import click

from api.cli_common import ready_db, reports_errors
from geo.errors import GeoError


@click.group()
def plates() -> None:
    """Registered plots (پلاک ثبتی): daily notices of new and changed plates."""


@plates.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--crs", default=None, help="the geometries' CRS, e.g. EPSG:32639 (default lon/lat)")
@click.option("--name", default=None, help="the notice's name (default: the file name)")
@reports_errors
def import_notice(file: Path, crs: str | None, name: str | None) -> None:
    """Apply FILE (CSV unit,main,sub,wkt[,action] or GeoJSON): all rows or none."""
    from geo.changes.plate_notices import apply_notice  # (not loaded for --help)
    from geo.geodata.features.plot_input import epsg_of

    try:
        result = apply_notice(ready_db(), file.read_bytes(), name or file.name, epsg=epsg_of(crs))
    except GeoError as exc:
        problems = exc.details.get("problems")
        for problem in problems[:20] if isinstance(problems, list) else []:
            click.echo(f"  line {problem['line']}: [{problem['code']}] {problem['message']}")
        raise
    click.echo(result.summary())
