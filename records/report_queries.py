"""SQL of the patient report and the end-of-monitoring letter (``records.report``)."""

from __future__ import annotations

# The patient if she is one of the teams' $2 (no row: another team's patient, or none), with her team's name and
# the kinds of her active devices (a CGM wearer gets the AGP and the times in ranges).
PATIENT = """
SELECT p.id, p.team_id, t.name AS team_name, p.external_id, p.display_name, p.time_zone, p.due_date,
       p.diagnosis_date, p.delivery_date, p.treatment, p.profile, p.target_overrides, p.readings_per_day,
       p.created_at, p.archived_at,
       COALESCE((SELECT array_agg(DISTINCT d.kind ORDER BY d.kind) FROM devices d
                 WHERE d.patient_id = p.id AND d.active), '{}') AS device_kinds
FROM patients p JOIN care_teams t ON t.id = p.team_id
WHERE p.id = $1 AND p.team_id = ANY($2::uuid[])
"""

# Meter readings of the patient within [$2, $3), in time order (the logbook's columns).
METER_READINGS = """
SELECT id, kind, measured_at, value_mgdl, context, context_inferred, meal, minutes_after_meal, flags
FROM readings
WHERE patient_id = $1 AND kind = 'smbg' AND measured_at >= $2 AND measured_at < $3
ORDER BY measured_at, id
"""

# Sensor readings within [$2, $3) as columns: epoch seconds, mg/dL, minute of the local day ($4 zone).
CGM_READINGS = """
SELECT COALESCE(array_agg(extract(epoch FROM measured_at)::bigint ORDER BY measured_at), '{}') AS t,
       COALESCE(array_agg(value_mgdl ORDER BY measured_at), '{}') AS v,
       COALESCE(array_agg((extract(hour FROM measured_at AT TIME ZONE $4) * 60
                           + extract(minute FROM measured_at AT TIME ZONE $4))::int ORDER BY measured_at), '{}')
           AS local_minute
FROM readings
WHERE patient_id = $1 AND kind = 'cgm' AND measured_at >= $2 AND measured_at < $3
  AND NOT ('control_solution' = ANY(flags))
"""

# The alerts of the period [$2, $3): opened before its end and not resolved before its start, oldest first, at
# most $4 (the report says how many more there were).
ALERTS = """
SELECT id, rule, severity, status, code, params, message, opened_at, acknowledged_at, acknowledged_by,
       snoozed_until, snoozed_by, resolved_at, resolved_by, resolved_reason, folded_episodes,
       count(*) OVER () AS total
FROM alerts
WHERE patient_id = $1 AND opened_at < $3 AND (resolved_at IS NULL OR resolved_at >= $2)
ORDER BY opened_at, id
LIMIT $4
"""

# Who acted on alerts, in words: clinicians by name ($1), API keys by their label ($2).
CLINICIAN_NAMES = "SELECT id, display_name FROM clinicians WHERE id = ANY($1::uuid[])"
API_KEY_LABELS = "SELECT id, label FROM api_keys WHERE id = ANY($1::uuid[])"

# The clinicians' notes written within [$2, $3), oldest first, at most $4.
NOTES = """
SELECT n.body, n.created_at, c.display_name AS author
FROM patient_notes n LEFT JOIN clinicians c ON c.id = n.author_id
WHERE n.patient_id = $1 AND n.created_at >= $2 AND n.created_at < $3
ORDER BY n.created_at, n.id
LIMIT $4
"""
