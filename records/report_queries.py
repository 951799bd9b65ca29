"""SQL of the patient report and the end-of-monitoring letter (``records.report``)."""

from __future__ import annotations

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

# Ketones, blood pressures and weights of the period [$2, $3), in time order, at most $4.
MEASURES = """
SELECT kind, measured_at, value, urine, systolic, diastolic, pulse
FROM measurements
WHERE patient_id = $1 AND kind IN ('ketone', 'blood_pressure', 'weight') AND measured_at >= $2 AND measured_at < $3
ORDER BY measured_at, id
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
