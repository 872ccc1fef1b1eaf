"""Where a copy is kept: a GeoPackage file, or a table in a PostGIS database.

Both hold the snapshot's rows (``fid``: the version id, the collection's properties, the
geometry) and a one-row ``tagsim_replica`` table saying where the copy stands. A target
sets the features a change file touches and records the file as applied:

- in a GeoPackage the rows are removed with SQLite and written by GDAL (as GDAL wrote the
  snapshot), then the state is recorded; stopped between, the next run redoes the file;
- in PostGIS all three happen in one transaction.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import shapely
import shapely.geometry
from psycopg import sql

from geo.errors import InvalidParameter, NotFound
from geo.geodata.features.collections import Collection, get_collection
from geo.geodata.features.downloads import file_schema

__all__ = ["GeoPackageCopy", "PostGISCopy", "Replica", "ReplicaTarget", "open_target"]

STATE_TABLE = "tagsim_replica"
_STATE_COLUMNS = "dataset, granularity, snapshot, sequence, position, aligned, applied"


@dataclass(frozen=True)
class Replica:
    """Where a copy stands."""

    target: str
    dataset: str
    granularity: str
    snapshot: str
    sequence: int  # the last file applied (or skipped as older than the snapshot)
    position: str  # the feed position the copy holds
    aligned: bool  # position is the end of file ``sequence`` (not a snapshot's position)
    applied: int  # features set since the snapshot

    @property
    def collection(self) -> Collection:
        return get_collection(self.dataset)


class ReplicaTarget(Protocol):
    name: str
    snapshot_format: str  # the snapshot file it is made from

    def exists(self) -> bool: ...

    def create(self, snapshot: Path, replica: Replica) -> None:
        """Make the copy from the snapshot's GeoPackage, standing where ``replica`` says."""
        ...

    def state(self) -> Replica: ...

    def apply(
        self, replica: Replica, latest: dict[tuple[str, ...], Any], sequence: int, position: str
    ) -> Replica:
        """Set each feature of ``latest`` (None: remove it) and record file ``sequence``
        (ending at ``position``) as applied; returns where the copy then stands."""
        ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _next(
    replica: Replica, sequence: int, position: str, latest: dict[tuple[str, ...], Any]
) -> Replica:
    return replace(
        replica,
        sequence=sequence,
        position=position,
        aligned=True,
        applied=replica.applied + len(latest),
    )


def _wkb(state: dict[str, Any]) -> bytes:
    return shapely.to_wkb(shapely.geometry.shape(state["geometry"]), output_dimension=2)


def _values(f: pa.Field, states: list[dict[str, Any]]) -> list[Any]:
    """One column of the states, in the snapshot's types."""
    if f.name == "fid":
        return [s["id"] for s in states]
    if f.name == "geometry":
        return [_wkb(s) for s in states]
    if pa.types.is_timestamp(f.type):
        return [datetime.fromisoformat(s[f.name]) if s[f.name] else None for s in states]
    return [s[f.name] for s in states]


