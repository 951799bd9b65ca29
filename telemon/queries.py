"""SQL of the administration domains (care teams, clinicians, patients, devices, API keys). Values go in as
parameters only."""

# --- care teams and clinicians (telemon.teams) ---------------------------------------------------------------

INSERT_TEAM = "INSERT INTO care_teams (id, name) VALUES ($1, $2)"
TEAM_ID_BY_NAME = "SELECT id FROM care_teams WHERE name = $1"
CLINICIAN_ID_BY_EMAIL = "SELECT id FROM clinicians WHERE lower(email) = lower($1)"
# The care teams $1 (a clinician's), by name: every page that names or offers the reader's teams.
TEAM_NAMES = "SELECT id, name FROM care_teams WHERE id = ANY($1::uuid[]) ORDER BY name, id"
# A team by id or by name ($1), the exact name first.
FIND_TEAM = "SELECT id, name FROM care_teams WHERE id::text = $1 OR name = $1 ORDER BY name = $1 LIMIT 1"
INSERT_CLINICIAN = """
INSERT INTO clinicians (id, email, password_hash, display_name, role, language, display_unit)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
INSERT_MEMBERSHIP = "INSERT INTO team_memberships (team_id, clinician_id) VALUES ($1, $2)"
MEMBER_COLUMNS = """
c.id, c.email, c.display_name, c.role, c.active, c.created_at, c.deactivated_at,
(SELECT max(s.last_seen_at) FROM clinician_sessions s WHERE s.clinician_id = c.id) AS last_seen_at
"""
# The clinicians of the care teams $1, by name.
TEAM_MEMBERS = f"""
SELECT {MEMBER_COLUMNS} FROM clinicians c
WHERE EXISTS (SELECT 1 FROM team_memberships m WHERE m.clinician_id = c.id AND m.team_id = ANY($1::uuid[]))
ORDER BY lower(c.display_name), c.id
"""
TEAM_MEMBER = f"""
SELECT {MEMBER_COLUMNS} FROM clinicians c
WHERE c.id = $1
  AND EXISTS (SELECT 1 FROM team_memberships m WHERE m.clinician_id = c.id AND m.team_id = ANY($2::uuid[]))
"""
SET_PASSWORD = "UPDATE clinicians SET password_hash = $2 WHERE id = $1"  # noqa: S105 - SQL
# End the sessions of clinician $1 except the session $2 (null: all of them); returns how many ended.
END_SESSIONS_BUT = """
WITH ended AS (
    DELETE FROM clinician_sessions WHERE clinician_id = $1 AND ($2::bytea IS NULL OR token_hash <> $2) RETURNING 1
)
SELECT count(*) FROM ended
"""
DEACTIVATE_CLINICIAN = """
UPDATE clinicians SET active = false, deactivated_at = now(), deactivated_by = $2 WHERE id = $1 AND active
RETURNING id
"""
REACTIVATE_CLINICIAN = """
UPDATE clinicians SET active = true, deactivated_at = NULL, deactivated_by = NULL WHERE id = $1 AND NOT active
RETURNING id
"""

# --- one-time links: invitations and password resets (telemon.account_links) ----------------------------------

CLOSE_EXPIRED_LINKS = "UPDATE clinician_links SET closed_at = now() WHERE closed_at IS NULL AND expires_at <= now()"
# An open invitation to the same address, or reset of the same clinician, is replaced by the new one.
CLOSE_OPEN_INVITATION = """
UPDATE clinician_links SET closed_at = now()
WHERE purpose = 'invitation' AND closed_at IS NULL AND lower(email) = lower($1)
"""
CLOSE_CLINICIAN_LINKS = """
UPDATE clinician_links SET closed_at = now() WHERE purpose = 'password_reset' AND closed_at IS NULL AND clinician_id = $1
"""
# A new link valid for $11 seconds; ON CONFLICT: the selector is taken, draw another.
INSERT_LINK = """
INSERT INTO clinician_links (id, purpose, selector, secret_hash, team_id, email, role, language, clinician_id,
                             created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() + make_interval(secs => $11))
