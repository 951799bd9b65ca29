-- Alerts store facts, not text: a message code (the rule's name, or rule.variant) and its params (glucose in mg/dL,
-- instants in UTC ISO 8601 beside the patient's wall-clock time, counts, thresholds with their source). Texts are
-- rendered where they are read, in the reader's language and unit (alerts.messages). New alerts leave ``message``
-- empty; an alert the engine writes again gets its code and loses its stored text.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS code text, ADD COLUMN IF NOT EXISTS params jsonb;
ALTER TABLE alerts ALTER COLUMN message DROP NOT NULL;

-- The alerts stored before get their code and params from their rule and evidence, exactly as the engine now
-- makes them (wall-clock times in the patient's time zone). The stored text stays beside them. An alert whose
-- evidence lacks a fact its message needs (written by an older engine, or by hand) keeps no code: its stored text
-- is what the renderer shows.
CREATE OR REPLACE FUNCTION pg_temp.utc(t jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT to_jsonb(to_char(to_timestamp(t::text::float8) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
$$;
CREATE OR REPLACE FUNCTION pg_temp.loc(t jsonb, zone text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT to_jsonb(to_char(to_timestamp(t::text::float8) AT TIME ZONE zone, 'YYYY-MM-DD HH24:MI'))
$$;
-- The reading of an evidence at position ``i`` as a message param: value, instant, wall-clock time.
CREATE OR REPLACE FUNCTION pg_temp.reading(e jsonb, i int, zone text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('mgdl', e->'values_mgdl'->i, 'at', pg_temp.utc(e->'measured_at'->i),
                              'local', pg_temp.loc(e->'measured_at'->i, zone))
$$;
CREATE OR REPLACE FUNCTION pg_temp.readings(e jsonb, zone text, with_targets boolean) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT COALESCE(jsonb_agg(pg_temp.reading(e, i, zone)
                              || CASE WHEN with_targets THEN jsonb_build_object('target_mgdl', e->'target_mgdl'->i,
                                                                                'target_kind', e->'target_kind'->i)
                                      ELSE '{}'::jsonb END ORDER BY i), '[]'::jsonb)
    FROM generate_series(0, jsonb_array_length(e->'values_mgdl') - 1) AS i
$$;
-- The measured_at of the evidence's reading ``id``.
CREATE OR REPLACE FUNCTION pg_temp.time_of(e jsonb, reading jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT e->'measured_at'->(x.ord::int - 1)
    FROM jsonb_array_elements(e->'reading_ids') WITH ORDINALITY AS x(rid, ord) WHERE x.rid = reading LIMIT 1
$$;
-- A hypoglycaemia or ketone run: its count, first and last reading, and the extreme reading (nadir or peak).
CREATE OR REPLACE FUNCTION pg_temp.run(e jsonb, zone text, extreme text) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'threshold_mgdl', e->'target_mgdl', 'count', jsonb_array_length(e->'reading_ids'),
        'first_at', pg_temp.utc(e->'episode_start'), 'first_local', pg_temp.loc(e->'episode_start', zone),
        extreme || '_mgdl', e->(extreme || '_mgdl'),
        extreme || '_at', pg_temp.utc(pg_temp.time_of(e, e->(extreme || '_reading_id'))),
        extreme || '_local', pg_temp.loc(pg_temp.time_of(e, e->(extreme || '_reading_id')), zone))
$$;

WITH old AS (
    SELECT a.id, a.rule, a.evidence AS e, p.time_zone AS zone
    FROM alerts a JOIN patients p ON p.id = a.patient_id
    WHERE a.code IS NULL AND a.evidence IS NOT NULL
      AND a.evidence ?& CASE a.rule
          WHEN 'hypo_l2' THEN ARRAY['target_mgdl', 'nadir_mgdl', 'nadir_reading_id', 'episode_start', 'episode_end']
          WHEN 'hypo_l1' THEN ARRAY['target_mgdl', 'nadir_mgdl', 'nadir_reading_id', 'episode_start', 'episode_end']
          WHEN 'hypo_insulin_floor'
              THEN ARRAY['target_mgdl', 'nadir_mgdl', 'nadir_reading_id', 'episode_start', 'episode_end']
          WHEN 'ketone_check' THEN ARRAY['target_mgdl', 'peak_mgdl', 'peak_reading_id', 'episode_start']
          WHEN 'fasting_severe' THEN ARRAY['target_mgdl', 'local_date']
          WHEN 'fasting_above_target' THEN ARRAY['target_mgdl', 'profile', 'local_date']
          WHEN 'postprandial_above_target' THEN ARRAY['target_mgdl', 'target_kind', 'profile', 'local_date']
          WHEN 'consecutive_above_target' THEN ARRAY['target_mgdl', 'context', 'profile', 'run_length']
          WHEN 'pattern_above_target' THEN ARRAY['percent_above', 'readings_above', 'readings_with_target',
                                                 'threshold_percent', 'min_readings', 'window_days', 'profile']
          WHEN 'fasting_pattern' THEN ARRAY['target_mgdl', 'readings_above', 'fasting_readings', 'percent_above',
                                            'threshold_percent', 'min_readings', 'window_days']
          WHEN 'fasting_trend_rising'
              THEN ARRAY['slope_mgdl_per_day', 'threshold_mgdl_per_day', 'points', 'mean_mgdl', 'window_days']
          WHEN 'low_adherence' THEN ARRAY['readings', 'expected', 'readings_per_day', 'percent', 'threshold_percent',
                                          'per_day', 'first_date', 'last_date']
          WHEN 'no_data' THEN ARRAY['threshold_s']
          WHEN 'cgm_stale' THEN ARRAY['warning_after_s', 'urgent_after_s']
          WHEN 'cgm_predicted_low' THEN ARRAY['target_mgdl', 'forecast_mgdl', 'horizon_min']
          WHEN 'cgm_rapid_fall' THEN ARRAY['rate_mgdl_per_min', 'threshold_mgdl_per_min', 'window_s']
          WHEN 'cgm_range_review' THEN ARRAY['time_in_range_pct', 'below_63_pct', 'below_54_pct', 'above_140_pct',
                                             'cv_pct', 'mean_mgdl', 'sd_mgdl', 'gmi_pct', 'data_pct', 'readings',
                                             'failing', 'window_days']
          WHEN 'postpartum_test_due' THEN ARRAY['delivery_date', 'days_since_delivery', 'window_start_date',
                                                'window_end_date', 'profile']
          ELSE ARRAY['-- no such key: an unknown rule keeps its text']
      END
      AND (a.rule IN ('cgm_range_review', 'postpartum_test_due', 'pattern_above_target', 'fasting_trend_rising',
                      'low_adherence')
           OR jsonb_array_length(a.evidence->'values_mgdl') > 0)
),
converted AS (
    SELECT id,
           CASE WHEN rule = 'fasting_severe' AND e ? 'downgraded' THEN 'fasting_severe.unconfirmed'
                WHEN rule = 'consecutive_above_target' THEN 'consecutive_above_target.' || (e->>'context')
                ELSE rule END AS code,
           CASE rule
               WHEN 'hypo_l2' THEN pg_temp.run(e, zone, 'nadir')
                   || jsonb_build_object('last_at', pg_temp.utc(e->'episode_end'),
                                         'last_local', pg_temp.loc(e->'episode_end', zone),
                                         'source', 'ADA Standards of Care, section 6')
               WHEN 'hypo_l1' THEN pg_temp.run(e, zone, 'nadir')
                   || jsonb_build_object('last_at', pg_temp.utc(e->'episode_end'),
                                         'last_local', pg_temp.loc(e->'episode_end', zone),
                                         'source', 'ADA Standards of Care, section 6',
                                         'level_low_mgdl', 54.0, 'level_high_mgdl', 69.0)
               WHEN 'hypo_insulin_floor' THEN pg_temp.run(e, zone, 'nadir')
                   || jsonb_build_object('last_at', pg_temp.utc(e->'episode_end'),
                                         'last_local', pg_temp.loc(e->'episode_end', zone), 'source', 'NICE NG3')
               WHEN 'ketone_check' THEN pg_temp.run(e, zone, 'peak')
                   || jsonb_build_object('source', 'telemon clinical reference')
               WHEN 'fasting_severe' THEN jsonb_build_object(
                   'threshold_mgdl', e->'target_mgdl', 'source', 'CNGOF/SFD 2010', 'local_date', e->'local_date',
                   'readings', pg_temp.readings(e, zone, false))
               WHEN 'fasting_above_target' THEN jsonb_build_object(
                   'profile', e->'profile', 'local_date', e->'local_date', 'target_mgdl', e->'target_mgdl',
                   'readings', pg_temp.readings(e, zone, false))
               WHEN 'postprandial_above_target' THEN jsonb_build_object(
                   'profile', e->'profile', 'local_date', e->'local_date', 'readings', pg_temp.readings(e, zone, true))
               WHEN 'consecutive_above_target' THEN jsonb_build_object(
                   'count', e->'run_length', 'context', e->'context', 'profile', e->'profile',
                   'since_at', pg_temp.utc(e->'measured_at'->0), 'since_local', pg_temp.loc(e->'measured_at'->0, zone),
                   'values_mgdl', e->'values_mgdl', 'targets_mgdl', e->'target_mgdl')
               WHEN 'pattern_above_target' THEN jsonb_build_object(
                   'percent_above', e->'percent_above', 'readings_above', e->'readings_above',
                   'readings_with_target', e->'readings_with_target', 'threshold_percent', e->'threshold_percent',
                   'min_readings', e->'min_readings', 'window_days', e->'window_days', 'profile', e->'profile',
                   'source', 'DECIDE working rule')
               WHEN 'fasting_pattern' THEN jsonb_build_object(
                   'threshold_mgdl', e->'target_mgdl', 'readings_above', e->'readings_above',
                   'fasting_readings', e->'fasting_readings', 'percent_above', e->'percent_above',
                   'threshold_percent', e->'threshold_percent', 'min_readings', e->'min_readings',
                   'window_days', e->'window_days', 'values_mgdl', e->'values_mgdl', 'source', 'DECIDE working rule')
               WHEN 'fasting_trend_rising' THEN jsonb_build_object(
                   'slope_mgdl_per_day', e->'slope_mgdl_per_day', 'threshold_mgdl_per_day', e->'threshold_mgdl_per_day',
                   'points', e->'points', 'mean_mgdl', e->'mean_mgdl', 'window_days', e->'window_days',
                   'source', 'telemon rule table')
               WHEN 'low_adherence' THEN jsonb_build_object(
                   'readings', e->'readings', 'expected', e->'expected', 'readings_per_day', e->'readings_per_day',
                   'percent', e->'percent', 'threshold_percent', e->'threshold_percent', 'per_day', e->'per_day',
                   'first_date', e->'first_date', 'last_date', e->'last_date',
                   'window_days', jsonb_array_length(e->'per_day'), 'source', 'telemon rule table')
               WHEN 'no_data' THEN jsonb_build_object(
                   'last_mgdl', e->'values_mgdl'->-1, 'last_at', pg_temp.utc(e->'measured_at'->-1),
                   'last_local', pg_temp.loc(e->'measured_at'->-1, zone),
                   'threshold_hours', (e->>'threshold_s')::bigint / 3600, 'source', 'telemon clinical reference')
               WHEN 'cgm_stale' THEN jsonb_build_object(
                   'last_mgdl', e->'values_mgdl'->-1, 'last_at', pg_temp.utc(e->'measured_at'->-1),
                   'last_local', pg_temp.loc(e->'measured_at'->-1, zone),
                   'warning_after_min', (e->>'warning_after_s')::bigint / 60,
                   'urgent_after_min', (e->>'urgent_after_s')::bigint / 60, 'source', 'telemon clinical reference')
               WHEN 'cgm_predicted_low' THEN (
                   SELECT jsonb_build_object(
                       'threshold_mgdl', e->'target_mgdl', 'horizon_min', e->'horizon_min',
                       'reaches_mgdl', e->'forecast_mgdl'->(k - 1), 'reaches_after_min', 5 * k,
                       'forecast_mgdl', (SELECT jsonb_agg(x ORDER BY o) FROM jsonb_array_elements(e->'forecast_mgdl')
                                         WITH ORDINALITY AS f(x, o) WHERE o <= h),
                       'forecast_minutes', (SELECT jsonb_agg(5 * o ORDER BY o) FROM generate_series(1, h) AS o),
                       'last_mgdl', e->'values_mgdl'->-1, 'last_at', pg_temp.utc(e->'measured_at'->-1),
                       'last_local', pg_temp.loc(e->'measured_at'->-1, zone), 'source', 'Nightscout AR2')
                   FROM (SELECT (e->>'horizon_min')::int / 5 AS h) hz,
                        LATERAL (SELECT min(o)::int AS k FROM jsonb_array_elements(e->'forecast_mgdl')
                                 WITH ORDINALITY AS f(x, o)
                                 WHERE o <= hz.h AND x::text::float8 <= (e->>'target_mgdl')::float8) found)
               WHEN 'cgm_rapid_fall' THEN jsonb_build_object(
                   'rate_mgdl_per_min', e->'rate_mgdl_per_min', 'threshold_mgdl_per_min', e->'threshold_mgdl_per_min',
                   'window_min', (e->>'window_s')::bigint / 60, 'count', jsonb_array_length(e->'reading_ids'),
                   'first_mgdl', e->'values_mgdl'->0, 'first_at', pg_temp.utc(e->'measured_at'->0),
                   'first_local', pg_temp.loc(e->'measured_at'->0, zone),
                   'last_mgdl', e->'values_mgdl'->-1, 'last_at', pg_temp.utc(e->'measured_at'->-1),
                   'last_local', pg_temp.loc(e->'measured_at'->-1, zone), 'source', 'telemon rule table')
               WHEN 'cgm_range_review' THEN jsonb_build_object(
                   'time_in_range_pct', e->'time_in_range_pct', 'below_63_pct', e->'below_63_pct',
                   'below_54_pct', e->'below_54_pct', 'above_140_pct', e->'above_140_pct', 'cv_pct', e->'cv_pct',
                   'mean_mgdl', e->'mean_mgdl', 'sd_mgdl', e->'sd_mgdl', 'gmi_pct', e->'gmi_pct',
                   'data_pct', e->'data_pct', 'readings', e->'readings', 'failing', e->'failing',
                   'window_days', e->'window_days', 'range_low_mgdl', 63.0, 'range_high_mgdl', 140.0,
                   'time_in_range_min_pct', 70, 'below_63_max_pct', 4, 'below_54_max_pct', 1,
                   'above_140_max_pct', 25, 'cv_max_pct', 36.0, 'source', 'Battelino 2019')
               WHEN 'postpartum_test_due' THEN jsonb_build_object(
                   'delivery_date', e->'delivery_date', 'days_since_delivery', e->'days_since_delivery',
                   'window_start_date', e->'window_start_date', 'window_end_date', e->'window_end_date',
                   'profile', e->'profile',
                   'source', CASE e->>'profile' WHEN 'FR' THEN 'CNGOF/SFD 2010' WHEN 'NICE' THEN 'NICE NG3'
                                               ELSE 'ADA Standards of Care, section 15' END)
           END AS params
    FROM old
)
UPDATE alerts a SET code = c.code, params = c.params
FROM converted c
WHERE a.id = c.id AND c.params IS NOT NULL AND NOT jsonb_path_exists(c.params, 'strict $.** ? (@ == null)');
