"""Parcels partitioned by province: where rows go, pruning shown by EXPLAIN, data moved."""

from __future__ import annotations

import re

from sqlalchemy import Connection, text

from geo.geodata.features.collections import PARCELS
from geo.geodata.features.query import FeatureQuery
from geo.platform import migrate
from geo.platform.database import Database, dispose


def _partitions_in_plan(conn: Connection, q: FeatureQuery) -> set[str]:
    where, params = q.where(conn)
    plan = conn.execute(
        text(f"EXPLAIN (COSTS OFF) SELECT t.id FROM parcel t WHERE {where}"), params
    ).scalars()
    return set(re.findall(r"\bon (parcel_(?:p\w+|default))\b", "\n".join(plan)))


def _village(conn: Connection) -> tuple[str, str, list[float]]:
    row = conn.execute(
        text(
            "SELECT village_code, province, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
            " FROM (SELECT village_code, province, ST_Extent(geom)::geometry AS e FROM parcel"
            "  WHERE valid_to IS NULL GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1) v"
        )
    ).one()
    return row[0], row[1], [float(v) for v in row[2:]]


def test_sample_parcels_sit_in_their_provinces_partitions(sample_url: str) -> None:
    with Database(sample_url).connect() as conn:
        placed = conn.execute(
            text(
                "SELECT tableoid::regclass::text, province, count(DISTINCT village_code)"
                " FROM parcel GROUP BY 1, 2"
            )
        ).all()
        moi_provinces = set(
            conn.execute(
                text(
                    "SELECT d.code FROM division d JOIN edition e ON e.id = d.edition_id"
                    " WHERE e.agency = 'moi' AND d.level = 'province'"
                )
            ).scalars()
        )
    assert len(placed) >= 2, placed  # the sample spans Tehran and Qom
    for table, province, _villages in placed:
        assert province in moi_provinces  # the reference (MOI) province code
        assert table == f"parcel_p{province}"  # not the default partition


def test_a_village_or_a_bbox_reads_one_partition(sample_url: str) -> None:
    with Database(sample_url).connect() as conn:
        code, province, box = _village(conn)
        everything = _partitions_in_plan(conn, FeatureQuery(PARCELS))
        by_village = _partitions_in_plan(
            conn, FeatureQuery(PARCELS, filters={"village": f"hf:{code}"})
        )
        by_bbox = _partitions_in_plan(conn, FeatureQuery(PARCELS, bbox=tuple(box)))
        nowhere = _partitions_in_plan(conn, FeatureQuery(PARCELS, bbox=(44.0, 38.0, 44.1, 38.1)))
    assert len(everything) >= 3  # every province partition and the default one
    assert by_village == {f"parcel_p{province}"}
    assert by_bbox == {f"parcel_p{province}"}
    assert nowhere == set()  # no parcel was ever stored there: nothing to read


def test_a_new_province_gets_its_partition_and_rows_move_out_of_the_default(
    sample_url: str,
) -> None:
    with Database(sample_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO parcel (village_agency, village_code, parcel_no, area_m2, geom,"
                " province) VALUES ('hf', 'x-1', '1', 1,"
                " ST_Multi(ST_MakeEnvelope(51.0, 35.0, 51.0001, 35.0001, 4326)), '99')"
            )
        )
        assert (
            conn.execute(
                text("SELECT tableoid::regclass::text FROM parcel WHERE village_code = 'x-1'")
            ).scalar_one()
            == "parcel_default"
        )
        made = conn.execute(text("SELECT parcel_ensure_partition('99')")).scalar_one()
        again = conn.execute(text("SELECT parcel_ensure_partition('99')")).scalar_one()
        odd = conn.execute(text("SELECT parcel_ensure_partition('a b;')")).scalar_one()
        where = conn.execute(
            text("SELECT tableoid::regclass::text FROM parcel WHERE village_code = 'x-1'")
        ).scalar_one()
        extent = conn.execute(
            text("SELECT province FROM parcel_extent WHERE village_code = 'x-1'")
        ).scalar_one()
        conn.execute(text("DELETE FROM parcel WHERE village_code = 'x-1'"))
        conn.execute(text("DELETE FROM parcel_extent WHERE village_code = 'x-1'"))
        conn.execute(text("DROP TABLE parcel_p99"))
    assert (made, again, odd) == ("parcel_p99", "parcel_p99", "parcel_default")
    assert where == "parcel_p99"
    assert extent == "99"  # the trigger recorded where the row went


def test_the_migration_moves_existing_parcels_both_ways(sample_url: str) -> None:
    def rows() -> set[tuple[int, str, str]]:
        with Database(sample_url).connect() as conn:
            return set(conn.execute(text("SELECT id, parcel_no, village_code FROM parcel")).all())

    before = rows()
    migrate.downgrade(sample_url, "0008")
    dispose(sample_url)
    with Database(sample_url).connect() as conn:
        kind = conn.execute(
            text("SELECT relkind FROM pg_class WHERE relname = 'parcel'")
        ).scalar_one()
    assert kind == "r" and rows() == before
    migrate.upgrade(sample_url)
    dispose(sample_url)
    with Database(sample_url).connect() as conn:
        kind = conn.execute(
            text("SELECT relkind FROM pg_class WHERE relname = 'parcel'")
        ).scalar_one()
        in_default = conn.execute(text("SELECT count(*) FROM parcel_default")).scalar_one()
        extents = conn.execute(text("SELECT count(*) FROM parcel_extent")).scalar_one()
        villages = conn.execute(
            text("SELECT count(DISTINCT (village_agency, village_code)) FROM parcel")
        ).scalar_one()
        next_id = conn.execute(text("SELECT nextval('parcel_id_seq')")).scalar_one()
    assert kind == "p" and rows() == before
    assert in_default == 0
    assert extents == villages
    assert next_id > max(i for i, _, _ in before)  # the sequence went along
