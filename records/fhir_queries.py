"""SQL of the FHIR read side and the CGM summary. Values go in as parameters only; every query is limited to the
patients of the API key's care teams, so that another team's patient is answered exactly like a missing one."""

# A patient ($1) of the API key's care teams ($2) as the Patient resource shows her.
FHIR_PATIENT = """
SELECT id, external_id, display_name, time_zone, due_date, delivery_date, archived_at, updated_at
FROM patients WHERE id = $1 AND team_id = ANY($2::uuid[])
"""

# The patients of the key's care teams ($2) whose hospital number is $1 (unique within a team, so one row per team).
FHIR_PATIENTS_BY_EXTERNAL_ID = """
SELECT id, external_id, display_name, time_zone, due_date, delivery_date, archived_at, updated_at
FROM patients WHERE external_id = $1 AND team_id = ANY($2::uuid[])
ORDER BY id
"""

# The patient's time zone (a date in a search bound is her local midnight), or no row: not a patient of these teams.
FHIR_PATIENT_ZONE = "SELECT time_zone FROM patients WHERE id = $1 AND team_id = ANY($2::uuid[])"

# One page of a patient's Observations ($1) within [$2, $3), of the kinds $4: glucose readings (src 0; the readings
# of a control solution are no glucose of hers and are left out) and the other measurements (src 1, insulin doses
# apart: a dose is no Observation). Keyset paging on (measured_at, src, id): strictly after ($5, $6, $7) going
# forward, strictly before it going back (newest first, the caller reverses the page); $8 rows. The device's label
# comes with each row for Observation.device.
_OBSERVATION_COLUMNS = """
src, id, measured_at, received_at, kind, device_id, value_mgdl, value_raw, unit_raw, flags, note,
value, urine, systolic, diastolic, pulse
"""
_READINGS_BRANCH = """
SELECT 0 AS src, id, measured_at, received_at, kind, device_id, value_mgdl, value_raw, unit_raw, flags, note,
       NULL::float8 AS value, NULL::text AS urine, NULL::float8 AS systolic, NULL::float8 AS diastolic,
       NULL::float8 AS pulse
FROM readings
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at < $3 AND kind = ANY($4::text[])
  AND NOT ('control_solution' = ANY(flags))
"""
_MEASUREMENTS_BRANCH = """
SELECT 1 AS src, id, measured_at, received_at, kind, device_id, NULL::float8 AS value_mgdl, value_raw, unit_raw,
       '{}'::text[] AS flags, note, value, urine, systolic, diastolic, pulse
FROM measurements
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at < $3 AND kind = ANY($4::text[]) AND kind <> 'insulin'
"""
_WITH_DEVICE = """
SELECT o.*, d.label AS device_label, d.kind AS device_kind
FROM page o LEFT JOIN devices d ON d.patient_id = $1 AND d.id = o.device_id
"""
OBSERVATIONS_AFTER = f"""
WITH page AS (
    (SELECT {_OBSERVATION_COLUMNS} FROM ({_READINGS_BRANCH}) r WHERE (measured_at, 0, id) > ($5, $6, $7)
     ORDER BY measured_at, id LIMIT $8)
    UNION ALL
    (SELECT {_OBSERVATION_COLUMNS} FROM ({_MEASUREMENTS_BRANCH}) m WHERE (measured_at, 1, id) > ($5, $6, $7)
     ORDER BY measured_at, id LIMIT $8)
    ORDER BY measured_at, src, id LIMIT $8
)
{_WITH_DEVICE}
ORDER BY o.measured_at, o.src, o.id
"""
OBSERVATIONS_BEFORE = f"""
WITH page AS (
    (SELECT {_OBSERVATION_COLUMNS} FROM ({_READINGS_BRANCH}) r WHERE (measured_at, 0, id) < ($5, $6, $7)
     ORDER BY measured_at DESC, id DESC LIMIT $8)
    UNION ALL
    (SELECT {_OBSERVATION_COLUMNS} FROM ({_MEASUREMENTS_BRANCH}) m WHERE (measured_at, 1, id) < ($5, $6, $7)
     ORDER BY measured_at DESC, id DESC LIMIT $8)
    ORDER BY measured_at DESC, src DESC, id DESC LIMIT $8
)
{_WITH_DEVICE}
ORDER BY o.measured_at DESC, o.src DESC, o.id DESC
"""
# How many Observations the search matches ($1–$4 as above), for Bundle.total.
OBSERVATIONS_TOTAL = f"""
SELECT (SELECT count(*) FROM ({_READINGS_BRANCH}) r) + (SELECT count(*) FROM ({_MEASUREMENTS_BRANCH}) m)
"""

# The CGM readings of a patient within [$2, $3) as columns, as the dashboard reads them (a control solution is no
# glucose): mg/dL, and the local day number ($4 zone) of each, for the days of wear.
CGM_VALUES = """
SELECT COALESCE(array_agg(value_mgdl ORDER BY measured_at), '{}') AS v,
       COALESCE(array_agg(DISTINCT (measured_at AT TIME ZONE $4)::date), '{}') AS local_days
FROM readings
WHERE patient_id = $1 AND kind = 'cgm' AND measured_at >= $2 AND measured_at < $3
  AND NOT ('control_solution' = ANY(flags))
"""

# One Observation by id, among the patients of the key's care teams ($2): a reading ($1), or a measurement (insulin
# doses apart). Looked up patient by patient through the (patient_id, id) indexes; the patient comes with the row.
OBSERVATION_READING = """
SELECT 0 AS src, r.id, r.patient_id, r.measured_at, r.received_at, r.kind, r.device_id, r.value_mgdl, r.value_raw,
       r.unit_raw, r.flags, r.note, NULL::float8 AS value, NULL::text AS urine, NULL::float8 AS systolic,
       NULL::float8 AS diastolic, NULL::float8 AS pulse, d.label AS device_label, d.kind AS device_kind
FROM patients p
JOIN readings r ON r.patient_id = p.id AND r.id = $1
LEFT JOIN devices d ON d.patient_id = r.patient_id AND d.id = r.device_id
WHERE p.team_id = ANY($2::uuid[]) AND NOT ('control_solution' = ANY(r.flags))
"""
OBSERVATION_MEASUREMENT = """
SELECT 1 AS src, m.id, m.patient_id, m.measured_at, m.received_at, m.kind, m.device_id, NULL::float8 AS value_mgdl,
       m.value_raw, m.unit_raw, '{}'::text[] AS flags, m.note, m.value, m.urine, m.systolic, m.diastolic, m.pulse,
       d.label AS device_label, d.kind AS device_kind
FROM patients p
JOIN measurements m ON m.patient_id = p.id AND m.id = $1
LEFT JOIN devices d ON d.patient_id = m.patient_id AND d.id = m.device_id
WHERE p.team_id = ANY($2::uuid[]) AND m.kind <> 'insulin'
"""
