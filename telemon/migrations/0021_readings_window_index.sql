-- telemon schema, version 21: the engine reads a patient's window of readings from an index alone.
--
-- The engine's load (alerts.queries.COHORT_READINGS) reads context_inferred beside the columns that
-- readings_patient_time carries, so each of its readings cost one table page: a CGM wearer's fortnight is ~4,000
-- readings interleaved with every other patient's in the table, so ~4,000 pages once a region's readings outnumber
-- the shared buffers (measured with bench.scale: 1,900 buffers per wearer at 200 patients, 4,000 at 2,000, half of
-- them read from outside the shared buffers; the incremental evaluation's p99 grew 1.6× with the region). With
-- context_inferred in the index the load is an index-only scan: ~120 buffers whatever the region's size. Same name,
-- same key: every query using the index keeps its plan. The new index is built before the old one is dropped, so
-- reads keep an index meanwhile; writes to readings wait for the build (about 10 s per 5 million readings here).
CREATE INDEX readings_patient_time_v21 ON readings (patient_id, measured_at)
    INCLUDE (kind, value_mgdl, context, meal, minutes_after_meal, flags, id, context_inferred);
DROP INDEX readings_patient_time;
ALTER INDEX readings_patient_time_v21 RENAME TO readings_patient_time;

-- An index-only scan reads the table only for pages not yet marked all-visible, which only a vacuum marks.
-- PostgreSQL vacuums a table that only grows once 20 % more rows arrived (autovacuum_vacuum_insert_scale_factor):
-- the current month's partition of a region (about 11 million readings) would then leave days of readings to be
-- read page by page. Each partition is vacuumed after 1 % more rows instead (a few hours of a region's
-- readings); such a vacuum reads only the pages not yet all-visible. telemon.partitions sets the same on the
-- partitions it creates.
DO $$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'readings'::regclass LOOP
        EXECUTE format('ALTER TABLE %s SET (autovacuum_vacuum_insert_scale_factor = 0.01,'
                       ' autovacuum_vacuum_insert_threshold = 10000)', part);
    END LOOP;
END
$$;
