"""Downloads of a selection: GeoPackage, FlatGeobuf, zipped Shapefile, GeoParquet, CSV.

Rows leave PostgreSQL through a server-side cursor in chunks and go to GDAL (pyogrio's
Arrow writer) batch by batch, so memory stays bounded whatever the size of the selection.
GeoParquet is written by pyarrow (the geometry as WKB, the ``geo`` metadata of GeoParquet
1.1 with the CRS as PROJJSON), batch by batch too. CSV is produced while it is sent.
Persian text is written as UTF-8 (the Shapefile gets a ``.cpg`` saying so, which GIS
programs read).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyogrio
from sqlalchemy import Connection, text

from geo.errors import InvalidParameter
from geo.geodata.features.collections import Collection
from geo.geodata.features.query import FeatureQuery

__all__ = ["FORMATS", "Download", "can_write", "csv_chunks", "file_schema", "write_file"]

CHUNK = 20_000


@dataclass(frozen=True)
class Format:
    driver: str | None
    extension: str
    media_type: str


FORMATS = {
    "gpkg": Format("GPKG", "gpkg", "application/geopackage+sqlite3"),
    "fgb": Format("FlatGeobuf", "fgb", "application/flatgeobuf"),
    "shp": Format("ESRI Shapefile", "zip", "application/zip"),
    "parquet": Format(None, "parquet", "application/vnd.apache.parquet"),
    "csv": Format(None, "csv", "text/csv; charset=utf-8"),
}
_ARROW = {"string": pa.string(), "number": pa.float64(), "integer": pa.int64()}


@dataclass
class Download:
    """A written file to send, and the folder to remove once sent."""

    path: Path
    folder: Path
    media_type: str
    filename: str
    features: int

    def chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        try:
            with self.path.open("rb") as f:
                while block := f.read(size):
                    yield block
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _columns(c: Collection, *, for_shapefile: bool) -> list[tuple[str, str, Any]]:
    """(output name, SQL expression, Arrow type) of each property."""
    out = []
    for name, expr, kind in c.properties:
        arrow_type = _ARROW[kind]
        sql = expr
        if name in {"valid_from", "valid_to"}:
            if for_shapefile:  # a .dbf date has no time of day: keep the full time as text
                sql, arrow_type = (
                    f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                    pa.string(),
                )
            else:
                arrow_type = pa.timestamp("us", tz="UTC")
        elif kind == "number":
            sql = f"CAST({expr} AS float8)"
        elif kind == "string":
            sql = f"CAST({expr} AS text)"
        label = c.shapefile_names.get(name, name)[:10] if for_shapefile else name
        out.append((label, sql, arrow_type))
    return out


def file_schema(c: Collection, *, for_shapefile: bool = False) -> pa.Schema:
    """The Arrow schema of a file of ``c``: ``fid`` (the row's id), its properties, WKB
    ``geometry`` (the replication client writes its rows with it too)."""
    return pa.schema(
        [
            pa.field("fid", pa.int64()),
            *(
                pa.field(name, arrow_type)
                for name, _, arrow_type in _columns(c, for_shapefile=for_shapefile)
            ),
            pa.field("geometry", pa.binary(), metadata={"ARROW:extension:name": "geoarrow.wkb"}),
        ]
    )


def _select(
    conn: Connection, q: FeatureQuery, columns: list[tuple[str, str, Any]], geometry: str
) -> tuple[str, dict[str, Any]]:
    where, params = q.where(conn, paged=True)
    select = ", ".join(f"{sql} AS c{i}" for i, (_, sql, _) in enumerate(columns))
    limit = "" if q.limit is None else f" LIMIT {int(q.limit)}"
    return (
        f"SELECT t.id, {select}, {geometry} AS geometry FROM {q.collection.table}"
        f" WHERE {where} ORDER BY {q.order()}{limit}",
        params,
    )


def _batches(
    conn: Connection, sql: str, params: dict[str, Any], schema: pa.Schema, counter: list[int]
) -> Iterator[pa.RecordBatch]:
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(text(sql), params)
    for rows in result.partitions(CHUNK):
        columns = list(zip(*rows, strict=True))
        counter[0] += len(rows)
        yield pa.RecordBatch.from_arrays(
            [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)],
            schema=schema,
        )


def can_write(collection: Collection, fmt: str) -> bool:
    """Whether ``fmt`` can hold the collection (a Shapefile holds one geometry type)."""
    return not (fmt == "shp" and collection.geometry_type == "Geometry")


def write_file(conn: Connection, q: FeatureQuery, fmt: str) -> Download:
    """Write the selection to a temporary file in ``fmt`` (gpkg, fgb or shp)."""
    spec = FORMATS[fmt]
    c = q.collection
    shapefile = fmt == "shp"
    if not can_write(c, fmt):
        raise InvalidParameter(
            f"a Shapefile holds one geometry type and {c.id} mix points and polygons;"
            " ask for gpkg, fgb, csv or GeoJSON",
            code="format_unsupported",
            field="f",
        )
    columns = _columns(c, for_shapefile=shapefile)
    schema = file_schema(c, for_shapefile=shapefile)
    geometry = f"ST_AsBinary({q.crs.wrap(c.geometry)})"
    if q.crs.lat_first:  # files keep the GIS (lon, lat) order whatever the URI says
        geometry = f"ST_AsBinary({c.geometry})"
    sql, params = _select(conn, q, columns, geometry)
    folder = Path(tempfile.mkdtemp(prefix="tagsim-download-"))
    path = folder / f"{c.id}.{'shp' if shapefile else spec.extension}"
    counter = [0]
    if fmt == "parquet":
        try:
            _write_parquet(path, schema, _batches(conn, sql, params, schema, counter), c, q)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return Download(path, folder, spec.media_type, f"{c.id}.parquet", counter[0])
    try:
        reader = pa.RecordBatchReader.from_batches(
            schema, _batches(conn, sql, params, schema, counter)
        )
        pyogrio.write_arrow(
            reader,
            path,
            layer=c.id,
            driver=spec.driver,
            geometry_name="geometry",
            geometry_type="Unknown" if c.geometry_type == "Geometry" else c.geometry_type,
            crs=f"EPSG:{q.crs.epsg}",
            **({"encoding": "UTF-8"} if shapefile else {}),
            # divisions mix points, polygons and units with neither: FlatGeobuf's spatial
            # index refuses a NULL geometry ("NULL geometry not supported")
            **(
                {"layer_options": {"SPATIAL_INDEX": "NO"}}
                if fmt == "fgb" and c.geometry_type == "Geometry"
                else {}
            ),
        )
        if shapefile:
            archive = folder / f"{c.id}.zip"
            with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
                for part in sorted(folder.glob(f"{c.id}.*")):
                    if part != archive:
                        z.write(part, part.name)
            path = archive
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Download(path, folder, spec.media_type, f"{c.id}.{spec.extension}", counter[0])


def _write_parquet(
    path: Path,
    schema: pa.Schema,
    batches: Iterator[pa.RecordBatch],
    c: Collection,
    q: FeatureQuery,
) -> None:
    """GeoParquet 1.1: the batches as they come, the ``geo`` metadata saying the geometry
    column, its encoding, its types and its CRS (PROJJSON)."""
    import pyarrow.parquet as pq
    from pyproj import CRS

    kinds = [] if c.geometry_type == "Geometry" else [c.geometry_type]
    geo = {
        "version": "1.1.0",
        "primary_column": "geometry",
        "columns": {
            "geometry": {
                "encoding": "WKB",
                "geometry_types": kinds,
                "crs": CRS.from_epsg(q.crs.epsg).to_json_dict(),
            }
        },
    }
    plain = pa.schema(
        [pa.field(f.name, f.type) for f in schema],
        metadata={b"geo": json.dumps(geo).encode()},
    )
    with pq.ParquetWriter(path, plain, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=plain))


def csv_chunks(conn: Connection, q: FeatureQuery) -> Iterator[bytes]:
    """The selection as CSV (UTF-8 with BOM, geometry as WKT), produced while sent."""
    c = q.collection
    columns = _columns(c, for_shapefile=False)
    sql, params = _select(
        conn, q, columns, f"ST_AsText({q.crs.wrap(c.geometry)}, {q.crs.decimals})"
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["fid", *(name for name, _, _ in columns), "wkt"])
    yield ("\ufeff" + buffer.getvalue()).encode("utf-8")
    result = conn.execution_options(stream_results=True, yield_per=CHUNK).execute(text(sql), params)
    for rows in result.partitions(CHUNK):
        buffer.seek(0)
        buffer.truncate()
        for row in rows:
            writer.writerow([v.isoformat() if hasattr(v, "isoformat") else v for v in row])
        yield buffer.getvalue().encode("utf-8")
