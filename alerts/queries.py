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
                 WHERE d.patient_id = p.id AND d.active), 0) AS devices,
       -- the treatment record (alerts.cohort.Record): the plan in force (the newest version) ...
       COALESCE(tp.version, 0) AS plan_version,
       COALESCE(floor(extract(epoch FROM tp.created_at))::bigint, 0) AS plan_since,
       tp.basal_units::float8 AS basal_units, tp.basal_product, tp.prandial_product,
       tp.prandial_breakfast::float8 AS prandial_breakfast, tp.prandial_lunch::float8 AS prandial_lunch,
       tp.prandial_dinner::float8 AS prandial_dinner, tp.metformin_mg,
       COALESCE(dc.basal, 0) AS basal_since, COALESCE(dc.breakfast, 0) AS breakfast_since,
       COALESCE(dc.lunch, 0) AS lunch_since, COALESCE(dc.dinner, 0) AS dinner_since,
       -- ... her team's titration protocol (none: alerts.titration.DEFAULT) ...
       tt.step_units, tt.step_percent, tt.window_days, tt.days_required, tt.max_step_units, tt.reduction_percent,
       tt.reduction_units, tt.suggestions_enabled,
       -- ... the start of the diet's trial period: the diagnosis, else the enrolment, as her local day ...
       COALESCE(p.diagnosis_date, (p.created_at AT TIME ZONE p.time_zone)::date) - DATE '1970-01-01' AS start_day,
       -- ... and whether a postpartum glucose test is recorded
       EXISTS (SELECT 1 FROM postpartum_tests pt WHERE pt.patient_id = p.id) AS postpartum_tested
