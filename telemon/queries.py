"""SQL of the administration domains (care teams, clinicians, patients, devices). Values go in as parameters only."""

# --- care teams and clinicians (telemon.teams) ---------------------------------------------------------------

INSERT_TEAM = "INSERT INTO care_teams (id, name) VALUES ($1, $2)"
TEAM_ID_BY_NAME = "SELECT id FROM care_teams WHERE name = $1"
CLINICIAN_EXISTS = "SELECT 1 FROM clinicians WHERE lower(email) = lower($1)"
# A team by id or by name ($1), the exact name first.
FIND_TEAM = "SELECT id, name FROM care_teams WHERE id::text = $1 OR name = $1 ORDER BY name = $1 LIMIT 1"
INSERT_CLINICIAN = """
INSERT INTO clinicians (id, email, password_hash, display_name, role, language, display_unit)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
INSERT_MEMBERSHIP = "INSERT INTO team_memberships (team_id, clinician_id) VALUES ($1, $2)"

# --- patients (telemon.patients) -----------------------------------------------------------------------------

PATIENT_COLUMNS = (
    "id, team_id, external_id, display_name, time_zone, due_date, diagnosis_date, delivery_date, treatment,"
    " profile, readings_per_day"
)
INSERT_PATIENT = """
INSERT INTO patients (id, team_id, external_id, display_name, time_zone, due_date, diagnosis_date, treatment, profile,
                      readings_per_day)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""
GET_PATIENT = f"SELECT {PATIENT_COLUMNS} FROM patients WHERE id = $1"
# A patient by telemon id or by external id ($1); two rows when the external id is used by several teams.
FIND_PATIENT = f"SELECT {PATIENT_COLUMNS} FROM patients WHERE id::text = $1 OR external_id = $1 LIMIT 2"
LOCK_DELIVERY_DATE = "SELECT delivery_date FROM patients WHERE id = $1 FOR UPDATE"
SET_DELIVERY_DATE = "UPDATE patients SET delivery_date = $2 WHERE id = $1"

# --- devices (telemon.devices) -------------------------------------------------------------------------------

INSERT_DEVICE = """
INSERT INTO devices (patient_id, id, kind, label, token_hash, ns_secret_hash, broker_password)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
SET_DEVICE_ACTIVE = "UPDATE devices SET active = $2 WHERE id = $1"
BROKER_ACCOUNTS = "SELECT id, broker_password FROM devices WHERE active ORDER BY id"
