"""Every village with a province gets a partition, whatever its province is called.

``parcel_province`` and ``parcel_provinces`` gave a village the MOI province whose name
matched its own province's (``''``, the default partition, otherwise). An agency whose
province names do not match MOI's list — or imported before MOI's — had every parcel in
``parcel_default``: no pruning, and no first-load path (a national HF map took 87 s instead
of 48 s). Now, failing a name match, the village's own province code prefixed by its agency
(``hf01``) names the partition: independent of how provinces are written. ``''`` stays for a
village whose list gives it no province. A village whose province later resolves to MOI's
(MOI's list imported) is compared with its stored map as any village whose province changed.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

PROVINCE = """
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
    (SELECT $1 || code FROM p),
    '')
$$
"""

PROVINCES = """
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
  SELECT p.code,
         CASE WHEN $1 = 'moi' THEN p.province ELSE coalesce(m.code, $1 || p.province) END
  FROM p LEFT JOIN m USING (name_key)
$$
"""


def upgrade() -> None:
    op.execute(PROVINCE)
    op.execute(PROVINCES)


def downgrade() -> None:
    # the functions as 0009 and 0015 made them: no fallback to the agency's own code
    op.execute(PROVINCE.replace("    (SELECT $1 || code FROM p),\n", ""))
    op.execute(PROVINCES.replace("coalesce(m.code, $1 || p.province)", "coalesce(m.code, '')"))
