"""SQL of the CSV exports (records.exports): a patient's glucose readings and other measurements of a period, and
a team's patient list."""

from __future__ import annotations

# Patient $1's readings measured in [$2, $3), then her doses and measurements, each in time order.
PATIENT_READINGS = """
SELECT measured_at, kind, value_mgdl, value_raw, unit_raw, context, context_inferred, meal, minutes_after_meal,
       flags, device_id, source, external_id, note
FROM readings
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at < $3
ORDER BY measured_at, id
"""
PATIENT_MEASUREMENTS = """
SELECT measured_at, kind, value, value_raw, unit_raw, urine, insulin, product, slot, systolic, diastolic, pulse,
       device_id, source, external_id, note
FROM measurements
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at < $3
ORDER BY measured_at, id
"""

# The patients of teams $1 (archived ones when $2), in name order, with what a unit's spreadsheet lists.
TEAM_PATIENTS = """
SELECT p.id, p.external_id, p.display_name, t.name AS team, p.due_date, p.delivery_date, p.diagnosis_date,
       p.profile, p.treatment, p.readings_per_day, p.time_zone, p.created_at, p.archived_at,
       (SELECT max(r.measured_at) FROM readings r WHERE r.patient_id = p.id) AS last_reading_at,
       (SELECT count(*) FROM alerts a WHERE a.patient_id = p.id AND a.status <> 'resolved') AS open_alerts
FROM patients p JOIN care_teams t ON t.id = p.team_id
WHERE p.team_id = ANY($1::uuid[]) AND ($2 OR p.archived_at IS NULL)
ORDER BY p.display_name, p.id
"""