ON CONFLICT (selector) DO NOTHING
RETURNING expires_at
"""
LINK_COLUMNS = """
l.id, l.purpose, l.secret_hash, l.team_id, t.name AS team_name, l.email, l.role, l.language, l.clinician_id,
l.created_by, l.created_at, l.expires_at, l.used_at, l.closed_at,
l.closed_at IS NULL AND l.expires_at > now() AS usable
"""
LINK_BY_SELECTOR = f"""
SELECT {LINK_COLUMNS} FROM clinician_links l JOIN care_teams t ON t.id = l.team_id WHERE l.selector = $1
"""
LOCK_LINK = LINK_BY_SELECTOR.rstrip() + " FOR UPDATE OF l"
USE_LINK = "UPDATE clinician_links SET used_at = now(), closed_at = now(), clinician_id = $2 WHERE id = $1"
# The open invitations of the care teams $1, oldest first.
OPEN_INVITATIONS = f"""
SELECT {LINK_COLUMNS} FROM clinician_links l JOIN care_teams t ON t.id = l.team_id
WHERE l.purpose = 'invitation' AND l.closed_at IS NULL AND l.expires_at > now() AND l.team_id = ANY($1::uuid[])
ORDER BY l.created_at, l.id
"""
CANCEL_INVITATION = """
UPDATE clinician_links SET closed_at = now()
WHERE id = $1 AND purpose = 'invitation' AND closed_at IS NULL AND team_id = ANY($2::uuid[])
RETURNING email
"""

# --- patients (telemon.patients) -----------------------------------------------------------------------------

PATIENT_COLUMNS = (
    "id, team_id, external_id, display_name, time_zone, due_date, diagnosis_date, delivery_date, treatment,"
    " profile, readings_per_day"
)
GET_PATIENT = f"SELECT {PATIENT_COLUMNS} FROM patients WHERE id = $1"
# A patient by telemon id or by external id ($1); two rows when the external id is used by several teams.
FIND_PATIENT = f"SELECT {PATIENT_COLUMNS} FROM patients WHERE id::text = $1 OR external_id = $1 LIMIT 2"
# The record as the hospital API shows it: with its archive and its last change.
PATIENT_RECORD_COLUMNS = (
    PATIENT_COLUMNS + ", archived_at, archived_by, created_at, updated_at, height_cm, pre_pregnancy_weight_kg"
)
# Enrol once: a patient of team $2 with external id $3, unless the team has one already (then no row).
INSERT_PATIENT_ONCE = """
INSERT INTO patients (id, team_id, external_id, display_name, time_zone, due_date, diagnosis_date, treatment, profile,
                      readings_per_day, height_cm, pre_pregnancy_weight_kg)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
ON CONFLICT (team_id, external_id) DO NOTHING RETURNING id
"""
# A patient ($1) of the care teams $2 (an API key's); none for another team's patient, as for a missing one.
PATIENT_RECORD_OF_TEAMS = f"SELECT {PATIENT_RECORD_COLUMNS} FROM patients WHERE id = $1 AND team_id = ANY($2::uuid[])"
PATIENT_RECORD_BY_EXTERNAL_ID = f"SELECT {PATIENT_RECORD_COLUMNS} FROM patients WHERE team_id = $1 AND external_id = $2"
LOCK_PATIENT_RECORD = f"SELECT {PATIENT_RECORD_COLUMNS} FROM patients WHERE id = $1 FOR UPDATE"
# A change of the record ($1): each value replaces the stored one; the caller passes the current values of the
# fields it does not change.
UPDATE_PATIENT = f"""
UPDATE patients
SET external_id = $2, display_name = $3, time_zone = $4, due_date = $5, diagnosis_date = $6, treatment = $7,
    profile = $8, readings_per_day = $9, height_cm = $10, pre_pregnancy_weight_kg = $11
WHERE id = $1
RETURNING {PATIENT_RECORD_COLUMNS}
"""
ARCHIVE_PATIENT = f"""
UPDATE patients SET archived_at = now(), archived_by = $2 WHERE id = $1 AND archived_at IS NULL
RETURNING {PATIENT_RECORD_COLUMNS}
"""
UNARCHIVE_PATIENT = f"""
UPDATE patients SET archived_at = NULL, archived_by = NULL WHERE id = $1 AND archived_at IS NOT NULL
RETURNING {PATIENT_RECORD_COLUMNS}
"""
# What enrolment records besides the record of patient $1: her birth year ($2), her language ($3), and the
# diagnostic OGTT's unit ($4) and values in mg/dL ($5 fasting, $6 at 1 h, $7 at 2 h).
SET_ENROLMENT_DETAILS = """
UPDATE patients
SET birth_year = $2, language = $3, ogtt_unit = $4, ogtt_fasting_mgdl = $5, ogtt_1h_mgdl = $6, ogtt_2h_mgdl = $7,
    email = $8
