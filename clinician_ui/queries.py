"""SQL of the clinician dashboard. Values go in as ``$n`` parameters only.

Team scoping is in the SQL itself: every statement that reads or changes a patient's data takes the
clinician's team ids (``$n::uuid[]``) and matches ``patients.team_id`` against them, so a page or an action about
another team's patient finds nothing (the routes answer 404, never "forbidden", so ids are not confirmed).
"""

# --- sessions and logins -----------------------------------------------------------------------------------------

CLINICIAN_BY_EMAIL = """
SELECT id, password_hash, active FROM clinicians WHERE lower(email) = lower($1)
"""

CREATE_SESSION = """
INSERT INTO clinician_sessions (token_hash, clinician_id, csrf_token, expires_at, user_agent, client_ip)
VALUES ($1, $2, $3, now() + make_interval(secs => $4), $5, $6)
"""

DELETE_EXPIRED_SESSIONS = """
DELETE FROM clinician_sessions
WHERE clinician_id = $1 AND (expires_at <= now() OR last_seen_at <= now() - make_interval(secs => $2))
"""

# The clinician of a live session (not past its absolute end, used within the idle limit $2 seconds), with the
# ids of their care teams.
SESSION_CLINICIAN = """
SELECT s.clinician_id, s.csrf_token, s.flash, s.last_seen_at, c.email, c.display_name, c.role, c.language,
       c.display_unit,
       COALESCE(array_agg(m.team_id ORDER BY m.team_id) FILTER (WHERE m.team_id IS NOT NULL), '{}') AS team_ids
FROM clinician_sessions s
JOIN clinicians c ON c.id = s.clinician_id AND c.active
LEFT JOIN team_memberships m ON m.clinician_id = c.id
WHERE s.token_hash = $1 AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => $2)
GROUP BY s.token_hash, c.id
"""

TOUCH_SESSION = "UPDATE clinician_sessions SET last_seen_at = now(), flash = NULL WHERE token_hash = $1"

SET_FLASH = "UPDATE clinician_sessions SET flash = $2 WHERE token_hash = $1"

DELETE_SESSION = "DELETE FROM clinician_sessions WHERE token_hash = $1"

THROTTLE_LOCKED_UNTIL = """
SELECT max(locked_until) FROM login_throttle WHERE key = ANY($1::text[]) AND locked_until > now()
"""

THROTTLE_ENSURE = """
INSERT INTO login_throttle (key, failures, last_failure_at) VALUES ($1, 0, now()) ON CONFLICT (key) DO NOTHING
"""

THROTTLE_FOR_UPDATE = "SELECT failures, last_failure_at, now() AS now FROM login_throttle WHERE key = $1 FOR UPDATE"

THROTTLE_SET = """
UPDATE login_throttle SET failures = $2, last_failure_at = now(),
       locked_until = CASE WHEN $3::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $3::float8) END
WHERE key = $1
"""

THROTTLE_CLEAR = "DELETE FROM login_throttle WHERE key = $1"

UPDATE_PREFERENCES = "UPDATE clinicians SET display_unit = $2, language = $3 WHERE id = $1"

CLINICIAN_NAMES = "SELECT id, display_name FROM clinicians WHERE id = ANY($1::uuid[])"

# The labels of the API keys $1 (an action taken through the API is shown with the key's label, not its id).
API_KEY_LABELS = "SELECT id, label FROM api_keys WHERE id = ANY($1::uuid[])"

# --- triage ------------------------------------------------------------------------------------------------------

