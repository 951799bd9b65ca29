"""SQL of the patient's own API. Every statement is bound to the patient the device token belongs to: there is
no parameter through which a caller could name another patient."""

from __future__ import annotations

# What the patient's API needs of the patient of an app token (telemon.auth.app_device found her).
PATIENT_OF_APP = """
SELECT p.id AS patient_id, p.display_name, p.language, p.time_zone, p.profile, p.treatment, p.target_overrides,
       p.due_date, p.delivery_date, p.archived_at
FROM patients p WHERE p.id = $1
"""

SET_LANGUAGE = "UPDATE patients SET language = $2 WHERE id = $1"

# Her readings of every device (the app's own and her connected meters and sensors), in time order after the
# cursor's position; one row more than the page tells whether there is a next page.
MY_READINGS = """
SELECT id, measured_at, value_mgdl, kind, context, context_inferred, meal, minutes_after_meal, device_id,
       flags, note, external_id
FROM readings
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at < $3
  AND (measured_at, id) > ($4, $5) AND ($7::text IS NULL OR kind = $7)
ORDER BY measured_at, id
LIMIT $6
"""

DEVICE_KINDS = "SELECT id, kind FROM devices WHERE patient_id = $1"

# Her insulin doses, ketones, weights and blood pressures of every device, in time order after the cursor's
# position; one row more than the page tells whether there is a next page.
MY_MEASUREMENTS = """
SELECT id, kind, measured_at, value, value_raw, unit_raw, urine, insulin, product, slot, systolic, diastolic, pulse,
       device_id, external_id, note
FROM measurements
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at < $3
  AND (measured_at, id) > ($4, $5) AND ($7::text IS NULL OR kind = $7)
ORDER BY measured_at, id
LIMIT $6
"""