WHERE id = $1
"""
ENROLMENT_DETAILS = """
SELECT birth_year, language, ogtt_unit, ogtt_fasting_mgdl, ogtt_1h_mgdl, ogtt_2h_mgdl, email FROM patients WHERE id = $1
"""
# An archived patient's ($1) devices are revoked: her meter goes back and her app stops sending.
REVOKE_PATIENT_DEVICES = """
UPDATE devices SET active = false, revoked_at = now() WHERE patient_id = $1 AND active RETURNING id
"""
LOCK_DELIVERY_DATE = "SELECT delivery_date FROM patients WHERE id = $1 FOR UPDATE"
SET_DELIVERY_DATE = "UPDATE patients SET delivery_date = $2 WHERE id = $1"

# The device of a token hash ($1) and its patient: the companion app's authentication (telemon.auth.app_device).
APP_DEVICE = """
SELECT d.id AS device_id, d.kind, d.active, d.patient_id, p.archived_at
FROM devices d JOIN patients p ON p.id = d.patient_id
WHERE d.token_hash = $1
"""

# --- devices (telemon.devices) -------------------------------------------------------------------------------

INSERT_DEVICE = """
INSERT INTO devices (patient_id, id, kind, label, token_hash, ns_secret_hash, broker_password)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""
# Enable or disable a device ($2); revoked_at says since when it is disabled.
SET_DEVICE_ACTIVE = """
UPDATE devices SET active = $2, revoked_at = CASE WHEN $2 THEN NULL ELSE COALESCE(revoked_at, now()) END WHERE id = $1
"""
# sha256 of the SHA-512 hex of a new device's token: Nightscout uploaders may send that as their api-secret.
SET_DEVICE_NS_SECRET_512 = "UPDATE devices SET ns_secret512_hash = $2 WHERE id = $1"  # noqa: S105 - SQL
BROKER_ACCOUNTS = "SELECT id, broker_password FROM devices WHERE active ORDER BY id"
DEVICE_COLUMNS = "patient_id, id, kind, label, active, created_at, last_seen_at, revoked_at"
DEVICE_OF_PATIENT = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE patient_id = $1 AND id = $2"
# A patient's ($1) devices, oldest first, with the readings each sent measured in the last 7 days.
DEVICES_OF_PATIENT = f"""
SELECT {DEVICE_COLUMNS},
       (SELECT count(*) FROM readings r
        WHERE r.patient_id = d.patient_id AND r.device_id = d.id AND r.measured_at >= now() - interval '7 days'
       ) AS readings_7d
FROM devices d
WHERE d.patient_id = $1
ORDER BY d.created_at, d.id
"""
LOCK_DEVICE = f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1 FOR UPDATE"
# Revoke a device ($1): the row comes back only when it was active, so a second revoke changes nothing. Its open
# pairing codes close with it.
REVOKE_DEVICE = f"""
UPDATE devices SET active = false, revoked_at = now() WHERE id = $1 AND active RETURNING {DEVICE_COLUMNS}
"""
CLOSE_DEVICE_PAIRING_CODES = "UPDATE pairing_codes SET closed_at = now() WHERE device_id = $1 AND closed_at IS NULL"
# A new token for device $1: every hash of the old one is replaced at once, so it stops working at the next request.
ROTATE_DEVICE_TOKEN = f"""
UPDATE devices
SET token_hash = $2, ns_secret_hash = $3, ns_secret512_hash = $4, broker_password = $5
WHERE id = $1 AND active
RETURNING {DEVICE_COLUMNS}
"""

# --- pairing codes (telemon.devices) -------------------------------------------------------------------------

# Codes past their expiry are closed before a new one is made, so that their selectors can be drawn again.
CLOSE_EXPIRED_PAIRING_CODES = (
    "UPDATE pairing_codes SET closed_at = now() WHERE closed_at IS NULL AND expires_at <= now()"
)
# A new code of device $2 (patient $1), valid for $6 seconds; ON CONFLICT: the selector is taken, draw another.
INSERT_PAIRING_CODE = """
INSERT INTO pairing_codes (patient_id, device_id, selector, secret_hash, created_by, expires_at)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
ON CONFLICT (selector) WHERE closed_at IS NULL DO NOTHING
RETURNING id, expires_at
"""
# The open code of a selector ($1), locked for the attempt, with whether it is still valid.
LOCK_PAIRING_CODE = """
SELECT c.patient_id, c.id, c.device_id, d.kind, c.secret_hash, c.failed_attempts, c.expires_at > now() AS valid,
       d.active AND p.archived_at IS NULL AS usable
FROM pairing_codes c
JOIN devices d ON d.id = c.device_id
JOIN patients p ON p.id = c.patient_id
WHERE c.selector = $1 AND c.closed_at IS NULL
FOR UPDATE OF c
"""
# A wrong secret for code $2 of patient $1: counted; the code closes at the $3rd.
FAIL_PAIRING_CODE = """
UPDATE pairing_codes
SET failed_attempts = failed_attempts + 1,
    closed_at = CASE WHEN failed_attempts + 1 >= $3 THEN now() END
WHERE patient_id = $1 AND id = $2
RETURNING failed_attempts, closed_at IS NOT NULL AS locked
"""
CLOSE_PAIRING_CODE = "UPDATE pairing_codes SET closed_at = now() WHERE patient_id = $1 AND id = $2"
USE_PAIRING_CODE = "UPDATE pairing_codes SET used_at = now(), closed_at = now() WHERE patient_id = $1 AND id = $2"

