"""Parcels partitioned by province (LIST), with per-village extents for pruning by bbox.

The partition key ``province`` is the MOI province code (MOI's list is the reference) of
the parcel's village, found by ``parcel_province(agency, village)``: the village's province
in its own agency's newest edition, then the MOI province with the same match key; ``''``
(the default partition) when the registry does not know the village. Partitions are made
on demand by ``parcel_ensure_partition(province)`` (rows already in the default partition
for that province move into it). ``parcel_extent`` keeps, per village and province, the
bounding box of every parcel ever stored there (it only grows), kept by a statement trigger:
a bbox query first asks it which provinces to read, so the planner prunes the others.

Existing rows are copied into the partitioned table (ids kept).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_COLUMNS = (
    "id, village_agency, village_code, parcel_no, land_use, area_declared, area_m2, geom,"
    " attrs, upload_id, valid_from, valid_to"
)

PROVINCE_FUNCTION = """
CREATE OR REPLACE FUNCTION parcel_province(agency text, village text) RETURNS text
LANGUAGE sql STABLE AS $$
  WITH v AS (
    SELECT d.edition_id, d.ancestors[1] AS province
    FROM edition e JOIN division d ON d.edition_id = e.id AND d.code = $2
    WHERE e.agency = $1 AND cardinality(d.ancestors) > 0
    ORDER BY coalesce(e.published_on, e.imported_at::date) DESC, e.id DESC LIMIT 1),
  p AS (
    SELECT pd.code, pd.name_key FROM v
    JOIN division pd ON pd.edition_id = v.edition_id AND pd.code = v.province),
  moi AS (
    SELECT id FROM edition WHERE agency = 'moi'
    ORDER BY coalesce(published_on, imported_at::date) DESC, id DESC LIMIT 1)
  SELECT coalesce(
    (SELECT code FROM p WHERE $1 = 'moi'),
    (SELECT m.code FROM p JOIN division m ON m.name_key = p.name_key
       AND m.level = 'province' AND m.edition_id = (SELECT id FROM moi)
     ORDER BY m.code LIMIT 1),
    '')
$$
"""

ENSURE_FUNCTION = """
CREATE OR REPLACE FUNCTION parcel_ensure_partition(province text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  part text := 'parcel_p' || lower(province);
BEGIN
  IF province !~ '^[0-9A-Za-z]{1,16}$' THEN
    RETURN 'parcel_default';
  END IF;
  IF to_regclass(part) IS NOT NULL THEN
    RETURN part;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtext('tagsim:parcel-partitions'));
  IF to_regclass(part) IS NOT NULL THEN
    RETURN part;
  END IF;
  EXECUTE format('CREATE TABLE %I (LIKE parcel INCLUDING DEFAULTS)', part);
  EXECUTE format(
    'WITH moved AS (DELETE FROM parcel_default WHERE province = %L RETURNING *)'
    ' INSERT INTO %I SELECT * FROM moved', province, part);
  EXECUTE format('ALTER TABLE parcel ATTACH PARTITION %I FOR VALUES IN (%L)', part, province);
  RETURN part;
END
$$
"""

EXTENT_TRIGGER = """
CREATE OR REPLACE FUNCTION parcel_extent_grow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO parcel_extent AS e (province, village_agency, village_code, extent)
  SELECT province, village_agency, village_code,
         ST_MakeEnvelope(min(ST_XMin(geom)), min(ST_YMin(geom)), max(ST_XMax(geom)),
                         max(ST_YMax(geom)), 4326)
  FROM new_parcels GROUP BY 1, 2, 3
  ON CONFLICT (province, village_agency, village_code) DO UPDATE
    SET extent = ST_MakeEnvelope(
      least(ST_XMin(e.extent), ST_XMin(EXCLUDED.extent)),
      least(ST_YMin(e.extent), ST_YMin(EXCLUDED.extent)),
      greatest(ST_XMax(e.extent), ST_XMax(EXCLUDED.extent)),
      greatest(ST_YMax(e.extent), ST_YMax(EXCLUDED.extent)), 4326);
  RETURN NULL;
END
$$;
CREATE TRIGGER parcel_extent_grow AFTER INSERT ON parcel
  REFERENCING NEW TABLE AS new_parcels FOR EACH STATEMENT
  EXECUTE FUNCTION parcel_extent_grow()