FROM unnest($1::uuid[]) WITH ORDINALITY AS s(id, ord)
JOIN patients p ON p.id = s.id
LEFT JOIN LATERAL (
    SELECT * FROM treatment_plans v WHERE v.patient_id = p.id ORDER BY v.version DESC LIMIT 1
) tp ON true
-- when each dose of the plan last changed from another dose (a version whose dose differs from the previous
-- version's, which had one): a dose review judges the readings after it (alerts.rules.treatment)
LEFT JOIN LATERAL (
    SELECT floor(extract(epoch FROM max(x.created_at) FILTER (WHERE x.basal_units <> x.prev_basal)))::bigint AS basal,
           floor(extract(epoch FROM max(x.created_at) FILTER (WHERE x.prandial_breakfast <> x.prev_breakfast)))::bigint
               AS breakfast,
           floor(extract(epoch FROM max(x.created_at) FILTER (WHERE x.prandial_lunch <> x.prev_lunch)))::bigint
               AS lunch,
           floor(extract(epoch FROM max(x.created_at) FILTER (WHERE x.prandial_dinner <> x.prev_dinner)))::bigint
               AS dinner
    FROM (
        SELECT v.created_at, v.basal_units, lag(v.basal_units) OVER w AS prev_basal,
               v.prandial_breakfast, lag(v.prandial_breakfast) OVER w AS prev_breakfast,
               v.prandial_lunch, lag(v.prandial_lunch) OVER w AS prev_lunch,
               v.prandial_dinner, lag(v.prandial_dinner) OVER w AS prev_dinner
        FROM treatment_plans v WHERE v.patient_id = p.id
        WINDOW w AS (ORDER BY v.version)
    ) x
) dc ON true
LEFT JOIN team_titration tt ON tt.team_id = p.team_id
ORDER BY s.ord
"""

# The measurements (insulin doses, ketones, weight, blood pressure) of each patient of $1 measured since $2, as
# columns sorted by (patient in the order of $1, time); text columns as the integer codes of alerts.cohort.
COHORT_MEASUREMENTS = """
SELECT array_agg(w.patient) AS m_patient, array_agg(w.id) AS measurement_id, array_agg(w.t) AS m_t,
       array_agg(w.kind) AS m_kind, array_agg(w.value) AS m_value, array_agg(w.urine) AS m_urine,
       array_agg(w.insulin) AS m_insulin, array_agg(w.slot) AS m_slot, array_agg(w.systolic) AS m_systolic,
       array_agg(w.diastolic) AS m_diastolic, array_agg(w.local::date - DATE '1970-01-01') AS m_local_day,
       array_agg((extract(hour FROM w.local) * 60 + extract(minute FROM w.local))::int) AS m_local_minute
FROM (
    SELECT s.ord - 1 AS patient, m.id, floor(extract(epoch FROM m.measured_at))::bigint AS t,
           array_position(ARRAY['insulin', 'ketone', 'weight', 'blood_pressure'], m.kind) - 1 AS kind,
           COALESCE(m.value, 'NaN') AS value,
           COALESCE(array_position(ARRAY['negative', 'trace', '+', '++', '+++'], m.urine) - 1, -1) AS urine,
           COALESCE(array_position(ARRAY['basal', 'rapid', 'premixed'], m.insulin) - 1, -1) AS insulin,
           COALESCE(array_position(ARRAY['breakfast', 'lunch', 'dinner', 'bedtime'], m.slot) - 1, -1) AS slot,
           COALESCE(m.systolic, 'NaN') AS systolic, COALESCE(m.diastolic, 'NaN') AS diastolic,
           m.measured_at AT TIME ZONE p.time_zone AS local
    FROM unnest($1::uuid[]) WITH ORDINALITY AS s(id, ord)
    JOIN patients p ON p.id = s.id
    JOIN measurements m ON m.patient_id = s.id AND m.measured_at >= $2
    ORDER BY s.ord, m.measured_at, m.id
) w
"""

# The readings of the window [local midnight of $2, now] of each patient of $1, plus each patient's latest older
# reading (so that "no data for 48 h" still sees a patient silent for weeks), sorted by (patient in the order of
# $1, time).
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
               + 4 * ('control_solution' = ANY(r.flags))::int + 8 * ('manual' = ANY(r.flags))::int
               + 16 * r.context_inferred::int AS flags,
           r.measured_at AT TIME ZONE p.time_zone AS local
    FROM unnest($1::uuid[]) WITH ORDINALITY AS s(id, ord)
    JOIN patients p ON p.id = s.id
    -- from the patient's local midnight of $2's day: the first day of the window is whole, so that its readings
    -- sent without a context are placed among all the readings of that day
    CROSS JOIN LATERAL (
        SELECT (date_trunc('day', $2::timestamptz AT TIME ZONE p.time_zone) AT TIME ZONE p.time_zone) AS since
    ) b
    CROSS JOIN LATERAL (
        SELECT * FROM readings w WHERE w.patient_id = s.id AND w.measured_at >= b.since
        UNION ALL
        (SELECT * FROM readings o WHERE o.patient_id = s.id AND o.measured_at < b.since
         ORDER BY o.measured_at DESC LIMIT 1)
    ) r
    ORDER BY s.ord, r.measured_at, r.id
) w
"""

# The window of readings and of measurements in one round trip (one row: the columns of both; measurements' columns
# start with m_): the incremental evaluation's load is a few milliseconds, and a round trip is a good part of it.
COHORT_WINDOW = f"""
SELECT r.*, m.* FROM ({COHORT_READINGS}) r CROSS JOIN ({COHORT_MEASUREMENTS}) m
"""

# Patients in id order after $1 (keyset pagination for the scheduled pass); $3: only those with a CGM device.
PATIENT_IDS_AFTER = """
SELECT p.id FROM patients p
WHERE p.id > $1
  AND p.archived_at IS NULL  -- an archived patient's monitoring has ended
  AND (NOT $3 OR EXISTS (SELECT 1 FROM devices d WHERE d.patient_id = p.id AND d.active AND d.kind = 'cgm'))
ORDER BY p.id
LIMIT $2
"""

# Open or update one alert per (patient, rule, episode); $5 holds each candidate's message as
# ``{"code": ..., "params": {...}}`` (the stored text of an older alert gives way to them). A per-reading episode that a clinician resolved is not
# opened again ($7 false); a stateful rule's episode opens anew once the previous one resolved ($7 true), and only
# once confirmed when its rule is one of $13: a stateful candidate without an open alert is written when its
# condition was first seen (table alert_pending) at least $11 and at most $12 seconds before this evaluation's time
# $10, else its sighting is recorded.
# New evidence updates the open alert; a higher severity re-opens an acknowledged one.
# Bounded per (patient, rule): a per-reading candidate with no alert of its own is ``covered`` when a clinician
# resolved it or it was folded into another alert (nothing is written), else it is new. A new episode folds into
# the rule's alert that is open and not snoozed (``target``); when there is none, the earliest new one opens
# (``place`` 1, episodes in time order: their keys start with epoch seconds or a date) holding the others already
# (counted, their last reading ids of $8 kept up to $9, recorded as folded into it). Rows: the alerts written
# (``kind`` 'written'), then the new episodes to fold into an existing alert (``kind`` 'fold', the position
# ``ord`` of the candidate, the ``target``), which ``FOLD_EPISODES`` does: that alert may be written here too.
# The rules of $14 (decision support) never open again an episode a person resolved (a dismissed suggestion).
UPSERT_ALERTS = """
WITH c0 AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::bool[],
                         $8::text[])
         WITH ORDINALITY AS c(patient_id, rule, episode_key, severity, message, evidence, stateful, reading_ids, ord)
),
s AS (  -- stateful candidates: is their alert open, since when was their condition seen (evaluation time $10)
    SELECT c0.ord, c0.patient_id, c0.rule, c0.episode_key,
           EXISTS (SELECT 1 FROM alerts a
                   WHERE a.patient_id = c0.patient_id AND a.rule = c0.rule AND a.episode_key = c0.episode_key
                     AND a.status <> 'resolved') AS open,
           (SELECT p.first_seen_at FROM alert_pending p
            WHERE p.patient_id = c0.patient_id AND p.rule = c0.rule AND p.episode_key = c0.episode_key) AS first_seen
    FROM c0 WHERE c0.stateful AND c0.rule = ANY($13::text[])
),
sc AS (  -- confirmed: first seen between $12 and $11 seconds before $10 (an older sighting proves nothing of
         -- the time in between: no evaluation came to clear it)
    SELECT s.*,
           s.open OR COALESCE(s.first_seen BETWEEN $10::timestamptz - make_interval(secs => $12::float8)
                                               AND $10::timestamptz - make_interval(secs => $11::float8), false)
               AS confirmed
    FROM s
),
si AS (  -- first sighting of a condition (or again, after a sighting too old): recorded, not opened
    INSERT INTO alert_pending AS p (patient_id, rule, episode_key, first_seen_at)
    SELECT patient_id, rule, episode_key, $10::timestamptz FROM sc WHERE NOT confirmed AND NOT open
    ON CONFLICT (patient_id, rule, episode_key) DO UPDATE SET first_seen_at = EXCLUDED.first_seen_at
    WHERE p.first_seen_at < EXCLUDED.first_seen_at - make_interval(secs => $12::float8)
),
sd AS (  -- confirmed, or open already: nothing pending any more
    DELETE FROM alert_pending p USING sc
    WHERE p.patient_id = sc.patient_id AND p.rule = sc.rule AND p.episode_key = sc.episode_key AND sc.confirmed
),
c AS (
    SELECT c0.* FROM c0 LEFT JOIN sc ON sc.ord = c0.ord
    WHERE sc.ord IS NULL OR sc.confirmed
),
k AS (
    SELECT c.ord, c.patient_id, c.rule, c.episode_key, c.severity, c.reading_ids,
           (r.found IS NOT NULL OR f.found IS NOT NULL) AS covered
    FROM c
    LEFT JOIN LATERAL (
        SELECT 1 AS found FROM alerts r
        WHERE r.patient_id = c.patient_id AND r.rule = c.rule AND r.episode_key = c.episode_key
          AND r.status = 'resolved'
        LIMIT 1
    ) r ON true
    LEFT JOIN LATERAL (
        SELECT 1 AS found FROM alert_folded_episodes f
        WHERE f.patient_id = c.patient_id AND f.rule = c.rule AND f.episode_key = c.episode_key
        LIMIT 1  -- (a lookup by key for each candidate, never a join over the whole table)
    ) f ON true
    WHERE NOT c.stateful AND NOT EXISTS (
        SELECT 1 FROM alerts o
        WHERE o.patient_id = c.patient_id AND o.rule = c.rule AND o.episode_key = c.episode_key
          AND o.status <> 'resolved')
),
n AS (
    SELECT k.*, t.id AS target,
           row_number() OVER (PARTITION BY k.patient_id, k.rule
                              ORDER BY substring(k.episode_key FROM '^[a-z]*([0-9]+)')::numeric NULLS FIRST,
                                       k.episode_key) AS place
    FROM k
    LEFT JOIN LATERAL (
        SELECT a.id FROM alerts a
        WHERE a.patient_id = k.patient_id AND a.rule = k.rule AND a.status = 'open'
          AND (a.snoozed_until IS NULL OR a.snoozed_until <= now())
        ORDER BY a.opened_at DESC, a.id DESC
        LIMIT 1
    ) t ON true
    WHERE NOT k.covered
),
g AS (  -- what the alert a pair's earliest new episode opens holds of the others
    SELECT patient_id, rule, count(*) AS folded,
           max(array_position(ARRAY['info', 'warning', 'urgent'], severity)) AS rank,
           array_remove(string_to_array(string_agg(reading_ids, ',' ORDER BY place), ','), '')::bigint[]
               AS reading_ids
    FROM n WHERE target IS NULL AND place > 1
    GROUP BY patient_id, rule
),
w AS (
    INSERT INTO alerts AS a (patient_id, rule, episode_key, severity, code, params, evidence,
                             folded_episodes, folded_reading_ids, folded_last_at)
    SELECT c.patient_id, c.rule, c.episode_key,
           CASE WHEN g.rank > array_position(ARRAY['info', 'warning', 'urgent'], c.severity)
                THEN (ARRAY['info', 'warning', 'urgent'])[g.rank] ELSE c.severity END,
           c.message->>'code', c.message->'params', c.evidence, COALESCE(g.folded, 0),
           COALESCE(g.reading_ids[greatest(cardinality(g.reading_ids) - $9 + 1, 1):], '{}'),
           CASE WHEN g.folded IS NOT NULL THEN now() END
    FROM c
    LEFT JOIN k ON k.ord = c.ord
    LEFT JOIN n ON n.ord = c.ord
    LEFT JOIN g ON n.place = 1 AND n.target IS NULL AND g.patient_id = n.patient_id AND g.rule = n.rule
    -- Each candidate's alerts are looked up by its key, one candidate at a time (as in k): the planner, asked
    -- for NOT EXISTS beside an OR, may instead hash every resolved alert of the database, a cost that grows
    -- with the region rather than with the patients evaluated.
    LEFT JOIN LATERAL (  -- the episode's open alert (at most one: alerts_one_open_episode)
        SELECT o.severity, o.evidence FROM alerts o
        WHERE o.patient_id = c.patient_id AND o.rule = c.rule AND o.episode_key = c.episode_key
          AND o.status <> 'resolved'
    ) o ON true
    LEFT JOIN LATERAL (
        SELECT 1 AS found FROM alerts r
        WHERE r.patient_id = c.patient_id AND r.rule = c.rule AND r.episode_key = c.episode_key
          AND r.status = 'resolved'
        LIMIT 1
    ) r ON true
    LEFT JOIN LATERAL (  -- a suggestion a person dismissed (only the rules of $14 ask)
        SELECT 1 AS found FROM alerts x
        WHERE c.rule = ANY($14::text[])
          AND x.patient_id = c.patient_id AND x.rule = c.rule AND x.episode_key = c.episode_key
          AND x.status = 'resolved' AND x.resolved_by <> 'system'
        LIMIT 1
    ) d ON true
    WHERE NOT COALESCE(k.covered, false)
      AND (n.ord IS NULL OR (n.target IS NULL AND n.place = 1))
      -- unchanged: nothing to write (ON CONFLICT would still lock the row)
      AND NOT COALESCE(o.severity = c.severity AND o.evidence = c.evidence, false)
      AND (c.stateful OR r.found IS NULL)
      AND d.found IS NULL  -- a suggestion a person dismissed stays dismissed
    ON CONFLICT (patient_id, rule, episode_key) WHERE status <> 'resolved' DO UPDATE
    SET severity = EXCLUDED.severity,
        code = EXCLUDED.code,
        params = EXCLUDED.params,
        message = NULL,
        evidence = EXCLUDED.evidence,
        updated_at = now(),
        status = CASE
            WHEN array_position(ARRAY['info', 'warning', 'urgent'], EXCLUDED.severity)
                 > array_position(ARRAY['info', 'warning', 'urgent'], a.severity) THEN 'open'
            ELSE a.status END
    WHERE a.evidence IS DISTINCT FROM EXCLUDED.evidence OR a.severity IS DISTINCT FROM EXCLUDED.severity
    RETURNING a.patient_id, a.id, a.rule, a.severity, a.status, (a.xmax = 0) AS opened
),
e AS (  -- the episodes the new alerts hold, recorded (a concurrent evaluation may have recorded some: kept)
    INSERT INTO alert_folded_episodes (patient_id, rule, episode_key, alert_id)
    SELECT n.patient_id, n.rule, n.episode_key, w.id
    FROM n JOIN w ON w.patient_id = n.patient_id AND w.rule = n.rule AND w.opened
    WHERE n.target IS NULL AND n.place > 1
    ON CONFLICT DO NOTHING
)
SELECT 'written' AS kind, w.patient_id, w.id, w.rule, w.severity, w.status, w.opened,
       NULL::bigint AS ord, NULL::bigint AS target
FROM w
UNION ALL
SELECT 'fold', NULL, NULL, NULL, NULL, NULL, NULL, n.ord, n.target
FROM n WHERE n.target IS NOT NULL
"""

# Fold the episodes $1..$6 (patient, rule, episode, alert, severity, the episode's last reading ids joined by
# commas) into their alerts: each episode is recorded once, and only an episode recorded now counts (a concurrent
# evaluation may have folded it already); the alert counts them, keeps the $7 most recent reading ids, and takes a
# higher severity (re-opening, as an update does).
FOLD_EPISODES = """
WITH f AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) WITH ORDINALITY
        AS f(patient_id, rule, episode_key, alert_id, severity, reading_ids, ord)
), e AS (
    INSERT INTO alert_folded_episodes (patient_id, rule, episode_key, alert_id)
    SELECT patient_id, rule, episode_key, alert_id FROM f
    ON CONFLICT DO NOTHING
    RETURNING patient_id, rule, episode_key
), n AS (
    SELECT f.patient_id, f.alert_id, count(*) AS n,
           max(array_position(ARRAY['info', 'warning', 'urgent'], f.severity)) AS rank,
           array_remove(string_to_array(string_agg(f.reading_ids, ',' ORDER BY f.ord), ','), '')::bigint[]
               AS reading_ids
    FROM f JOIN e USING (patient_id, rule, episode_key)
    GROUP BY f.patient_id, f.alert_id
)
UPDATE alerts a
SET folded_episodes = a.folded_episodes + n.n,
    folded_reading_ids = (a.folded_reading_ids || n.reading_ids)
        [greatest(cardinality(a.folded_reading_ids) + cardinality(n.reading_ids) - $7 + 1, 1):],
    folded_last_at = now(),
    updated_at = now(),
    severity = CASE WHEN n.rank > array_position(ARRAY['info', 'warning', 'urgent'], a.severity)
                    THEN (ARRAY['info', 'warning', 'urgent'])[n.rank] ELSE a.severity END,
    status = CASE WHEN n.rank > array_position(ARRAY['info', 'warning', 'urgent'], a.severity)
                  THEN 'open' ELSE a.status END
FROM n
WHERE a.patient_id = n.patient_id AND a.id = n.alert_id
RETURNING a.patient_id, a.id, a.rule, a.severity, a.status
"""

# Resolve the open alerts of stateful rules for the (patient, rule) pairs that were evaluated and no longer fire
# (reason 'cleared'), and forget the conditions that were waiting for confirmation and cleared meanwhile.
RESOLVE_CLEARED = """
WITH pending AS (
    DELETE FROM alert_pending a
    USING unnest($1::uuid[], $2::text[]) AS e(patient_id, rule)
    WHERE a.patient_id = e.patient_id AND a.rule = e.rule
      AND NOT EXISTS (
          SELECT 1 FROM unnest($3::uuid[], $4::text[], $5::text[]) AS f(patient_id, rule, episode_key)
          WHERE f.patient_id = a.patient_id AND f.rule = a.rule AND f.episode_key = a.episode_key
      )
)
UPDATE alerts a
SET status = 'resolved', resolved_at = now(), resolved_by = 'system', resolved_reason = 'cleared',
    updated_at = now()
FROM unnest($1::uuid[], $2::text[]) AS e(patient_id, rule)
WHERE a.patient_id = e.patient_id AND a.rule = e.rule AND a.status <> 'resolved'
  AND NOT EXISTS (
      SELECT 1 FROM unnest($3::uuid[], $4::text[], $5::text[]) AS f(patient_id, rule, episode_key)
      WHERE f.patient_id = a.patient_id AND f.rule = a.rule AND f.episode_key = a.episode_key
  )
RETURNING a.patient_id, a.id, a.rule, a.severity, a.status
"""

NOTIFY = "SELECT pg_notify($2, payload) FROM unnest($1::text[]) AS payload"

ALERT_COLUMNS = """
id, patient_id, rule, severity, status, episode_key, code, params, message, evidence, opened_at, updated_at,
acknowledged_at, acknowledged_by, snoozed_until, snoozed_by, resolved_at, resolved_by, resolved_reason,
folded_episodes, folded_reading_ids, folded_last_at
"""

# Most urgent first, then oldest; the cursor is the position after the last alert.
LIST_ALERTS = f"""
SELECT {ALERT_COLUMNS}
FROM alerts
WHERE patient_id = ANY(ARRAY(SELECT p.id FROM patients p WHERE p.team_id = ANY($9::uuid[])))
  AND ($1::uuid IS NULL OR patient_id = $1)
  AND ($2::text IS NULL OR status = $2)
  AND ($3::text IS NULL OR rule = $3)
  AND ($4::text IS NULL OR severity = $4)
  AND (-array_position(ARRAY['info', 'warning', 'urgent'], severity), opened_at, id) > ($5::int, $6::timestamptz, $7::bigint)
ORDER BY -array_position(ARRAY['info', 'warning', 'urgent'], severity), opened_at, id
LIMIT $8
"""

GET_ALERT = f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = $1"
# Alert $1 if it is of a patient of the care teams $2, locked until the caller's transaction ends (a dose review's
# Apply: a second click waits, then finds it resolved).
LOCK_ALERT_OF_TEAMS = f"""
SELECT {ALERT_COLUMNS} FROM alerts
WHERE id = $1 AND patient_id IN (SELECT id FROM patients WHERE team_id = ANY($2::uuid[]))
FOR UPDATE
"""
# Whether alert $1 is of a patient of the API key's care teams ($2); if not, the alert is answered as missing.
ALERT_OF_TEAMS = """
SELECT EXISTS (SELECT 1 FROM alerts a JOIN patients p ON p.id = a.patient_id WHERE a.id = $1 AND p.team_id = ANY($2::uuid[]))
"""

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

# The titration protocols of the teams of $1 that set one (alerts.titration; the others follow its DEFAULT).
TEAM_TITRATION = """
SELECT team_id, step_units, step_percent, window_days, days_required, max_step_units, reduction_percent,
       reduction_units, suggestions_enabled, updated_by, updated_at
FROM team_titration WHERE team_id = ANY($1::uuid[])
"""

# A team's protocol, replaced whole.
SAVE_TEAM_TITRATION = """
INSERT INTO team_titration AS t (team_id, step_units, step_percent, window_days, days_required, max_step_units,
                                 reduction_percent, reduction_units, suggestions_enabled, updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (team_id) DO UPDATE
SET step_units = EXCLUDED.step_units, step_percent = EXCLUDED.step_percent, window_days = EXCLUDED.window_days,
    days_required = EXCLUDED.days_required, max_step_units = EXCLUDED.max_step_units,
    reduction_percent = EXCLUDED.reduction_percent, reduction_units = EXCLUDED.reduction_units,
    suggestions_enabled = EXCLUDED.suggestions_enabled, updated_by = EXCLUDED.updated_by, updated_at = now()
"""
