"""SQL of the clinic's API that is not a record's own (those are in ``telemon.queries``): the lists, and the
per-address limit on pairing attempts. Values go in as parameters only."""

from telemon.queries import PATIENT_RECORD_COLUMNS

# The patients of care teams $1, by last change then id (a client that fetches what changed since its last call
# follows the cursor to the end): $2 'active', 'archived' or 'all'; $3 changed at or after this time (or null);
# after the position ($4, $5); $6 rows.
LIST_PATIENTS = f"""
SELECT {PATIENT_RECORD_COLUMNS}
FROM patients
WHERE team_id = ANY($1::uuid[])
  AND ($2 = 'all' OR ($2 = 'active') = (archived_at IS NULL))
  AND ($3::timestamptz IS NULL OR updated_at >= $3)
  AND (updated_at, id) > ($4, $5)
ORDER BY updated_at, id
LIMIT $6
"""


# Failed pairing attempts of address $1 in the current window of $2 seconds, and the seconds left in it.
PAIRING_FAILURES = """
WITH w AS (SELECT date_bin(make_interval(secs => $2), now(), timestamptz '2000-01-01') AS start)
SELECT COALESCE((SELECT failures FROM pairing_attempts a, w WHERE a.address = $1 AND a.window_start = w.start), 0)
           AS failures,
       ceil(extract(epoch FROM (SELECT start FROM w) + make_interval(secs => $2) - now()))::int AS seconds_left
"""
# One more failed attempt of address $1 in the current window of $2 seconds; windows older than a day are dropped.
COUNT_PAIRING_FAILURE = """
WITH gone AS (DELETE FROM pairing_attempts WHERE window_start < now() - interval '1 day')
INSERT INTO pairing_attempts (address, window_start, failures)
VALUES ($1, date_bin(make_interval(secs => $2), now(), timestamptz '2000-01-01'), 1)
ON CONFLICT (address, window_start) DO UPDATE SET failures = pairing_attempts.failures + 1
"""


# --- messages (clinic.messages) ---------------------------------------------------------------------------------

MESSAGE_COLUMNS = """m.id, m.patient_id, m.author, m.clinician_id, m.device_id, m.body, m.alert_id, m.created_at,
       m.read_at, m.read_by, COALESCE(c.display_name, '') AS clinician_name"""

# A new message of patient $1 by $2 ('patient' or 'clinician'; clinician $3 or device $4), body $5, answering alert
# $6 (of the same patient, or null); the dashboards and the patient's app are told on channel $7.
INSERT_MESSAGE = f"""
WITH m AS (
    INSERT INTO messages (patient_id, author, clinician_id, device_id, body, alert_id)
    VALUES ($1, $2, $3, $4, $5, $6)
    RETURNING *
), told AS (
    SELECT pg_notify($7::text, json_build_object('patient_id', m.patient_id, 'id', m.id, 'author', m.author)::text)
    FROM m
)
SELECT {MESSAGE_COLUMNS}, (SELECT count(*) FROM told) AS told
FROM m LEFT JOIN clinicians c ON c.id = m.clinician_id
"""

# The messages of patient $1, newest first, before id $2 (the cursor) and after id $3 (what an app already has),
# $4 rows.
MESSAGES_PAGE = f"""
SELECT {MESSAGE_COLUMNS}
FROM messages m LEFT JOIN clinicians c ON c.id = m.clinician_id
WHERE m.patient_id = $1 AND m.id < $2 AND m.id > $3
ORDER BY m.id DESC
LIMIT $4
"""

# The messages of author $2 to patient $1's conversation, up to id $3, are read now by $4; the other side is told
# (channel $5) which ones.
MARK_READ = """
WITH read AS (
    UPDATE messages SET read_at = now(), read_by = $4
    WHERE patient_id = $1 AND author = $2 AND id <= $3 AND read_at IS NULL
    RETURNING id
), told AS (
    SELECT pg_notify($5::text, json_build_object('patient_id', $1::uuid, 'read', $2::text,
                                                 'ids', array_agg(id ORDER BY id))::text)
    FROM read HAVING count(*) > 0
)
SELECT COALESCE(array_agg(id ORDER BY id), '{}') AS ids, (SELECT count(*) FROM told) AS told FROM read
"""

# The alert $2 of patient $1 (a reply names one of hers only).
ALERT_OF_PATIENT = "SELECT id FROM alerts WHERE patient_id = $1 AND id = $2"

# The templates of team $1, by title in language $2.
TEAM_TEMPLATES = """
SELECT id, team_id, title_en, title_fr, body_en, body_fr, updated_at, updated_by
FROM message_templates WHERE team_id = $1
ORDER BY CASE WHEN $2 = 'fr' THEN title_fr ELSE title_en END, id
"""
TEMPLATE = """
SELECT id, team_id, title_en, title_fr, body_en, body_fr, updated_at, updated_by
FROM message_templates WHERE team_id = $1 AND id = $2
"""
INSERT_TEMPLATE = """
INSERT INTO message_templates (team_id, title_en, title_fr, body_en, body_fr, updated_by)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING id
"""
UPDATE_TEMPLATE = """
UPDATE message_templates SET title_en = $3, title_fr = $4, body_en = $5, body_fr = $6, updated_at = now(),
       updated_by = $7
WHERE team_id = $1 AND id = $2 RETURNING id
"""
DELETE_TEMPLATE = "DELETE FROM message_templates WHERE team_id = $1 AND id = $2 RETURNING id"

# Where the notice of a new message goes: the patient's address and language (null address: no notice).
PATIENT_CONTACT = "SELECT email, language FROM patients WHERE id = $1"