"""


def _indexes() -> None:
    op.execute("CREATE INDEX ix_parcel_geom ON parcel USING gist (geom)")
    op.execute("CREATE INDEX ix_parcel_upload_id ON parcel (upload_id)")
    op.execute("CREATE INDEX ix_parcel_valid ON parcel (valid_from, valid_to)")
    op.execute(
        "CREATE INDEX ix_parcel_village_current ON parcel (village_agency, village_code)"
        " WHERE valid_to IS NULL"
    )


def _table(partitioned: bool) -> None:
    key = ", province" if partitioned else ""
    province = "province text NOT NULL DEFAULT ''," if partitioned else ""
    by = " PARTITION BY LIST (province)" if partitioned else ""
    op.execute(f"""
        CREATE TABLE parcel (
            id bigint NOT NULL DEFAULT nextval('parcel_id_seq'),
            village_agency text NOT NULL,
            village_code text NOT NULL,
            parcel_no text NOT NULL,
            land_use text,
            area_declared double precision,
            area_m2 double precision NOT NULL,
            geom geometry(MULTIPOLYGON, 4326) NOT NULL,
            attrs jsonb NOT NULL DEFAULT '{{}}',
            upload_id bigint,
            valid_from timestamptz NOT NULL DEFAULT now(),
            valid_to timestamptz,
            {province}
            CONSTRAINT pk_parcel PRIMARY KEY (id{key}),
            CONSTRAINT fk_parcel_upload_id_upload FOREIGN KEY (upload_id) REFERENCES upload (id)
        ){by}""")
    op.execute("ALTER SEQUENCE parcel_id_seq OWNED BY parcel.id")


def _set_aside(name: str) -> None:
    """Rename ``parcel`` to ``name`` (its data is copied from there), freeing its names."""
    op.execute("ALTER SEQUENCE parcel_id_seq OWNED BY NONE")
    op.execute(f"ALTER TABLE parcel RENAME TO {name}")
    for constraint in ("pk_parcel", "fk_parcel_upload_id_upload"):
        op.execute(f"ALTER TABLE {name} RENAME CONSTRAINT {constraint} TO old_{constraint}")
    for index in ("geom", "upload_id", "valid", "village_current"):
        op.execute(f"DROP INDEX ix_parcel_{index}")


def upgrade() -> None:
    _set_aside("parcel_unpartitioned")
    _table(partitioned=True)
    op.execute("CREATE TABLE parcel_default PARTITION OF parcel DEFAULT")
    _indexes()
    op.execute("""
        CREATE TABLE parcel_extent (
            province text NOT NULL,
            village_agency text NOT NULL,
            village_code text NOT NULL,
            extent geometry(POLYGON, 4326) NOT NULL,
            CONSTRAINT pk_parcel_extent PRIMARY KEY (province, village_agency, village_code)
        )""")
    op.execute("CREATE INDEX ix_parcel_extent_extent ON parcel_extent USING gist (extent)")
    op.execute(
        "CREATE INDEX ix_parcel_extent_village ON parcel_extent (village_agency, village_code)"
    )
    op.execute(PROVINCE_FUNCTION)
    op.execute(ENSURE_FUNCTION)
    op.execute(EXTENT_TRIGGER)
    op.execute("""
        CREATE TEMP TABLE parcel_move_province ON COMMIT DROP AS
        SELECT village_agency, village_code,
               parcel_province(village_agency, village_code) AS province
        FROM (SELECT DISTINCT village_agency, village_code FROM parcel_unpartitioned) v""")
    op.execute(
        "SELECT parcel_ensure_partition(province)"
        " FROM (SELECT DISTINCT province FROM parcel_move_province) p"
    )
    op.execute(f"""
        INSERT INTO parcel ({_COLUMNS}, province)
        SELECT {", ".join("o." + c.strip() for c in _COLUMNS.split(","))}, m.province
        FROM parcel_unpartitioned o JOIN parcel_move_province m
          USING (village_agency, village_code)""")
    op.execute("DROP TABLE parcel_unpartitioned")


def downgrade() -> None:
    _set_aside("parcel_partitioned")
    _table(partitioned=False)
    _indexes()
    op.execute(f"INSERT INTO parcel ({_COLUMNS}) SELECT {_COLUMNS} FROM parcel_partitioned")
    op.execute("DROP TABLE parcel_partitioned")
    op.execute("DROP TABLE parcel_extent")
    op.execute("DROP FUNCTION parcel_extent_grow()")
    op.execute("DROP FUNCTION parcel_ensure_partition(text)")
    op.execute("DROP FUNCTION parcel_province(text, text)")
