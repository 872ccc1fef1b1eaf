"""Every village's province at once: ``parcel_provinces(agency)``.

A publish that writes parcels straight into their province partitions must know each
village's province before the first row streams, for a file of any village. Asking
``parcel_province(agency, village)`` once per village costs a planned lookup each (~50 µs,
seconds for a national list); this set-returning function answers the same for every
village of the agency in one query (the same rule: the village's province in its agency's
newest edition that lists it, then the MOI province with the same match key; ``''`` when
none matches; villages the registry does not know are absent). The per-village function
stays for single lookups; a test holds the two to the same answers.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

PROVINCES_FUNCTION = """
CREATE OR REPLACE FUNCTION parcel_provinces(agency text)
RETURNS TABLE (village text, province text) LANGUAGE sql STABLE AS $$
  WITH v AS (
    SELECT DISTINCT ON (d.code) d.code, d.edition_id, d.ancestors[1] AS province
    FROM edition e JOIN division d ON d.edition_id = e.id
    WHERE e.agency = $1 AND cardinality(d.ancestors) > 0
    ORDER BY d.code, coalesce(e.published_on, e.imported_at::date) DESC, e.id DESC),
  p AS (
    SELECT v.code, pd.code AS province, pd.name_key FROM v
    JOIN division pd ON pd.edition_id = v.edition_id AND pd.code = v.province),
  moi AS (
    SELECT id FROM edition WHERE agency = 'moi'
    ORDER BY coalesce(published_on, imported_at::date) DESC, id DESC LIMIT 1),
  m AS (
    SELECT DISTINCT ON (name_key) name_key, code FROM division
    WHERE level = 'province' AND edition_id = (SELECT id FROM moi) ORDER BY name_key, code)
  SELECT p.code, CASE WHEN $1 = 'moi' THEN p.province ELSE coalesce(m.code, '') END
  FROM p LEFT JOIN m USING (name_key)
$$
"""


def upgrade() -> None:
    op.execute(PROVINCES_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION parcel_provinces(text)")
