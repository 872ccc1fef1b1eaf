"""Parcel changes are stored a village at a time and read a parcel at a time.

A publish wrote one ``change`` row per parcel with its states copied in as GeoJSON: 1.2
million rows for a national file, 13 s for the rows alone (three btree indexes, a sequence
and a transaction id per row) and ~20 s more for the states. The parcel versions already
hold those states and never change once written (a version is only closed). So a publish
now writes one row per village and operation: ``province`` and the ids of the versions
inserted (``after_ids``) and closed (``before_ids``; both, aligned, for an update).
``change_event`` reads them back as one event per parcel, with the states rendered from
the versions: the feed, webhooks and the digest read events, not rows. An event's place
in the feed is (txid, id, part); ``part`` is 0 for a change row of a single entity.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

PARCEL_STATE = """
CREATE FUNCTION parcel_state(p parcel) RETURNS json LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN p.id IS NOT NULL THEN json_build_object(
    'parcel_no', p.parcel_no, 'land_use', p.land_use, 'area_declared', p.area_declared,
    'area_m2', round(p.area_m2::numeric, 2), 'attrs', p.attrs,
    'geometry', ST_AsGeoJSON(p.geom, 7)::json) END
$$
"""

CHANGE_EVENT = """
CREATE VIEW change_event AS
SELECT c.txid, c.id, coalesce(m.n, 0) AS part, c.entity_kind,
       CASE WHEN c.province IS NULL THEN c.entity_id
            ELSE c.entity_id || ':' || coalesce(pa.parcel_no, pb.parcel_no) END AS entity_id,
       c.operation, c.occurred_at, c.cause,
       CASE WHEN c.province IS NULL THEN c.before ELSE parcel_state(pb) END AS before,
       CASE WHEN c.province IS NULL THEN c.after ELSE parcel_state(pa) END AS after,
       CASE WHEN c.province IS NULL THEN ST_SetSRID(ST_GeomFromGeoJSON(
              coalesce(c.after, c.before)->'geometry'), 4326)
            ELSE coalesce(pa.geom, pb.geom) END AS geom
FROM change c
LEFT JOIN LATERAL unnest(c.after_ids, c.before_ids) WITH ORDINALITY AS m(after_id, before_id, n)
  ON c.province IS NOT NULL
LEFT JOIN parcel pa ON pa.id = m.after_id AND pa.province = c.province
LEFT JOIN parcel pb ON pb.id = m.before_id AND pb.province = c.province
"""


def upgrade() -> None:
    op.execute(
        "ALTER TABLE change ADD COLUMN province text, ADD COLUMN after_ids bigint[],"
        " ADD COLUMN before_ids bigint[],"
        " ADD CONSTRAINT ck_change_parcel_set CHECK (province IS NULL OR entity_kind = 'parcel')"
    )
    op.execute(PARCEL_STATE)
    op.execute(CHANGE_EVENT)


def downgrade() -> None:
    op.execute("DROP VIEW change_event")
    op.execute("DROP FUNCTION parcel_state(parcel)")
    op.execute(
        "ALTER TABLE change DROP CONSTRAINT ck_change_parcel_set, DROP COLUMN province,"
        " DROP COLUMN after_ids, DROP COLUMN before_ids"
    )