# Who needs action: patients of the teams $1 with a reason to act. Today the reasons are urgent and warning alerts
# in the statuses $2 (not snoozed) of severity rank ≥ $3 (1 info, 2 warning, 3 urgent); an info alert (a day above
# target) never lists a patient by itself: it feeds the weekly findings and stays on the patient page. A message
# from the patient that nobody of the team has read is a reason too, of a warning's rank (waiting since the oldest
# unread one; ``unread_messages`` counts them). Only patients with an alert of rule $4 (NULL: any; 'patient_message':
# an unread message), not reviewed for $5 days (NULL: any). Order: severity, then clinical priority (the rule's place in $9; unknown rules last), then the longest
# wait; a page of $6 from $7. Each row carries the alerts shown (of rank ≥ $3, info included: they are the figures
# of the patient's weekly findings; per rule only the $8 most severe and recent, with each rule's number in
# ``rules`` / ``rule_counts``) and the number of patients listed. The alerts of a page's patients are windowed,
# not every team's.
TRIAGE_PAGE = """
WITH scoped AS (
    SELECT a.patient_id, a.id, a.rule, a.opened_at,
           array_position(ARRAY['info', 'warning', 'urgent'], a.severity) AS rank,
           COALESCE(array_position($9::text[], a.rule), 1000) AS priority
    FROM patients p
    JOIN alerts a ON a.patient_id = p.id
    WHERE p.team_id = ANY($1::uuid[])
      AND p.archived_at IS NULL
      AND a.status = ANY($2::text[])
      -- implied by $2 ({open} or {open,acknowledged}), said so that a plan made for any $2 still reaches the
      -- team's alerts through the partial index of unresolved alerts, never by scanning every team's history
      AND a.status <> 'resolved'
      AND (a.snoozed_until IS NULL OR a.snoozed_until <= now())
      AND array_position(ARRAY['info', 'warning', 'urgent'], a.severity) >= $3
      AND ($5::int IS NULL OR p.last_reviewed_at IS NULL OR p.last_reviewed_at < now() - make_interval(days => $5))
),
unread AS (
    SELECT m.patient_id, count(*) AS n, min(m.created_at) AS since
    FROM patients p
    JOIN messages m ON m.patient_id = p.id AND m.author = 'patient' AND m.read_at IS NULL
    WHERE p.team_id = ANY($1::uuid[])
      AND p.archived_at IS NULL
      AND ($5::int IS NULL OR p.last_reviewed_at IS NULL OR p.last_reviewed_at < now() - make_interval(days => $5))
    GROUP BY m.patient_id
),
reasons AS (
    SELECT patient_id, rank, priority, opened_at FROM scoped WHERE rank >= 2
    UNION ALL  -- an unread message from the patient is to be reviewed as a warning is, before the rules of its rank
    SELECT patient_id, 2, 0, since FROM unread WHERE $3::int <= 2
),
listed AS (
    SELECT DISTINCT ON (r.patient_id) r.patient_id, r.rank, r.priority, r.opened_at
    FROM reasons r
    WHERE $4::text IS NULL OR EXISTS (SELECT 1 FROM scoped s WHERE s.patient_id = r.patient_id AND s.rule = $4)
       OR ($4 = 'patient_message' AND EXISTS (SELECT 1 FROM unread u WHERE u.patient_id = r.patient_id))
    ORDER BY r.patient_id, r.rank DESC, r.priority, r.opened_at
),
page AS (
    SELECT patient_id, rank, priority, opened_at, count(*) OVER () AS total
    FROM listed
    ORDER BY rank DESC, priority, opened_at, patient_id
    LIMIT $6 OFFSET $7
),
ranked AS (
    SELECT s.*, count(*) OVER (PARTITION BY s.patient_id, s.rule) AS in_rule,
           row_number() OVER (PARTITION BY s.patient_id, s.rule ORDER BY s.rank DESC, s.opened_at DESC, s.id DESC) AS n
    FROM scoped s
    WHERE s.patient_id IN (SELECT patient_id FROM page)
),
heads AS (
    SELECT patient_id,
           array_agg(id ORDER BY rank DESC, priority, opened_at, id) FILTER (WHERE n <= $8) AS alert_ids,
           array_agg(rule ORDER BY rule) FILTER (WHERE n = 1) AS rules,
           array_agg(in_rule ORDER BY rule) FILTER (WHERE n = 1) AS rule_counts
    FROM ranked
    GROUP BY patient_id
)
SELECT pg.patient_id, pg.rank, pg.total, COALESCE(h.alert_ids, '{}') AS alert_ids, COALESCE(h.rules, '{}') AS rules,
       COALESCE(h.rule_counts, '{}') AS rule_counts, p.display_name, p.external_id,
       p.due_date, p.delivery_date, p.treatment, p.profile, p.target_overrides, p.readings_per_day,
       p.last_reviewed_at, p.time_zone, t.name AS team_name,
       COALESCE((SELECT array_agg(DISTINCT d.kind ORDER BY d.kind) FROM devices d
                 WHERE d.patient_id = p.id AND d.active), '{}') AS device_kinds,
       COALESCE(u.n, 0) AS unread_messages, u.since AS unread_since
FROM page pg
LEFT JOIN heads h ON h.patient_id = pg.patient_id
LEFT JOIN unread u ON u.patient_id = pg.patient_id
JOIN patients p ON p.id = pg.patient_id
JOIN care_teams t ON t.id = p.team_id
ORDER BY pg.rank DESC, pg.priority, pg.opened_at, pg.patient_id
"""

# The alerts listed on a triage page, by id (rows of TRIAGE_PAGE name them in order), with the time of the last
# reading of their evidence (``event_at``: what happened when, beside when the alert was opened).
ALERTS_BY_IDS = """
SELECT id, patient_id, rule, severity, status, code, params, message, opened_at, acknowledged_at, acknowledged_by,
       CASE WHEN jsonb_typeof(evidence -> 'measured_at' -> -1) = 'number'
            THEN to_timestamp((evidence -> 'measured_at' ->> -1)::float8) END AS event_at
FROM alerts WHERE id = ANY($1::bigint[]) AND patient_id = ANY($2::uuid[])
"""

