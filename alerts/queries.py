"""SQL of the alerts domain. Values go in as parameters only."""

# One evaluation's transaction. Everything it writes derives from stored readings: it commits without waiting for
# the WAL flush (an alert lost to a server crash in the next fraction of a second is raised again by the next
# evaluation; the scheduled pass re-evaluates everyone). Readings are partitioned by the device's clock and the
# window by measured_at: no partition can be pruned, and planning the window query over every partition costs
# more than running it, so the load uses cached generic plans ...
EVALUATION_SETTINGS = "SET LOCAL synchronous_commit = off; SET LOCAL plan_cache_mode = force_generic_plan"
# ... and the reconcile statements use plans made for their parameters: generic ones, blind to the number of
# candidates, ran twice as slow (upsert of 14 candidates: 3.0 → 1.5 ms, measured with bench.engine's batches).
RECONCILE_SETTINGS = "SET LOCAL plan_cache_mode = force_custom_plan"

# Per-patient parameters, in the order of $1 (patient ids), at the instant $2. Local day numbers are days since
# 1970-01-01 in the patient's own time zone; the UTC offset is the one at $2.
COHORT_PATIENTS = """
SELECT p.id, p.profile, p.treatment, p.target_overrides, p.readings_per_day,
       COALESCE(p.delivery_date - DATE '1970-01-01', 2147483647) AS delivery_day,
       ($2::timestamptz AT TIME ZONE p.time_zone)::date - DATE '1970-01-01' AS today,
       extract(epoch FROM ($2::timestamptz AT TIME ZONE p.time_zone) - ($2::timestamptz AT TIME ZONE 'UTC'))::int
           AS utc_offset_s,
       COALESCE((SELECT bit_or(CASE d.kind WHEN 'cgm' THEN 2 ELSE 1 END) FROM devices d
                 WHERE d.patient_id = p.id AND d.active), 0) AS devices
FROM unnest($1::uuid[]) WITH ORDINALITY AS s(id, ord)
JOIN patients p ON p.id = s.id
ORDER BY s.ord
"""

# The readings of the window [$2, now] of each patient of $1, plus each patient's latest older reading (so that
# "no data for 48 h" still sees a patient silent for weeks), sorted by (patient in the order of $1, time).
# Text columns come back as the integer codes of alerts.cohort. The rows are sorted once, in the subquery, and
# aggregated in that order (an ORDER BY in each array_agg would sort them once per column); the loader checks
# the order it gets.
COHORT_READINGS = """
SELECT array_agg(w.patient) AS patient, array_agg(w.id) AS reading_id, array_agg(w.t) AS t,
       array_agg(w.value_mgdl) AS value, array_agg(w.kind) AS kind, array_agg(w.context) AS context,
       array_agg(w.meal) AS meal, array_agg(w.minutes_after_meal) AS minutes_after_meal,
       array_agg(w.flags) AS flags, array_agg(w.local::date - DATE '1970-01-01') AS local_day,
       array_agg((extract(hour FROM w.local) * 60 + extract(minute FROM w.local))::int) AS local_minute
FROM (
    SELECT s.ord - 1 AS patient, r.id, floor(extract(epoch FROM r.measured_at))::bigint AS t, r.value_mgdl,
           (r.kind = 'cgm')::int AS kind,
           array_position(ARRAY['fasting', 'before_meal', 'after_meal', 'bedtime', 'night', 'unspecified'],
                          r.context) - 1 AS context,
           COALESCE(array_position(ARRAY['breakfast', 'lunch', 'dinner', 'snack'], r.meal) - 1, -1) AS meal,
           COALESCE(r.minutes_after_meal, -1) AS minutes_after_meal,
           ('lo' = ANY(r.flags))::int + 2 * ('hi' = ANY(r.flags))::int
               + 4 * ('control_solution' = ANY(r.flags))::int + 8 * ('manual' = ANY(r.flags))::int AS flags,
           r.measured_at AT TIME ZONE p.time_zone AS local
    FROM unnest($1::uuid[]) WITH ORDINALITY AS s(id, ord)
    JOIN patients p ON p.id = s.id
    CROSS JOIN LATERAL (
        SELECT * FROM readings w WHERE w.patient_id = s.id AND w.measured_at >= $2
        UNION ALL
        (SELECT * FROM readings o WHERE o.patient_id = s.id AND o.measured_at < $2
         ORDER BY o.measured_at DESC LIMIT 1)
    ) r
    ORDER BY s.ord, r.measured_at, r.id
) w
"""

