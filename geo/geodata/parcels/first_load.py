"""A province's first parcels: its partition built whole, then attached.

Rows inserted into an indexed table pay for every index row by row (the five of ``parcel``
cost ~40 s for a national file). A province that has no partition yet holds no parcel, so
nothing needs comparing: its partition is made as a plain table in the publish
transaction, filled in one statement, indexed in bulk (PostGIS sorts a GiST build) and
attached to ``parcel`` as its partition. A check constraint on the province, true of every
row as it goes in, spares ``ATTACH`` its scan; the parent's indexes are matched to the ones
built (their definitions are read from the parent, not repeated here).

A publish that streams its rows (:func:`plan_load`) commits its loading tables before it
publishes, so that their indexes can be built on two connections at once
(:func:`index_loader`); they are named ``parcel_load_<upload>_p<province>`` and take their
partition's name only when they are attached, in the publishing transaction: nothing is
published before it commits.

Concurrency: ``parcel_ensure_partition`` and this module take the same advisory lock
before looking for a partition, so two publishes cannot both build one province's; the
second finds the partition and inserts into it as usual (after the first commits). A
streamed publish holds that lock for its session, from planning to publishing; so a
loading table that anyone holding the lock can see is left over by a publish that died,
and is dropped (:func:`claim_new_provinces`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, text

from geo.geodata.parcels.extents import grow_table_extents
from geo.platform.database import Database

__all__ = [
    "COLUMNS",
    "Loader",
    "claim_new_provinces",
    "close_loader",
    "drop_loader",
    "index_loader",
    "load_provinces",
    "open_loader",
    "plan_load",
    "release_partitions",
]

_NAME = re.compile(r"^[0-9A-Za-z]{1,16}$")  # as parcel_ensure_partition names partitions
COLUMNS = (
    "id, village_agency, village_code, parcel_no, land_use, area_declared, area_m2, geom,"
    " attrs, upload_id, province"
)


_LOCK = "hashtext('tagsim:parcel-partitions')"


def _partition(province: str) -> str:
    return f"parcel_p{province.lower()}"


def claim_new_provinces(
    conn: Connection, provinces: set[str], *, for_session: bool = False
) -> set[str]:
    """The provinces among ``provinces`` with no partition and no parcel anywhere, locked
    for this transaction (``for_session``: until :func:`release_partitions`, and only
    when some are returned): this publish builds their partitions."""
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
    lock = "pg_advisory_lock" if for_session else "pg_advisory_xact_lock"
    conn.execute(text(f"SELECT {lock}({_LOCK})"))
    _drop_left_over(conn)
    rows = conn.execute(
        text("""
        SELECT p FROM unnest(CAST(:p AS text[])) p
        WHERE to_regclass('parcel_p' || lower(p)) IS NULL
          AND NOT EXISTS (SELECT 1 FROM parcel_default d WHERE d.province = p)"""),
        {"p": candidates},
    )
    claimed = {r[0] for r in rows}
    if for_session and not claimed:
        release_partitions(conn)
    return claimed


def release_partitions(conn: Connection) -> None:
    """Let go of the partitions' lock taken for the session."""
    conn.execute(text(f"SELECT pg_advisory_unlock({_LOCK})"))


def _drop_left_over(conn: Connection) -> None:
    """Loading tables of publishes that died after committing them (only such are
    visible to a holder of the partitions' lock)."""
    left = conn.execute(
        text(
            "SELECT relname FROM pg_class WHERE relname LIKE 'parcel\\_load\\_%'"
            " AND relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace"
        )
    ).scalars()
    names = ", ".join(f'"{name}"' for name in left)
    if names:
        conn.execute(text(f"DROP TABLE IF EXISTS {names}"))


def _parent_indexes(conn: Connection) -> list[tuple[str, str, bool]]:
    """(CREATE INDEX statement, name, is the primary key) of ``parcel``'s indexes."""
    rows = conn.execute(
        text("""
        SELECT pg_get_indexdef(i.indexrelid), c.relname, i.indisprimary
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'parcel'::regclass ORDER BY c.relname""")
    ).all()
    return [(d, n, p) for d, n, p in rows]


