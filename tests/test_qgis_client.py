"""QGIS (Debian's ``python3-qgis``, headless) loads a tagsim collection as an OAPIF layer
(issue 24). The features it receives are compared with PostGIS, and the requests it sent
are recorded by the server: QGIS 3.22 sends a rectangle as ``bbox=`` but applies a subset
filter itself after walking every page (it reads neither /conformance nor the queryables,
so it cannot know the server filters); QGIS 3.32 and later send ``filter=`` (qgis/QGIS#52775),
and pass too."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from geo.access.control import create_key
from geo.platform.database import Database
from tests.live import live_server

QGIS_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).parent / "clients" / "qgis_oapif.py"


def _has_qgis() -> bool:
    if not os.path.exists(QGIS_PYTHON):
        return False
    found = subprocess.run(
        [QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True, check=False
    )
    return found.returncode == 0


pytestmark = pytest.mark.skipif(
    not _has_qgis(), reason="QGIS's Python missing: apt-get install python3-qgis"
)


def _rows(url: str, sql: str, **params: Any) -> list[list[str]]:
    with Database(url).connect() as c:
        return sorted([str(a), str(b)] for a, b in c.execute(text(sql), params))


def test_qgis_reads_a_filtered_layer_and_a_rectangle(sample_url: str, tmp_path: Path) -> None:
    with Database(sample_url).begin() as c:
        key = create_key(c, "sci", "reader", "QGIS test")["key"]
        lon, lat = c.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_Centroid(geom) p FROM parcel"
                " WHERE valid_to IS NULL ORDER BY id LIMIT 1 OFFSET 2000) x"
            )
        ).one()
    box = (lon - 0.003, lat - 0.003, lon + 0.003, lat + 0.003)
    subset = "land_use = 'باغ' AND area_m2 > 300"
    seen: list[str] = []
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "HOME": str(tmp_path),  # QGIS's profile and auth database: the test's own
        "QGIS_AUTH_DB_DIR_PATH": str(tmp_path),
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    with live_server(sample_url, seen) as base:
        done = subprocess.run(
            [QGIS_PYTHON, str(SCRIPT), base, key, subset, ",".join(map(str, box))],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["valid"] and got["subset_accepted"], got
    assert {"village_code", "parcel_no", "land_use", "area_m2"} <= set(got["fields"])
    current = "FROM parcel WHERE valid_to IS NULL"
    orchards = _rows(
        sample_url,
        f"SELECT village_code, parcel_no {current} AND land_use = 'باغ'"
        " AND round(area_m2::numeric, 2) > 300",
    )
    assert got["subset"] == orchards and len(orchards) > 0
    in_box = _rows(
        sample_url,
        f"SELECT village_code, parcel_no {current}"
        " AND ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))",
        a=box[0],
        b=box[1],
        c=box[2],
        d=box[3],
    )
    assert got["bbox"] == in_box and 0 < len(in_box) < 1000
    # what QGIS asked: the rectangle went to the server as bbox=; the subset went as a
    # filter= (a QGIS that speaks CQL2) or by reading every page (3.22, see above)
    pages = [s for s in seen if s.startswith("/collections/parcels/items")]
    assert any("bbox=" in s for s in pages), pages
    if not any("filter=" in s for s in pages):
        total = _rows(sample_url, f"SELECT village_code, parcel_no {current}")
        assert sum("bbox=" not in s and "limit=1000" in s for s in pages) >= len(total) / 1000
