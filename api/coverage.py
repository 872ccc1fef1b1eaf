"""Coverage (سرویس پوششی پلاک ثبتی): a registered plot or a posted polygon → the parcels,
guide-plan zones and divisions it overlaps; a village's plan coverage."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify
from shapely import from_wkb

from api.database import get_conn
from api.endpoints import Agency, Body, Code, Text, arg, declare
from api.parameters import Choice
from api.params import json_body
from geo.geodata.features.coverage import Coverage, plan_coverage, plate_geometry, plot_coverage
from geo.geodata.features.plot_input import PLOT_CRS_NAMES, PLOT_SCHEMA, parse_plot
from geo.geodata.features.temporal import DATETIME_PATTERN, parse_datetime
from geo.geodata.registry.references import clean_agency, clean_code

bp = Blueprint("coverage", __name__)

MAX_BODY = 8 * 1024 * 1024


@bp.post("/coverage")
@declare(
    service="coverage",
    replica=True,
    query=[
        Choice("crs", "the plot's CRS (also EPSG URIs and bare codes)", values=PLOT_CRS_NAMES),
        Text("datetime", pattern=DATETIME_PATTERN),
    ],
    body=Body("application/json", PLOT_SCHEMA),
    max_body=MAX_BODY,
)
def post_coverage() -> Response:
    """The coverage of a posted plot: a GeoJSON Polygon/MultiPolygon (or a Feature, or
    ``{"geometry": …, "crs": "EPSG:32639", "datetime": …}``) in any CRS of Iran's maps."""
    body = json_body()
    when = parse_datetime(arg("datetime") or _text(body.get("datetime")))
    plot = parse_plot(body, arg("crs"))  # (the body's own crs member, when no crs= is given)
    return _answer(plot_coverage(get_conn(), plot, when))


def _answer(coverage: Coverage, plate: dict | None = None) -> Response:  # type: ignore[type-arg]
    """The coverage as JSON; its parcel count is what the audit records (the audit need
    not read the answer back to count it)."""
    g.audit_rows = coverage.parcel_count
    body = coverage.body if plate is None else coverage.with_plate(plate)
    return Response(body, mimetype="application/json")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


@bp.get("/plates/<unit>/<main>/<sub>/coverage")
@declare(service="coverage", replica=True, query=[Text("datetime", pattern=DATETIME_PATTERN)])
def get_plate_coverage(unit: str, main: str, sub: str) -> Response:
    """The coverage of a registered plot (unit/main/sub plate), now or at ``datetime``."""
    when = parse_datetime(arg("datetime"))
    conn = get_conn()
    plate = plate_geometry(conn, unit, main, sub, when)
    answer = plot_coverage(conn, from_wkb(bytes(plate.pop("wkb"))), when)
    return _answer(answer, plate)


@bp.get("/villages/<agency>/<code>/plan-coverage")
@declare(service="coverage", replica=True, path=[Agency("agency"), Code("code")])
def get_plan_coverage(agency: str, code: str) -> Response:
    """The share of the village's guide-plan zone its parcels cover, the gaps, and the parcels
    reaching outside the zone (the village by any agency's code)."""
    return jsonify(plan_coverage(get_conn(), clean_agency(agency), clean_code(code)))
