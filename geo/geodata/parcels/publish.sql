-- The statements of publish.py, in the order a publish runs them. Temporary tables live
-- until the transaction ends: pub_village (the villages published and their provinces),
-- pub_new (their new maps), pub_cur (their current maps), pub_diff (what differs), pub_ins
-- (the versions written).

-- name: stage_provinces
-- Each staged village's province (the partition its parcels go to).
SELECT village, parcel_province(:a, village)
FROM (SELECT DISTINCT village FROM parcel_stage WHERE upload_id = :u) v;

-- name: create_pub_village
-- The villages and their provinces in a table of their own: a registry lookup inlined into
-- the joins was evaluated for every parcel (60 s nationally).
CREATE TEMP TABLE pub_village ON COMMIT DROP AS
SELECT * FROM unnest(CAST(:v AS text[]), CAST(:p AS text[])) AS x(village, province);

-- name: analyze_pub_village
ANALYZE pub_village;

-- name: lock_villages
-- Each village's advisory lock, taken in code order: two uploads of one village apply one
-- after the other, and no two publishes deadlock.
SELECT pg_advisory_xact_lock(hashtextextended('village:' || :a || ':' || village, 0))
FROM (SELECT village FROM pub_village ORDER BY 1) villages;

-- name: provinces_published
SELECT DISTINCT province FROM pub_village;

-- name: provinces_with_stored_parcels
-- Provinces of villages that already have current parcels (under any province: a village
-- whose province changed is compared with its stored map, not loaded anew).
SELECT DISTINCT v.province FROM pub_village v WHERE EXISTS (
  SELECT 1 FROM parcel p WHERE p.village_agency = :a AND p.village_code = v.village
    AND p.valid_to IS NULL);

-- name: ensure_partitions
SELECT parcel_ensure_partition(p) FROM unnest(CAST(:p AS text[])) p;

-- name: first_load_rows
-- A staged parcel as a row of parcel (first_load.COLUMNS), for the provinces :new.
SELECT nextval('parcel_id_seq'), :a, s.village, s.parcel_no, s.land_use, s.area_declared,
       coalesce(s.area_m2, ST_Area(s.geom::geography)), ST_Multi(s.geom), s.attrs,
       CAST(:u AS bigint),
       v.province
FROM parcel_stage s JOIN pub_village v USING (village)
WHERE s.upload_id = :u AND s.layer = 'parcels' AND v.province = ANY(CAST(:new AS text[]));

-- name: change_sets_of_first_loads
-- One change row per village of the provinces :new (every parcel there is this upload's,
-- an insert), naming its versions in id order.
INSERT INTO change (entity_kind, entity_id, operation, cause, province, after_ids)
SELECT 'parcel', :a || ':' || village_code, 'insert', CAST(:cause AS jsonb), province,
       array_agg(id ORDER BY id)
FROM parcel WHERE province = ANY(CAST(:new AS text[]))
GROUP BY village_code, province;

-- name: forget_first_loads
DELETE FROM pub_village WHERE province = ANY(CAST(:new AS text[]));

-- name: create_pub_new_from_stage
-- The staged parcels as the comparison takes them.
CREATE TEMP TABLE pub_new ON COMMIT DROP AS
SELECT s.village, s.parcel_no, s.land_use, s.area_declared, s.attrs,
       ST_Multi(s.geom) AS geom, coalesce(s.area_m2, ST_Area(s.geom::geography)) AS area_m2,
       v.province
FROM parcel_stage s JOIN pub_village v USING (village)
WHERE s.upload_id = :u AND s.layer = 'parcels';

-- name: create_pub_cur
-- The current maps of the villages published.
CREATE TEMP TABLE pub_cur ON COMMIT DROP AS
SELECT p.id, p.province, p.village_code AS village, p.parcel_no, p.land_use,
       p.area_declared, p.area_m2, p.attrs, p.geom FROM parcel p
WHERE p.village_agency = :a AND p.valid_to IS NULL
  AND p.village_code IN (SELECT village FROM pub_village);

-- name: create_pub_diff
-- Parcels matched by (village, number): new, removed, or changed in shape (same_shape,
-- migration 0018), land use, declared area or attributes.
CREATE TEMP TABLE pub_diff ON COMMIT DROP AS
SELECT coalesce(n.village, c.village) AS village,
       coalesce(n.parcel_no, c.parcel_no) AS parcel_no, c.id AS old_id,
       CASE WHEN c.id IS NULL THEN 'insert' WHEN n.parcel_no IS NULL THEN 'delete'
            ELSE 'update' END AS op
FROM pub_new n FULL JOIN pub_cur c
  ON c.village = n.village AND c.parcel_no = n.parcel_no
WHERE c.id IS NULL OR n.parcel_no IS NULL OR NOT (
    same_shape(c.geom, n.geom)
    AND c.land_use IS NOT DISTINCT FROM n.land_use
    AND c.area_declared IS NOT DISTINCT FROM n.area_declared
    AND c.attrs = n.attrs);

-- name: updates_of_text_only
-- Updates where only land use or attributes differ: publish.py compares their texts by
-- match key and forgives differences of spelling.
SELECT d.village, d.parcel_no, c.land_use, n.land_use, c.attrs, n.attrs
FROM pub_diff d JOIN pub_cur c ON c.id = d.old_id
JOIN pub_new n ON n.village = d.village AND n.parcel_no = d.parcel_no
WHERE d.op = 'update' AND c.area_declared IS NOT DISTINCT FROM n.area_declared
  AND (c.land_use IS DISTINCT FROM n.land_use OR c.attrs <> n.attrs)
  AND same_shape(c.geom, n.geom);