# Per patient of $1: the last reading (not after $2), and over [$3, $2] the meter readings (with their local day in
# the patient's zone) and the count of sensor readings, and of those within the pregnancy range [$4, $5] since $6.
PATIENT_FIGURES = """
SELECT s.id AS patient_id,
       last.measured_at AS last_at, last.value_mgdl AS last_value, last.kind AS last_kind, last.flags AS last_flags,
       w.t, w.local_day, w.v, w.context, w.meal, w.minutes, w.flags, w.cgm_n, w.cgm_in
FROM unnest($1::uuid[]) AS s(id)
JOIN patients p ON p.id = s.id
LEFT JOIN LATERAL (
    SELECT r.measured_at, r.value_mgdl, r.kind, r.flags FROM readings r
    WHERE r.patient_id = s.id AND r.measured_at <= $2
    ORDER BY r.measured_at DESC LIMIT 1
) last ON true
LEFT JOIN LATERAL (
    SELECT array_agg(r.measured_at) FILTER (WHERE r.kind = 'smbg') AS t,
           array_agg((r.measured_at AT TIME ZONE p.time_zone)::date) FILTER (WHERE r.kind = 'smbg') AS local_day,
           array_agg(r.value_mgdl) FILTER (WHERE r.kind = 'smbg') AS v,
           array_agg(r.context) FILTER (WHERE r.kind = 'smbg') AS context,
           array_agg(r.meal) FILTER (WHERE r.kind = 'smbg') AS meal,
           array_agg(r.minutes_after_meal) FILTER (WHERE r.kind = 'smbg') AS minutes,
           array_agg(array_to_string(r.flags, ',')) FILTER (WHERE r.kind = 'smbg') AS flags,
           count(*) FILTER (WHERE r.kind = 'cgm' AND r.measured_at >= $6) AS cgm_n,
           count(*) FILTER (WHERE r.kind = 'cgm' AND r.measured_at >= $6 AND r.value_mgdl BETWEEN $4 AND $5) AS cgm_in
    FROM readings r
    WHERE r.patient_id = s.id AND r.measured_at >= $3 AND r.measured_at <= $2
) w ON true
"""

# --- all patients ------------------------------------------------------------------------------------------------

# The teams' patients whose name or hospital number matches $2 (an ILIKE pattern; NULL: all), by name; page of
# $3 from $4.
PATIENTS_PAGE = """
WITH page AS (
    SELECT p.id, count(*) OVER () AS total
    FROM patients p
    WHERE p.team_id = ANY($1::uuid[])
      AND ($2::text IS NULL OR p.display_name ILIKE $2 ESCAPE '\\' OR p.external_id ILIKE $2 ESCAPE '\\')
    ORDER BY p.display_name, p.id
    LIMIT $3 OFFSET $4
)
SELECT p.id AS patient_id, pg.total, p.display_name, p.external_id, p.due_date, p.delivery_date, p.treatment,
       p.profile, p.last_reviewed_at, p.time_zone, t.name AS team_name, p.archived_at,
       (SELECT count(*) FROM alerts a WHERE a.patient_id = p.id AND a.status <> 'resolved') AS open_alerts,
       COALESCE((SELECT array_agg(DISTINCT d.kind ORDER BY d.kind) FROM devices d
                 WHERE d.patient_id = p.id AND d.active), '{}') AS device_kinds,
       (SELECT r.measured_at FROM readings r WHERE r.patient_id = p.id ORDER BY r.measured_at DESC LIMIT 1) AS last_at
FROM page pg
JOIN patients p ON p.id = pg.id
JOIN care_teams t ON t.id = p.team_id
ORDER BY p.display_name, p.id
"""

ALERT_COLUMNS = """
id, patient_id, rule, severity, status, episode_key, code, params, message, evidence, opened_at, updated_at,
acknowledged_at, acknowledged_by, snoozed_until, snoozed_by, resolved_at, resolved_by, resolved_reason, folded_episodes,
folded_last_at
"""

# The patient's unresolved alerts: per rule the $2 most recent, each row with the number of its rule's
# (``in_rule``); and a page of $3 resolved ones, most recently resolved first, from after the resolved alert $4
# (NULL: the first page). One more row than the page is asked for: it says whether an older page exists.
PATIENT_ALERTS = f"""
(SELECT {ALERT_COLUMNS}, in_rule FROM (
    SELECT {ALERT_COLUMNS}, count(*) OVER (PARTITION BY rule) AS in_rule,
           row_number() OVER (PARTITION BY rule ORDER BY opened_at DESC, id DESC) AS n
    FROM alerts WHERE patient_id = $1 AND status <> 'resolved'
 ) u WHERE n <= $2)
UNION ALL
(SELECT {ALERT_COLUMNS}, 1 AS in_rule FROM alerts r
 WHERE patient_id = $1 AND status = 'resolved'
   AND ($4::bigint IS NULL OR (resolved_at, id) < (SELECT c.resolved_at, c.id FROM alerts c
                                                   WHERE c.patient_id = $1 AND c.id = $4 AND c.status = 'resolved'))
 ORDER BY resolved_at DESC, id DESC LIMIT $3 + 1)
"""

