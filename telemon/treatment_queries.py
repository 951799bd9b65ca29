"""SQL of the treatment plan's versions (``telemon.treatment``)."""

from __future__ import annotations

PLAN_COLUMNS = """
    patient_id, version, treatment, metformin_mg, metformin_times, basal_product, basal_units, basal_time,
    prandial_product, prandial_breakfast, prandial_lunch, prandial_dinner, instruction, note, created_by, created_at
"""

CURRENT_PLAN = f"SELECT {PLAN_COLUMNS} FROM treatment_plans WHERE patient_id = $1 ORDER BY version DESC LIMIT 1"

VERSION_IN_FORCE = "SELECT max(version) FROM treatment_plans WHERE patient_id = $1"

PLAN_HISTORY = f"SELECT {PLAN_COLUMNS} FROM treatment_plans WHERE patient_id = $1 ORDER BY version DESC LIMIT $2"

# The patient's row is locked first, so that two changes at once get versions one after the other.
LOCK_PATIENT_TREATMENT = "SELECT treatment, archived_at FROM patients WHERE id = $1 FOR UPDATE"

INSERT_PLAN = f"""
INSERT INTO treatment_plans (
    patient_id, version, treatment, metformin_mg, metformin_times, basal_product, basal_units, basal_time,
    prandial_product, prandial_breakfast, prandial_lunch, prandial_dinner, instruction, note, created_by)
SELECT $1, COALESCE(max(version), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
FROM treatment_plans WHERE patient_id = $1
RETURNING {PLAN_COLUMNS}
"""

SET_PATIENT_TREATMENT = "UPDATE patients SET treatment = $2 WHERE id = $1"
