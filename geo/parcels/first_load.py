"""A province's first parcels: its partition built whole, then attached.

Rows inserted into an indexed table pay for every index row by row (the five of ``parcel``
cost ~40 s for a national file). A province that has no partition yet holds no parcel, so
nothing needs comparing: its partition is made as a plain table in the publish
transaction, filled in one statement, indexed in bulk (PostGIS sorts a GiST build) and
attached to ``parcel`` as its partition. A check constraint on the province, true of every
row as it goes in, spares ``ATTACH`` its scan; the parent's indexes are matched to the ones
built (their definitions are read from the parent, not repeated here).

Concurrency: ``parcel_ensure_partition`` and this module take the same advisory lock
before looking for a partition, so two publishes cannot both build one province's; the
second finds the partition and inserts into it as usual (after the first commits).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, text

__all__ = ["COLUMNS", "claim_new_provinces", "load_provinces"]

_NAME = re.compile(r"^[0-9A-Za-z]{1,16}$")  # as parcel_ensure_partition names partitions
COLUMNS = (
    "id, village_agency, village_code, parcel_no, land_use, area_declared, area_m2, geom,"
    " attrs, upload_id, province"
)


def _partition(province: str) -> str:
    return f"parcel_p{province.lower()}"


def claim_new_provinces(conn: Connection, provinces: set[str]) -> set[str]:
    """The provinces among ``provinces`` with no partition and no parcel anywhere, locked
    for this transaction: this publish builds their partitions."""
    candidates = sorted(p for p in provinces if _NAME.match(p))
    missing = conn.execute(
        text(
            "SELECT count(*) FROM unnest(CAST(:p AS text[])) p"
            " WHERE to_regclass('parcel_p' || lower(p)) IS NULL"
        ),
        {"p": candidates},
    ).scalar_one()
    if not missing:  # the usual case: no lock, publishes of other provinces go on
        return set()
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('tagsim:parcel-partitions'))"))
    rows = conn.execute(
        text("""
        SELECT p FROM unnest(CAST(:p AS text[])) p
        WHERE to_regclass('parcel_p' || lower(p)) IS NULL
          AND NOT EXISTS (SELECT 1 FROM parcel_default d WHERE d.province = p)"""),
        {"p": candidates},
    )
    return {r[0] for r in rows}


def _parent_indexes(conn: Connection) -> list[tuple[str, str, bool]]:
    """(CREATE INDEX statement, name, is the primary key) of ``parcel``'s indexes."""
    rows = conn.execute(
        text("""
        SELECT pg_get_indexdef(i.indexrelid), c.relname, i.indisprimary
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'parcel'::regclass ORDER BY c.relname""")
    ).all()
    return [(d, n, p) for d, n, p in rows]


def _build_indexes(conn: Connection, table: str) -> None:
    """The parent's indexes on ``table``, built in bulk; ``ATTACH`` adopts them."""
    for definition, name, primary in _parent_indexes(conn):
        own = name.replace("parcel", table, 1)  # ix_parcel_geom → ix_parcel_p23_geom
        conn.execute(
            text(
                re.sub(
                    r"^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+",
                    lambda m, own=own: f"CREATE {m.group(1) or ''}INDEX {own} ON {table}",
                    definition,
                )
            )
        )
        if primary:  # a parent's key is matched only by a key
            conn.execute(
                text(f"ALTER TABLE {table} ADD CONSTRAINT {own} PRIMARY KEY USING INDEX {own}")
            )


def load_provinces(
    conn: Connection, provinces: set[str], source: str, params: dict[str, Any], upload_id: int
) -> int:
    """Build, fill, index and attach the partitions of ``provinces`` (claimed by
    :func:`claim_new_provinces`) from ``source``, a query of the ``parcel`` columns in
    ``COLUMNS`` order (ids drawn from ``parcel_id_seq``); the number of parcels loaded.
    Each village's box goes into ``parcel_extent``.

    The rows are routed to their provinces in one pass through a loading table of this
    transaction, partitioned like ``parcel``, whose partitions then move to ``parcel``.
    """
    loader = f"parcel_load_{upload_id}"
    tables = {p: _partition(p) for p in sorted(provinces)}
    conn.execute(
        text(f"CREATE TABLE {loader} (LIKE parcel INCLUDING DEFAULTS) PARTITION BY LIST (province)")
    )
    for province, table in tables.items():
        conn.execute(text(f"CREATE TABLE {table} (LIKE parcel INCLUDING DEFAULTS)"))
        conn.execute(
            text(
                f"ALTER TABLE {table} ADD CONSTRAINT {table}_province"
                f" CHECK (province IS NOT NULL AND province = '{province}')"
            )
        )
        conn.execute(
            text(f"ALTER TABLE {loader} ATTACH PARTITION {table} FOR VALUES IN ('{province}')")
        )
    loaded = conn.execute(text(f"INSERT INTO {loader} ({COLUMNS}) {source}"), params).rowcount
    for table in tables.values():
        conn.execute(text(f"ALTER TABLE {loader} DETACH PARTITION {table}"))
        _build_indexes(conn, table)
        _grow_extents(conn, table)  # (statistics: autovacuum's, 0.4 s a province here)
    conn.execute(text(f"DROP TABLE {loader}"))
    # Last: attaching locks the default partition until commit.
    for province, table in tables.items():
        conn.execute(
            text(f"ALTER TABLE parcel ATTACH PARTITION {table} FOR VALUES IN ('{province}')")
        )
    return loaded


def _grow_extents(conn: Connection, table: str) -> None:
    """Each village's box in ``table`` into ``parcel_extent`` (as the insert trigger of
    ``parcel`` does for rows inserted through it)."""
    conn.execute(
        text(
            """
        INSERT INTO parcel_extent AS e (province, village_agency, village_code, extent)
        SELECT province, village_agency, village_code,
               ST_MakeEnvelope(min(ST_XMin(geom)), min(ST_YMin(geom)), max(ST_XMax(geom)),
                               max(ST_YMax(geom)), 4326)
        FROM """
            + table
            + """ GROUP BY 1, 2, 3
        ON CONFLICT (province, village_agency, village_code) DO UPDATE
          SET extent = ST_MakeEnvelope(
            least(ST_XMin(e.extent), ST_XMin(EXCLUDED.extent)),
            least(ST_YMin(e.extent), ST_YMin(EXCLUDED.extent)),
            greatest(ST_XMax(e.extent), ST_XMax(EXCLUDED.extent)),
            greatest(ST_YMax(e.extent), ST_YMax(EXCLUDED.extent)), 4326)"""
        )
    )
