"""SQL of what a patient's record shows over a period, read alike by the dashboard's patient page
(``clinician_ui.patient``, ``clinician_ui.measurements``) and the printed report (``records.report``): the patient
within the reader's teams, her meter and sensor readings, and her doses, ketones, blood pressures and weights, so
that paper and screen show the same rows."""

from __future__ import annotations

# The patient if she is one of the teams' $2 (no row: another team's patient, or none), with her team's name and
# the kinds of her active devices (a CGM wearer gets the AGP and the times in ranges).
PATIENT = """
SELECT p.id, p.team_id, t.name AS team_name, p.external_id, p.display_name, p.time_zone, p.due_date,
       p.diagnosis_date, p.delivery_date, p.treatment, p.profile, p.target_overrides, p.readings_per_day,
       p.last_reviewed_at, p.created_at, p.archived_at,
       COALESCE((SELECT array_agg(DISTINCT d.kind ORDER BY d.kind) FROM devices d
                 WHERE d.patient_id = p.id AND d.active), '{}') AS device_kinds
FROM patients p JOIN care_teams t ON t.id = p.team_id
WHERE p.id = $1 AND p.team_id = ANY($2::uuid[])
"""

# Meter readings of a patient within [$2, $3) (columns of the readings_patient_time index: an index-only scan).
METER_READINGS = """
SELECT id, kind, measured_at, value_mgdl, context, context_inferred, meal, minutes_after_meal, flags
FROM readings
WHERE patient_id = $1 AND kind = 'smbg' AND measured_at >= $2 AND measured_at < $3
ORDER BY measured_at, id
"""

# Sensor readings of a patient within [$2, $3) as columns: epoch seconds, mg/dL, minute of the local day ($4 zone).
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

# Insulin doses of patient $1 measured in [$2, $3): the logbook's doses.
INSULIN_DOSES = """
SELECT id, measured_at, value, insulin, product, slot
FROM measurements
WHERE patient_id = $1 AND kind = 'insulin' AND measured_at >= $2 AND measured_at < $3
ORDER BY measured_at, id
"""

# The newest ketone measurement (blood value in mmol/L, or urine grade) of patient $1.
LATEST_KETONE = """
SELECT measured_at, value, urine
FROM measurements
WHERE patient_id = $1 AND kind = 'ketone'
ORDER BY measured_at DESC, id DESC
LIMIT 1
"""

# Blood pressures of patient $1 measured since $2, newest first, at most $3.
BLOOD_PRESSURES = """
SELECT measured_at, systolic, diastolic, pulse
FROM measurements
WHERE patient_id = $1 AND kind = 'blood_pressure' AND measured_at >= $2
ORDER BY measured_at DESC, id DESC
LIMIT $3
"""

# Weights (kg) of patient $1 measured in [$2, $3), in time order, at most the $4 newest.
WEIGHTS = """
SELECT measured_at, value FROM (
    SELECT measured_at, value, id
    FROM measurements
    WHERE patient_id = $1 AND kind = 'weight' AND measured_at >= $2 AND measured_at < $3
    ORDER BY measured_at DESC, id DESC
    LIMIT $4
) AS newest
ORDER BY measured_at, id
"""
