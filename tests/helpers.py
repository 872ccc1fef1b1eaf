"""Test helpers: an HTTP client that carries an API key of a chosen agency and role."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import geopandas as gpd
from flask.testing import FlaskClient
from sqlalchemy import text

from api import create_app
from data.sample import SAMPLE_UPLOAD
from geo.access.control import create_key
from geo.geodata.parcels.ingest import IngestOptions, create_upload, process_upload
from geo.platform.config import settings
from geo.platform.database import Database


def client_for(url: str, role: str = "admin", agency: str = "moi", **config: Any) -> FlaskClient:
    """A test client of an app on ``url`` whose every request sends a fresh key."""
    with Database(url).begin() as conn:
        key = create_key(conn, agency, role, f"test {agency} {role}")["key"]
    client = create_app({"DATABASE_URL": url, **config}).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return client


def republish_village(url: str, code: str | None = None) -> tuple[str, str, str, str]:
    """Publish a new version of one sample village: parcel A's land use changes and parcel
    B is removed. Returns (village, A, B, the time before the publish)."""
    folder = settings().sample_dir / "truth"
    with Database(url).connect() as c:
        code = (
            code
            or c.execute(
                text("SELECT village_code FROM parcel GROUP BY 1 ORDER BY count(*), 1 LIMIT 1")
            ).scalar_one()
        )
        before = c.execute(
            text("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
        ).scalar_one()
    parcels = gpd.read_file(folder / "parcels.gpkg", layer="parcels")
    zones = gpd.read_file(folder / "parcels.gpkg", layer="zones")
    parcels = parcels[parcels["CODE_HF"] == code].reset_index(drop=True)
    zones = zones[zones["CODE_HF"] == code]
    a, b = str(parcels.loc[0, "SHOMARE"]), str(parcels.loc[1, "SHOMARE"])
    parcels.loc[0, "KARBARI"] = "تجاری" if parcels.loc[0, "KARBARI"] != "تجاری" else "باغ"
    parcels = parcels.drop(index=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v2.gpkg"
        parcels.to_file(path, layer="parcels", driver="GPKG")
        zones.to_file(path, layer="zones", driver="GPKG")
        upload = create_upload(
            Database(url), path.read_bytes(), "v2-" + SAMPLE_UPLOAD, IngestOptions()
        )
    state = process_upload(Database(url), upload)
    assert state["status"] == "published", state["report"]
    return code, a, b, before