-- name: forgive_updates
DELETE FROM pub_diff WHERE (village, parcel_no) IN
  (SELECT * FROM unnest(CAST(:v AS text[]), CAST(:n AS text[])));

-- name: close_old_versions
UPDATE parcel p SET valid_to = now() FROM pub_diff d JOIN pub_cur c ON c.id = d.old_id
WHERE p.id = c.id AND p.province = c.province AND d.op IN ('update', 'delete');

-- name: create_pub_ins
-- New versions take their ids first: the change sets name them.
CREATE TEMP TABLE pub_ins ON COMMIT DROP AS
SELECT nextval('parcel_id_seq') AS id, d.old_id, d.op, n.*
FROM pub_new n JOIN pub_diff d ON d.village = n.village
  AND d.parcel_no = n.parcel_no AND d.op <> 'delete';

-- name: insert_new_versions
INSERT INTO parcel (id, village_agency, village_code, parcel_no, land_use, area_declared,
                    area_m2, geom, attrs, upload_id, province)
SELECT id, :a, village, parcel_no, land_use, area_declared, area_m2, geom, attrs, :u,
       province
FROM pub_ins;

-- name: change_sets_of_comparison
-- One change row per village and operation (migration 0013), naming the versions in id
-- order: the feed reads each row back as one event per parcel.
INSERT INTO change (entity_kind, entity_id, operation, cause, province, after_ids,
                    before_ids)
SELECT 'parcel', :a || ':' || village, op, CAST(:cause AS jsonb), province,
       CASE WHEN op <> 'delete'
            THEN array_agg(after_id ORDER BY coalesce(after_id, before_id)) END,
       CASE WHEN op <> 'insert'
            THEN array_agg(before_id ORDER BY coalesce(after_id, before_id)) END
FROM (SELECT village, province, op, id AS after_id, old_id AS before_id FROM pub_ins
      UNION ALL
      SELECT d.village, c.province, 'delete', NULL, d.old_id
      FROM pub_diff d JOIN pub_cur c ON c.id = d.old_id WHERE d.op = 'delete') v
GROUP BY village, province, op;

-- name: mark_changed_area
-- The next version of the parcels' data, with the box of what this publish changed: its
-- villages' (:villages) boxes (they only grow, holding every version of their parcels). Run last in the
-- publish: the version row stays locked only until the commit. Areas older than the last
-- 10,000 versions are forgotten (a cache that far behind starts afresh).
WITH v AS (
    UPDATE data_version SET version = version + 1, changed_at = now(),
        -- the first publish's rows (a first load's were written before this transaction):
        -- read once, while the table holds only them
        since = coalesce(since, (SELECT min(valid_from) FROM parcel))
    WHERE dataset = 'parcels' RETURNING version),
box AS (
    SELECT ST_Extent(e.extent) AS b FROM parcel_extent e
    WHERE e.village_agency = :a AND e.village_code = ANY(CAST(:villages AS text[]))),
kept AS (
    DELETE FROM data_change_area WHERE dataset = 'parcels'
      AND version <= (SELECT version FROM v) - 10000)
INSERT INTO data_change_area (dataset, version, x0, y0, x1, y1)
SELECT 'parcels', v.version, ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM v, box;

-- name: counts_by_operation
SELECT op, count(*) FROM pub_diff GROUP BY op;

-- name: publish_zones
-- The staged zones as their villages' new guide-plan zones (changed ones only), each
-- change announced on the feed with the zone before and after.
WITH staged AS (
    SELECT village, ST_Multi(ST_Union(geom)) AS zone FROM parcel_stage
    WHERE upload_id = :u AND layer = 'zone' GROUP BY village),
changed AS (
    SELECT s.village, s.zone, g.id AS old_id, g.zone AS old_zone FROM staged s
    LEFT JOIN guide_plan g ON g.village_agency = :a AND g.village_code = s.village
      AND g.valid_to IS NULL
    WHERE g.id IS NULL OR NOT same_shape(g.zone, s.zone)),
closed AS (
    UPDATE guide_plan SET valid_to = now() WHERE id IN (SELECT old_id FROM changed)),
opened AS (
    INSERT INTO guide_plan (village_agency, village_code, zone, upload_id)
    SELECT :a, village, zone, :u FROM changed)
INSERT INTO change (entity_kind, entity_id, operation, cause, before, after)
SELECT 'guide_plan', :a || ':' || village,
       CASE WHEN old_id IS NULL THEN 'insert' ELSE 'update' END, CAST(:cause AS jsonb),
       CASE WHEN old_id IS NOT NULL THEN
         json_build_object('geometry', ST_AsGeoJSON(old_zone, 7)::json) END,
       json_build_object('geometry', ST_AsGeoJSON(zone, 7)::json)
FROM changed RETURNING 1;

-- name: clear_stage
DELETE FROM parcel_stage WHERE upload_id = :u;

-- name: mass_removals
-- Villages whose publish would remove more than :share of their current parcels.
SELECT c.village, count(*) AS current, count(*) FILTER (WHERE d.op = 'delete') AS removed
FROM pub_cur c LEFT JOIN pub_diff d ON d.old_id = c.id
GROUP BY c.village
HAVING count(*) FILTER (WHERE d.op = 'delete') > CAST(:share AS float8) * count(*)
ORDER BY c.village;