class GeoPackageCopy:
    """A GeoPackage file: the snapshot's own, kept in step."""

    snapshot_format = "gpkg"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)

    def exists(self) -> bool:
        return self.path.exists()

    def create(self, snapshot: Path, replica: Replica) -> None:
        partial = self.path.with_name(self.path.name + ".part")
        try:
            shutil.move(snapshot, partial)  # (from a temporary folder, maybe another disk)
            with _sqlite(partial) as db:
                db.execute(
                    f"CREATE TABLE {STATE_TABLE} (id INTEGER PRIMARY KEY CHECK (id = 1),"
                    " dataset TEXT NOT NULL, granularity TEXT NOT NULL, snapshot TEXT NOT NULL,"
                    " sequence INTEGER NOT NULL, position TEXT NOT NULL,"
                    " aligned INTEGER NOT NULL, applied INTEGER NOT NULL,"
                    " updated_at TEXT NOT NULL)"
                )
                db.execute(
                    "INSERT INTO gpkg_contents (table_name, data_type, identifier, description)"
                    " VALUES (?, 'attributes', ?, 'where this copy stands on the change files')",
                    (STATE_TABLE, STATE_TABLE),
                )
                db.execute(
                    f"INSERT INTO {STATE_TABLE} VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*_row(replica), _now()),
                )
                c = replica.collection
                keys = ", ".join(f'"{k}"' for k in c.identity)
                db.execute(f'CREATE INDEX "{c.id}_identity" ON "{c.id}" ({keys})')
            partial.rename(self.path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def state(self) -> Replica:
        if not self.path.is_file():
            raise NotFound(
                f"{self.path} is not a copy; `tagsim replicate init` it", code="no_replica"
            )
        try:
            with closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
                row = db.execute(f"SELECT {_STATE_COLUMNS} FROM {STATE_TABLE}").fetchone()
        except sqlite3.DatabaseError:
            row = None
        return _replica(self.name, row)

    def apply(
        self, replica: Replica, latest: dict[tuple[str, ...], Any], sequence: int, position: str
    ) -> Replica:
        c = replica.collection
        if latest:
            keys = ", ".join(f'"{k}"' for k in c.identity)
            marks = ", ".join("?" for _ in c.identity)
            with _sqlite(self.path) as db:
                db.execute(f"CREATE TEMP TABLE gone ({keys})")
                db.executemany(f"INSERT INTO temp.gone VALUES ({marks})", list(latest))
                db.execute(f'DELETE FROM "{c.id}" WHERE ({keys}) IN (SELECT * FROM temp.gone)')
            kept = [s for s in latest.values() if s is not None]
            if kept:  # GDAL writes the rows, as it wrote the snapshot's
                schema = file_schema(c)
                table = pa.Table.from_arrays(
                    [pa.array(_values(f, kept), type=f.type) for f in schema], schema=schema
                )
                pyogrio.write_arrow(
                    table,
                    self.path,
                    layer=c.id,
                    driver="GPKG",
                    append=True,
                    geometry_name="geometry",
                    geometry_type=c.geometry_type,
                    crs="EPSG:4326",
                )
        done = _next(replica, sequence, position, latest)
        with _sqlite(self.path) as db:
            db.execute(
                f"UPDATE {STATE_TABLE} SET sequence = ?, position = ?, aligned = 1,"
                " applied = ?, updated_at = ?",
                (done.sequence, done.position, done.applied, _now()),
            )
        return done


@contextmanager
def _sqlite(path: Path) -> Iterator[sqlite3.Connection]:
    """The GeoPackage in one SQLite transaction: committed at the end, then closed."""
    with closing(sqlite3.connect(path)) as db, db:
        yield db


def _row(r: Replica) -> tuple[Any, ...]:
    return (r.dataset, r.granularity, r.snapshot, r.sequence, r.position, int(r.aligned), r.applied)


def _replica(target: str, row: Any) -> Replica:
    if row is None:
        raise InvalidParameter(f"{target} is not a tagsim copy", code="no_replica")
    dataset, granularity, snapshot, sequence, position, aligned, applied = row
    return Replica(
        target, dataset, granularity, snapshot, sequence, position, bool(aligned), applied
    )


_PG_TYPES = {"int64": "bigint", "double": "double precision", "string": "text"}


class PostGISCopy:
    """A table named as the dataset in a PostGIS database (``postgresql://…``), with a
    primary key on ``fid`` and a GiST index; each change file applied in one transaction."""

    snapshot_format = "parquet"  # (exact to the microsecond; a GeoPackage keeps milliseconds)

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.name = self.url.split("@")[-1]  # (never the password)

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url)

    def exists(self) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (STATE_TABLE,)).fetchone()[0]  # type: ignore[index]

    def create(self, snapshot: Path, replica: Replica) -> None:
        c = replica.collection
        schema = file_schema(c)
        columns = [
            sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(_pg_type(f, c))) for f in schema
        ]
        table = pq.read_table(snapshot)
        with self._connect() as conn, conn.transaction():
            conn.execute(
                sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY (fid))").format(
                    sql.Identifier(c.id), sql.SQL(", ").join(columns)
                )
            )
            self._insert(conn, c, schema, _snapshot_rows(table, schema))
            conn.execute(
                sql.SQL("CREATE INDEX ON {} USING gist (geometry)").format(sql.Identifier(c.id))
            )
            conn.execute(
                sql.SQL("CREATE INDEX ON {} ({})").format(
                    sql.Identifier(c.id), sql.SQL(", ").join(map(sql.Identifier, c.identity))
                )
            )
            conn.execute(
                f"CREATE TABLE {STATE_TABLE} (id int PRIMARY KEY CHECK (id = 1),"
                " dataset text NOT NULL, granularity text NOT NULL, snapshot text NOT NULL,"
                " sequence bigint NOT NULL, position text NOT NULL, aligned boolean NOT NULL,"
                " applied bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.execute(
                f"INSERT INTO {STATE_TABLE} ({_STATE_COLUMNS}, id) VALUES"
                " (%s, %s, %s, %s, %s, %s, %s, 1)",
                (*_row(replica)[:5], replica.aligned, replica.applied),
            )
            conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(c.id)))

    def _insert(
        self,
        conn: psycopg.Connection[Any],
        c: Collection,
        schema: pa.Schema,
        rows: Iterator[tuple[Any, ...]],
    ) -> None:
        names = sql.SQL(", ").join(sql.Identifier(f.name) for f in schema)
        with conn.cursor().copy(
            sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(c.id), names)
        ) as copy:
            for row in rows:
                copy.write_row(row)

    def state(self) -> Replica:
        try:
            with self._connect() as conn:
                row = conn.execute(f"SELECT {_STATE_COLUMNS} FROM {STATE_TABLE}").fetchone()
        except psycopg.errors.UndefinedTable:
            raise NotFound(
                f"{self.name} holds no copy; `tagsim replicate init` it", code="no_replica"
            ) from None
        except psycopg.OperationalError as exc:
            raise InvalidParameter(f"{self.name}: {exc}", code="no_replica") from None
        return _replica(self.name, row)

    def apply(
        self, replica: Replica, latest: dict[tuple[str, ...], Any], sequence: int, position: str
    ) -> Replica:
        c = replica.collection
        schema = file_schema(c)
        done = _next(replica, sequence, position, latest)
        with self._connect() as conn, conn.transaction():
            if latest:
                keys = sql.SQL(", ").join(map(sql.Identifier, c.identity))
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE ({}) IN (SELECT * FROM unnest({}))").format(
                        sql.Identifier(c.id),
                        keys,
                        sql.SQL(", ").join(sql.SQL("%s::text[]") for _ in c.identity),
                    ),
                    [list(column) for column in zip(*latest, strict=True)],
                )
                kept = [s for s in latest.values() if s is not None]
                columns = [_values(f, kept) for f in schema]
                self._insert(conn, c, schema, _ewkb_rows(columns))
            conn.execute(
                f"UPDATE {STATE_TABLE} SET sequence = %s, position = %s, aligned = true,"
                " applied = %s, updated_at = now()",
                (done.sequence, done.position, done.applied),
            )
        return done


def _pg_type(f: pa.Field, c: Collection) -> str:
    if f.name == "geometry":
        return f"geometry({c.geometry_type}, 4326)"
    if pa.types.is_timestamp(f.type):
        return "timestamptz"
    return _PG_TYPES[str(f.type)]


def _ewkb_rows(columns: list[list[Any]]) -> Iterator[tuple[Any, ...]]:
    """Rows for COPY, the last column (WKB) as EWKB hex with SRID 4326."""
    for row in zip(*columns, strict=True):
        geometry = shapely.set_srid(shapely.from_wkb(row[-1]), 4326)
        yield (*row[:-1], shapely.to_wkb(geometry, hex=True, include_srid=True))


def _snapshot_rows(table: pa.Table, schema: pa.Schema) -> Iterator[tuple[Any, ...]]:
    """The GeoParquet snapshot's rows, in the copy's column order."""
    for batch in table.to_batches(max_chunksize=20_000):
        yield from _ewkb_rows([batch.column(f.name).to_pylist() for f in schema])


def open_target(where: str) -> ReplicaTarget:
    """``postgresql://…`` is a PostGIS database; anything else a GeoPackage file."""
    if where.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        return PostGISCopy(where)
    return GeoPackageCopy(Path(where))