def _build_indexes(conn: Connection, table: str, partition: str) -> None:
    """The parent's indexes on ``table`` (named for ``partition``, the partition it will
    be), built in bulk; ``ATTACH`` adopts them."""
    for definition, name, primary in _parent_indexes(conn):
        own = name.replace("parcel", partition, 1)  # ix_parcel_geom → ix_parcel_p23_geom
        conn.execute(
            text(
                re.sub(
                    r"^CREATE (UNIQUE )?INDEX \S+ ON ONLY \S+",
                    functools.partial(_index_header, own, table),
                    definition,
                )
            )
        )
        if primary:  # a parent's key is matched only by a key
            conn.execute(
                text(f"ALTER TABLE {table} ADD CONSTRAINT {own} PRIMARY KEY USING INDEX {own}")
            )


@dataclass(frozen=True)
class Loader:
    """A loading table of this transaction, partitioned like ``parcel``: a plain table per
    new province (each to become its partition) and ``rest``, the default, for rows of any
    other province (they are compared with the stored maps before they go in)."""

    table: str
    rest: str
    tables: dict[str, str]  # province → the table that will be its partition


def open_loader(conn: Connection, upload_id: int, provinces: set[str]) -> Loader:
    """The loading table for ``provinces`` (claimed by :func:`claim_new_provinces`)."""
    loader = Loader(
        f"parcel_load_{upload_id}",
        f"parcel_load_{upload_id}_rest",
        {p: f"parcel_load_{upload_id}_p{p.lower()}" for p in sorted(provinces)},
    )
    drop_loader(conn, loader)  # (an earlier attempt at this upload may have left its tables)
    conn.execute(
        text(
            f"CREATE TABLE {loader.table} (LIKE parcel INCLUDING DEFAULTS)"
            " PARTITION BY LIST (province)"
        )
    )
    conn.execute(text(f"CREATE TABLE {loader.rest} PARTITION OF {loader.table} DEFAULT"))
    for province, table in loader.tables.items():
        conn.execute(text(f"CREATE TABLE {table} (LIKE parcel INCLUDING DEFAULTS)"))
        conn.execute(
            text(
                f"ALTER TABLE {table} ADD CONSTRAINT {_partition(province)}_province"
                f" CHECK (province IS NOT NULL AND province = '{province}')"
            )
        )
        conn.execute(
            text(
                f"ALTER TABLE {loader.table} ATTACH PARTITION {table} FOR VALUES IN ('{province}')"
            )
        )
    return loader


def index_loader(
    db: Database, loader: Loader, rows: dict[str, int], connections: int = 2
) -> Callable[[], None]:
    """Start building the indexes of ``loader``'s province tables (committed, with
    ``rows`` rows each) on ``connections`` connections at once, the biggest tables first;
    the call returned waits for them (and raises what building raised)."""
    lanes: list[list[str]] = [[] for _ in range(connections)]
    load = [0] * connections
    for province in sorted(loader.tables, key=lambda p: -rows.get(p, 0)):
        lane = load.index(min(load))
        lanes[lane].append(province)
        load[lane] += rows.get(province, 0)

    def build(provinces: list[str]) -> None:
        with db.begin() as conn:
            conn.execute(text("SET LOCAL synchronous_commit = off"))  # (the publish waits)
            for province in provinces:
                _build_indexes(conn, loader.tables[province], _partition(province))

    pool = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="tagsim-index")
    building = [pool.submit(build, lane) for lane in lanes if lane]
    pool.shutdown(wait=False)

    def wait() -> None:
        for done in building:
            done.result()

    return wait


def drop_loader(conn: Connection, loader: Loader) -> None:
    """Drop what is left of ``loader`` (a publish, or an attempt at it, that failed after
    committing it)."""
    names = ", ".join([loader.table, *loader.tables.values()])
    conn.execute(text(f"DROP TABLE IF EXISTS {names}"))


