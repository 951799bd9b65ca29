"""SQL of the postpartum glucose tests (``telemon.postpartum``)."""

from __future__ import annotations

TEST_COLUMNS = """
    patient_id, id, tested_on, test, unit, fasting_entered, two_hour_entered, fasting_mgdl, two_hour_mgdl,
    hba1c_percent, hba1c_mmol_mol, classification, findings, follow_up, profile, source, recorded_by, recorded_at
"""

# The patient's row is locked, so that a delivery date corrected at the same time is seen before the test's date is
# judged against it.
LOCK_PATIENT = "SELECT time_zone, delivery_date, profile, archived_at FROM patients WHERE id = $1 FOR UPDATE"

INSERT_TEST = f"""
INSERT INTO postpartum_tests (
    patient_id, tested_on, test, unit, fasting_entered, two_hour_entered, fasting_mgdl, two_hour_mgdl,
    hba1c_percent, hba1c_mmol_mol, classification, findings, follow_up, profile, source, recorded_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
RETURNING {TEST_COLUMNS}
"""

# Newest first: by the date of the test, then by when it was recorded (the current test is the first).
TESTS_OF_PATIENT = f"""
SELECT {TEST_COLUMNS} FROM postpartum_tests WHERE patient_id = $1 ORDER BY tested_on DESC, id DESC LIMIT $2
"""

# A recorded test answers the reminder that it is due: patient $1's alerts still open of rules $2 (the postpartum
# test reminder) are resolved by the system with reason $3, each change announced on channel $4 (as the core's
# RESOLVE_BY_SYSTEM does at a delivery or an archive).
RESOLVE_REMINDERS = """
WITH r AS (
    UPDATE alerts
    SET status = 'resolved', resolved_at = now(), resolved_by = 'system', resolved_reason = $3, updated_at = now()
    WHERE patient_id = $1 AND status <> 'resolved' AND rule = ANY($2::text[])
    RETURNING id, patient_id, rule, severity, status
)
SELECT r.id, pg_notify($4::text, json_build_object(
           'id', r.id, 'patient_id', r.patient_id, 'rule', r.rule, 'severity', r.severity, 'status', r.status,
           'change', 'resolved')::text)
FROM r
"""