# Patients in id order after $1 (keyset pagination for the scheduled pass); $3: only those with a CGM device.
PATIENT_IDS_AFTER = """
SELECT p.id FROM patients p
WHERE p.id > $1
  AND (NOT $3 OR EXISTS (SELECT 1 FROM devices d WHERE d.patient_id = p.id AND d.active AND d.kind = 'cgm'))
ORDER BY p.id
LIMIT $2
"""

# Open or update one alert per (patient, rule, episode). A per-reading episode that a clinician resolved is not
# opened again ($8 false); a stateful rule's episode opens anew once the previous one resolved ($8 true).
# New evidence updates the open alert; a higher severity re-opens an acknowledged one.
UPSERT_ALERTS = """
WITH c AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::bool[])
         AS c(patient_id, rule, episode_key, severity, message, evidence, stateful)
)
INSERT INTO alerts AS a (patient_id, rule, episode_key, severity, message, evidence)
SELECT c.patient_id, c.rule, c.episode_key, c.severity, c.message, c.evidence
FROM c
WHERE NOT EXISTS (  -- unchanged: nothing to write (ON CONFLICT would still lock the row)
    SELECT 1 FROM alerts o
    WHERE o.patient_id = c.patient_id AND o.rule = c.rule AND o.episode_key = c.episode_key
      AND o.status <> 'resolved' AND o.severity = c.severity AND o.evidence = c.evidence
) AND (c.stateful OR NOT EXISTS (
    SELECT 1 FROM alerts r
    WHERE r.patient_id = c.patient_id AND r.rule = c.rule AND r.episode_key = c.episode_key AND r.status = 'resolved'
))
ON CONFLICT (patient_id, rule, episode_key) WHERE status <> 'resolved' DO UPDATE
SET severity = EXCLUDED.severity,
    message = EXCLUDED.message,
    evidence = EXCLUDED.evidence,
    updated_at = now(),
    status = CASE
        WHEN array_position(ARRAY['info', 'warning', 'urgent'], EXCLUDED.severity)
             > array_position(ARRAY['info', 'warning', 'urgent'], a.severity) THEN 'open'
        ELSE a.status END
WHERE a.evidence IS DISTINCT FROM EXCLUDED.evidence OR a.severity IS DISTINCT FROM EXCLUDED.severity
RETURNING a.patient_id, a.id, a.rule, a.severity, a.status, (a.xmax = 0) AS opened
"""

# Resolve the open alerts of stateful rules for the (patient, rule) pairs that were evaluated and no longer fire.
RESOLVE_CLEARED = """
UPDATE alerts a
SET status = 'resolved', resolved_at = now(), resolved_by = 'system', updated_at = now()
FROM unnest($1::uuid[], $2::text[]) AS e(patient_id, rule)
WHERE a.patient_id = e.patient_id AND a.rule = e.rule AND a.status <> 'resolved'
  AND NOT EXISTS (
      SELECT 1 FROM unnest($3::uuid[], $4::text[], $5::text[]) AS f(patient_id, rule, episode_key)
      WHERE f.patient_id = a.patient_id AND f.rule = a.rule AND f.episode_key = a.episode_key
  )
RETURNING a.patient_id, a.id, a.rule, a.severity, a.status
"""

NOTIFY = "SELECT pg_notify('telemon_alerts', payload) FROM unnest($1::text[]) AS payload"

ALERT_COLUMNS = """
id, patient_id, rule, severity, status, episode_key, message, evidence, opened_at, updated_at,
acknowledged_at, acknowledged_by, snoozed_until, snoozed_by, resolved_at, resolved_by
"""

# Most urgent first, then oldest; the cursor is the position after the last alert.
LIST_ALERTS = f"""
SELECT {ALERT_COLUMNS}
FROM alerts
WHERE ($1::uuid IS NULL OR patient_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR rule = $3)
  AND ($4::text IS NULL OR severity = $4)
  AND (-array_position(ARRAY['info', 'warning', 'urgent'], severity), opened_at, id) > ($5::int, $6::timestamptz, $7::bigint)
ORDER BY -array_position(ARRAY['info', 'warning', 'urgent'], severity), opened_at, id
LIMIT $8
"""

GET_ALERT = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"

ACKNOWLEDGE = f"""
UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2, updated_at = now()
WHERE id = $1 AND status = 'open'
RETURNING {ALERT_COLUMNS}
"""

SNOOZE = f"""
UPDATE alerts SET snoozed_until = $3, snoozed_by = $2, updated_at = now()
WHERE id = $1 AND status <> 'resolved'
RETURNING {ALERT_COLUMNS}
"""

RESOLVE = f"""
UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = $2, updated_at = now()
WHERE id = $1 AND status <> 'resolved'
RETURNING {ALERT_COLUMNS}
"""