def close_loader(
    conn: Connection,
    loader: Loader,
    rows: dict[str, int] | None = None,
    *,
    indexed: Callable[[], None] | None = None,
) -> dict[str, int]:
    """Move the loaded provinces' tables into ``parcel`` as their partitions, indexed
    (``indexed``: by :func:`index_loader`, whose wait it is), and drop the loading table
    (``rest`` with it: its rows must be used by now). Provinces that got no row get no
    partition. ``rows``: each province's rows as the stream counted them (its villages'
    extents then written by the caller, :func:`~geo.geodata.parcels.extents.grow_seen_extents`);
    else they are counted,
    and the extents measured, in the tables. The provinces moved and their parcel counts."""
    if indexed is not None:
        indexed()
    moved = {}
    for province, table in loader.tables.items():
        conn.execute(text(f"ALTER TABLE {loader.table} DETACH PARTITION {table}"))
        if rows is None:
            count = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
        else:
            count = rows.get(province, 0)
        if not count:
            conn.execute(text(f"DROP TABLE {table}"))
            continue
        if indexed is None:
            _build_indexes(conn, table, _partition(province))
        conn.execute(text(f"ALTER TABLE {table} RENAME TO {_partition(province)}"))
        if rows is None:  # (statistics: autovacuum's, 0.4 s a province here)
            grow_table_extents(conn, _partition(province))
        moved[province] = count
    conn.execute(text(f"DROP TABLE {loader.table}"))
    # Last: attaching locks the default partition until commit.
    for province in moved:
        conn.execute(
            text(
                f"ALTER TABLE parcel ATTACH PARTITION {_partition(province)}"
                f" FOR VALUES IN ('{province}')"
            )
        )
    return moved


def load_provinces(
    conn: Connection, provinces: set[str], source: str, params: dict[str, Any], upload_id: int
) -> int:
    """Build, fill, index and attach the partitions of ``provinces`` (claimed by
    :func:`claim_new_provinces`) from ``source``, a query of the ``parcel`` columns in
    ``COLUMNS`` order (ids drawn from ``parcel_id_seq``) of these provinces only; the
    number of parcels loaded. Each village's box goes into ``parcel_extent``.

    The rows are routed to their provinces in one pass through a loading table.
    """
    loader = open_loader(conn, upload_id, provinces)
    conn.execute(text(f"INSERT INTO {loader.table} ({COLUMNS}) {source}"), params)
    return sum(close_loader(conn, loader).values())


def plan_load(
    conn: Connection, upload_id: int, agency: str, villages: set[str] | None
) -> tuple[dict[str, str], Loader]:
    """Every village's province (``parcel_provinces``) and the loading table of a publish
    that streams its rows straight in: one table per province that has no partition, no
    parcel, and no village that ever had parcels (those villages are compared), among the
    provinces of ``villages`` (None: any province, the file's villages being unknown yet).
    A loader with such tables holds the partitions' lock for the session: the caller
    releases it (:func:`release_partitions`) once the publish is over."""
    provinces: dict[str, str] = dict(
        conn.execute(
            text("SELECT village, province FROM parcel_provinces(:a)"), {"a": agency}
        ).all()
    )
    wanted = (
        set(provinces.values()) if villages is None else {provinces.get(v, "") for v in villages}
    )
    claimed = claim_new_provinces(conn, wanted, for_session=True)
    new = set(claimed)
    if new:
        stored = conn.execute(
            text("SELECT DISTINCT village_code FROM parcel_extent WHERE village_agency = :a"),
            {"a": agency},
        ).scalars()
        new -= {provinces.get(v, "") for v in stored}
    if claimed and not new:
        release_partitions(conn)
    return provinces, open_loader(conn, upload_id, new)


def _index_header(own: str, table: str, found: re.Match[str]) -> str:
    return f"CREATE {found.group(1) or ''}INDEX {own} ON {table}"
