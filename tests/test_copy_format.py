"""COPY payloads (geo.geodata.parcels.copy_format, geo.geodata.parcels.stage targets) read back by
PostgreSQL as the values they were made from."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import shapely
from shapely.geometry import box
from sqlalchemy import Connection, text

from geo.geodata.parcels.copy_format import hex_wkb
from geo.geodata.parcels.prepare import Codes, Prepared, prepare
from geo.geodata.parcels.stage import ParcelRows, StageRows


def _copy(conn: Connection, statement: str, header: bytes, payload: object) -> None:
    cursor = conn.connection.dbapi_connection.cursor()
    with cursor.copy(statement) as copy:
        if header:
            copy.write(header)
        copy.write(payload)


def test_wkb_text_whichever_wkb_it_starts_from_takes_the_columns_srid(conn: Connection) -> None:
    geoms = np.array(
        [box(51, 35, 51.1, 35.1), None, shapely.Point(1, 2), shapely.from_wkt("POLYGON EMPTY")],
        dtype=object,
    )
    expected = [
        shapely.to_wkb(g, hex=True, byte_order=1).lower() if g is not None else "\\N" for g in geoms
    ]
    assert hex_wkb(geoms).to_pylist() == expected
    for order in (0, 1):  # the file's own WKB, big-endian (rewritten) or little-endian
        own = pa.array(shapely.to_wkb(geoms, byte_order=order), type=pa.binary())
        assert hex_wkb(geoms[1:], own=own.slice(1)).to_pylist() == expected[1:]
    multi = shapely.from_wkb(bytes.fromhex(hex_wkb(geoms, multi=True).to_pylist()[0]))
    assert multi.geom_type == "MultiPolygon" and multi.equals(geoms[0])
    # COPY gives the geometries the SRID their columns' types name
    conn.execute(
        text("CREATE TEMP TABLE t (m geometry(MultiPolygon, 4326), g geometry(Geometry, 4326))")
    )
    first = hex_wkb(geoms, multi=True).to_pylist()[0]
    _copy(conn, "COPY t (m, g) FROM STDIN", b"", f"{first}\t{expected[0]}\n")
    srids = conn.execute(text("SELECT ST_SRID(m), ST_SRID(g), ST_Equals(m, g) FROM t")).one()
    assert tuple(srids) == (4326, 4326, True)


def _tricky() -> pa.RecordBatch:
    """Three features with what text formats find hard: quotes, backslashes, tabs and
    newlines, Persian with ZWNJ, missing values."""
    return pa.RecordBatch.from_pydict(
        {
            "village": ["۰۱۲", "012", "x\ty"],
            "no": ['1"a', "2\\b", "3\nc"],
            "use": ["مسکونی\u200cتجاری", None, "  "],
            "area": [100.5, None, 1e-7],
            "note": ['say "hi"\t\\', None, "خط\nدوم"],
            "geometry": [
                shapely.to_wkb(box(51, 35, 51.001, 35.001)),
                shapely.to_wkb(shapely.MultiPolygon([box(52, 35, 52.001, 35.001)])),
                shapely.to_wkb(box(53, 35, 53.001, 35.001), byte_order=0),  # big-endian
            ],
        }
    )


FIELDS = {"parcel_no": "no", "village": "village", "land_use": "use", "area": "area"}


def _prepared() -> Prepared:
    return prepare(
        _tricky(),
        np.arange(1, 4),
        4326,
        FIELDS,
        lambda b: Codes.of(b.column("village").to_pylist()),
    )


def test_parcel_rows_in_binary_read_back_as_made(conn: Connection) -> None:
    p = _prepared()
    conn.execute(text("CREATE TEMP TABLE pt (LIKE parcel INCLUDING DEFAULTS)"))
    target = ParcelRows("hf", 7, {"012": "23"}, "pt", lambda n: np.arange(100, 100 + n))
    _copy(conn, target.copy_sql, target.header, target.rows(p, target.draw(p.count)))
    rows = conn.execute(
        text(
            "SELECT id, village_agency, upload_id, village_code, parcel_no, land_use,"
            " area_declared, area_m2, attrs, ST_AsBinary(geom), ST_SRID(geom), province"
            " FROM pt ORDER BY id"
        )
    ).all()
    assert [r[0] for r in rows] == [100, 101, 102]
    assert {(r[1], r[2]) for r in rows} == {("hf", 7)}
    assert [r[3] for r in rows] == p.codes.each
    assert [r[4] for r in rows] == ['1"a', "2\\b", "3\nc"]
    assert [r[5] for r in rows] == ["مسکونی\u200cتجاری", None, None]
    assert rows[0][6] == 100.5 and rows[1][6] is None and rows[2][6] == 1e-7
    assert all(math.isclose(r[7], a) for r, a in zip(rows, p.areas, strict=True))
    assert [r[8] for r in rows] == [{"note": 'say "hi"\t\\'}, {}, {"note": "خط\nدوم"}]
    for r, g in zip(rows, p.geoms, strict=True):
        stored = shapely.from_wkb(bytes(r[9]))
        assert stored.geom_type == "MultiPolygon" and stored.equals(g) and r[10] == 4326
    assert [r[11] for r in rows] == [{"012": "23"}.get(c, "") for c in p.codes.each]


def test_stage_rows_in_text_read_back_as_made(conn: Connection) -> None:
    p = _prepared()
    conn.execute(text("CREATE TEMP TABLE st (LIKE parcel_stage INCLUDING DEFAULTS)"))
    target = StageRows(5, "parcels")
    statement = target.copy_sql.replace("parcel_stage", "st")
    _copy(conn, statement, target.header, target.rows(p, None))
    rows = conn.execute(
        text("SELECT village, parcel_no, land_use, area_declared, attrs FROM st ORDER BY feature")
    ).all()
    assert [r[0] for r in rows] == p.codes.each
    assert [r[1] for r in rows] == ['1"a', "2\\b", "3\nc"]
    assert [r[2] for r in rows] == ["مسکونی\u200cتجاری", None, None]
    assert [r[3] for r in rows] == [100.5, None, 1e-7]
    assert [r[4] for r in rows] == [{"note": 'say "hi"\t\\'}, {}, {"note": "خط\nدوم"}]
