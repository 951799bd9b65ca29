"""SQL of the treatment record beside the glucose on the patient page (``clinician_ui.measurements``): insulin
doses, ketones, blood pressure and weight from ``measurements`` (migration 0015), and the record's height and
pre-pregnancy weight (migration 0018)."""

from __future__ import annotations

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

BODY = "SELECT height_cm, pre_pregnancy_weight_kg, archived_at FROM patients WHERE id = $1"