# --- API keys (telemon.api_keys) -----------------------------------------------------------------------------

INSERT_API_KEY = "INSERT INTO api_keys (id, label, key_hash, scopes) VALUES ($1, $2, $3, $4)"
INSERT_API_KEY_TEAMS = (
    "INSERT INTO api_key_teams (api_key_id, team_id) SELECT $1, t FROM unnest($2::uuid[]) AS t ON CONFLICT DO NOTHING"
)
# The key of a hash ($1) with its care teams. Its last use is written at most once a minute, not on every request.
API_KEY_BY_HASH = """
WITH k AS (SELECT id, label, scopes, last_used_at FROM api_keys WHERE key_hash = $1 AND active),
touched AS (
    UPDATE api_keys SET last_used_at = now() FROM k
    WHERE api_keys.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute')
)
SELECT k.id, k.label, k.scopes,
       ARRAY(SELECT t.team_id FROM api_key_teams t WHERE t.api_key_id = k.id ORDER BY t.team_id) AS team_ids
FROM k
"""
# Every key, or those of one team ($1), with their teams' ids and names in name order. Never the hash.
LIST_API_KEYS = """
SELECT k.id, k.label, k.scopes, k.active, k.created_at, k.last_used_at, k.revoked_at,
       COALESCE(array_agg(t.id ORDER BY t.name) FILTER (WHERE t.id IS NOT NULL), '{}') AS team_ids,
       COALESCE(array_agg(t.name ORDER BY t.name) FILTER (WHERE t.id IS NOT NULL), '{}') AS team_names
FROM api_keys k
LEFT JOIN api_key_teams kt ON kt.api_key_id = k.id
LEFT JOIN care_teams t ON t.id = kt.team_id
WHERE $1::uuid IS NULL OR EXISTS (SELECT 1 FROM api_key_teams f WHERE f.api_key_id = k.id AND f.team_id = $1)
GROUP BY k.id
ORDER BY k.created_at, k.id
"""
# Revoke a key ($1); the row comes back only when it was active, so a second revoke changes nothing.
REVOKE_API_KEY = """
UPDATE api_keys SET active = false, revoked_at = now() WHERE id = $1 AND active RETURNING revoked_at
"""
API_KEY_REVOKED_AT = "SELECT active, revoked_at FROM api_keys WHERE id = $1"

# Monitoring ends for patient $1 (delivery, archive): her alerts still open, except those of rules $2 (the postpartum
# ones at a delivery), are resolved by the system with reason $3, the conditions of those rules waiting for
# confirmation forgotten, each change announced on channel $5. A delivery date $4 still ahead in her time zone ends
# nothing yet (NULL: now).
RESOLVE_BY_SYSTEM = """
WITH p AS (
    SELECT id FROM patients WHERE id = $1 AND ($4::date IS NULL OR $4::date <= (now() AT TIME ZONE time_zone)::date)
),
pending AS (
    DELETE FROM alert_pending WHERE patient_id IN (SELECT id FROM p) AND NOT (rule = ANY($2::text[]))
),
r AS (
    UPDATE alerts
    SET status = 'resolved', resolved_at = now(), resolved_by = 'system', resolved_reason = $3, updated_at = now()
    WHERE patient_id IN (SELECT id FROM p) AND status <> 'resolved' AND NOT (rule = ANY($2::text[]))
    RETURNING id, patient_id, rule, severity, status
)
SELECT r.id, pg_notify($5::text, json_build_object(
           'id', r.id, 'patient_id', r.patient_id, 'rule', r.rule, 'severity', r.severity, 'status', r.status,
           'change', 'resolved')::text)
FROM r
"""

# The care team of each of the patients $1 (telemon.live: whose streams a notification goes to).
PATIENT_TEAMS = "SELECT id, team_id FROM patients WHERE id = ANY($1::uuid[])"