# An alert of a patient of the teams $2 (NULL when it is not theirs, or does not exist).
ALERT_IN_TEAMS = """
SELECT a.id, a.patient_id, a.rule, a.status FROM alerts a JOIN patients p ON p.id = a.patient_id
WHERE a.id = $1 AND p.team_id = ANY($2::uuid[])
"""

# The alerts of $1 that belong to patients of the teams $2 (the others are left out).
ALERTS_IN_TEAMS = """
SELECT a.id, a.patient_id, a.rule, a.status FROM alerts a JOIN patients p ON p.id = a.patient_id
WHERE a.id = ANY($1::bigint[]) AND p.team_id = ANY($2::uuid[])
ORDER BY a.id
"""

PATIENT_NOTES = """
SELECT n.id, n.body, n.created_at, n.author_id, c.display_name AS author
FROM patient_notes n LEFT JOIN clinicians c ON c.id = n.author_id
WHERE n.patient_id = $1
ORDER BY n.created_at DESC, n.id DESC
LIMIT $2
"""

INSERT_NOTE = "INSERT INTO patient_notes (patient_id, author_id, body) VALUES ($1, $2, $3) RETURNING id"

INSERT_REVIEW = """
WITH review AS (
    INSERT INTO patient_reviews (patient_id, clinician_id) VALUES ($1, $2) RETURNING reviewed_at
)
UPDATE patients SET last_reviewed_at = (SELECT reviewed_at FROM review) WHERE id = $1
RETURNING last_reviewed_at
"""

UPDATE_PATIENT_SETTINGS = """
UPDATE patients SET profile = $2, treatment = $3, readings_per_day = $4, target_overrides = $5
WHERE id = $1
"""


# What was changed about a patient, and by whom (audit_log), newest first.
PATIENT_HISTORY = """
SELECT a.at, a.actor, a.action, a.detail, c.display_name AS actor_name
FROM audit_log a
LEFT JOIN clinicians c ON c.id = CASE WHEN a.actor LIKE 'clinician:%' THEN substr(a.actor, 11)::uuid END
WHERE a.patient_id = $1 AND a.action = ANY($2::text[])
ORDER BY a.at DESC, a.id DESC
LIMIT $3
"""

# The patient's devices whose uploads were refused since $2: how many items, when last, and the last reason. A
# Nightscout uploader is answered 200 even when everything it sent was refused (readings before the pregnancy, a
# wrong clock), so only the care team can notice it.
PATIENT_DEVICE_REFUSALS = """
SELECT d.id AS device_id, d.kind, d.label, x.refused, last.received_at AS last_at, last.reason AS last_reason
FROM devices d
CROSS JOIN LATERAL (
    SELECT count(*)::int AS refused FROM ingest_rejections r WHERE r.device_id = d.id AND r.received_at >= $2
) x
CROSS JOIN LATERAL (
    SELECT r.received_at, r.reason FROM ingest_rejections r
    WHERE r.device_id = d.id ORDER BY r.received_at DESC, r.id DESC LIMIT 1
) last
WHERE d.patient_id = $1 AND x.refused > 0
ORDER BY last.received_at DESC
"""

# --- live updates ------------------------------------------------------------------------------------------------

# --- the clinic's pages (enrolment) ---------------------------------------------------------------------------

# The time zone a new patient of team $1 most likely lives in: the one of the team's latest enrolment.
TEAM_TIME_ZONE = "SELECT time_zone FROM patients WHERE team_id = $1 ORDER BY created_at DESC, id LIMIT 1"

# The dose review suggestions of patient $1 that were applied, and the plan version each wrote (alerts.dose_review
# records both in the alert's resolve: ``detail.applied``): the alert card says "applied", the plan's history says
# where a version came from.
DOSE_REVIEWS_APPLIED = """
SELECT (detail->>'alert_id')::bigint AS alert_id, (detail->'applied'->>'plan_version')::integer AS version
FROM audit_log
WHERE patient_id = $1 AND action = 'alert.resolve' AND detail ? 'applied'
"""

# The record's height and pre-pregnancy weight (migration 0018), and whether it is archived (the measurements section).
BODY = "SELECT height_cm, pre_pregnancy_weight_kg, archived_at FROM patients WHERE id = $1"
