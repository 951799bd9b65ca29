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
