"""SQL of the ingest domain. Values go in as parameters only; bulk writes use ``unnest`` arrays."""

DEVICE_CONTEXT = """
SELECT d.id AS device_id, d.kind AS device_kind, d.active, p.id AS patient_id, p.time_zone,
       p.due_date - 280 AS pregnancy_start
FROM devices d JOIN patients p ON p.id = d.patient_id
"""
DEVICE_CONTEXT_BY_IDS = DEVICE_CONTEXT + " WHERE d.id = ANY($1::text[])"
DEVICE_CONTEXT_BY_TOKEN = DEVICE_CONTEXT + " WHERE d.token_hash = $1"
DEVICE_CONTEXT_BY_NS_SECRET = DEVICE_CONTEXT + " WHERE d.ns_secret_hash = $1"

# Readings are copied (COPY) into a per-connection staging table, then inserted from it in one statement.
# ``message`` is the position of the message a row came from, ``position`` the row's place in the batch. The
# device time travels as microseconds since the Unix epoch and the flags as an array literal (``Row.record``):
# encoding those is much cheaper than encoding timestamptz and text[] values; measured_at is the device time plus
# the clock offset.
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
    message int, position int, patient_id uuid, device_id text, kind text, device_us bigint,
    value_raw float8, unit_raw text, value_mgdl float8, clock_offset_s int, context text, context_inferred bool,
    meal text, minutes_after_meal int2, flags text, source text, external_id text, note text
) ON COMMIT DELETE ROWS
"""
STAGING_COLUMNS = (
    "message", "position", "patient_id", "device_id", "kind", "device_us", "value_raw", "unit_raw", "value_mgdl",
    "clock_offset_s", "context", "context_inferred", "meal", "minutes_after_meal", "flags", "source",
    "external_id", "note",
)  # fmt: skip
# (whole seconds and the microseconds apart: a float8 holds every microsecond only up to the year 2255)
_DEVICE_TIME = "(to_timestamp(s.device_us / 1000000) + s.device_us % 1000000 * interval '1 microsecond')"

# The dedup key is the primary key (patient_id, device_id, kind, device_time, value_raw): what the device said.
INSERT_FROM_STAGING = f"""
INSERT INTO readings (patient_id, device_id, kind, device_time, value_raw, unit_raw, measured_at, value_mgdl,
                      clock_offset_s, context, context_inferred, meal, minutes_after_meal, flags, source,
                      external_id, note)
SELECT s.patient_id, s.device_id, s.kind, {_DEVICE_TIME}, s.value_raw, s.unit_raw,
       {_DEVICE_TIME} + s.clock_offset_s * interval '1 second', s.value_mgdl, s.clock_offset_s, s.context,
       s.context_inferred, s.meal, s.minutes_after_meal, s.flags::text[], s.source, s.external_id, s.note
FROM ingest_staging s
ORDER BY s.position
ON CONFLICT DO NOTHING
"""

# How many rows each message added, when several messages share a transaction and some rows were duplicates:
# a row inserted by this transaction has its xmin; a key sent twice counts for the first message that sent it.
INSERTED_PER_MESSAGE = f"""
SELECT message, count(*) AS inserted FROM (
    SELECT DISTINCT ON (s.patient_id, s.device_id, s.kind, s.device_us, s.value_raw) s.message
    FROM ingest_staging s
    JOIN readings r ON r.patient_id = s.patient_id AND r.device_id = s.device_id AND r.kind = s.kind
                   AND r.device_time = {_DEVICE_TIME} AND r.value_raw = s.value_raw
    WHERE r.xmin = pg_current_xact_id()::xid
    ORDER BY s.patient_id, s.device_id, s.kind, s.device_us, s.value_raw, s.position
) first_senders
GROUP BY message
"""

# New readings, announced to the dashboards (all API processes) on the channel telemon_readings; each payload
# is {"patient_ids": [...]}, short enough for NOTIFY's 8,000 bytes.
NOTIFY_READINGS = "SELECT pg_notify('telemon_readings', payload) FROM unnest($1::text[]) AS payload"

INSERT_REJECTIONS = """
INSERT INTO ingest_rejections (patient_id, device_id, source, item_index, reason, raw)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[])
"""

# last_seen_at to the minute: a device syncing every few seconds does not rewrite its row every time
TOUCH_DEVICES = """
UPDATE devices SET last_seen_at = now()
WHERE id = ANY($1::text[]) AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 minute')
"""

# Stored readings by their dedup key, whether just inserted or already there; $6 is the position of each key.
STORED_BY_KEY = """
SELECT k.position, r.id, r.kind, r.measured_at, r.value_mgdl, r.device_id, r.external_id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::int[])
     AS k(patient_id, device_id, kind, device_time, value_raw, position)
JOIN readings r ON r.patient_id = k.patient_id AND r.device_id = k.device_id AND r.kind = k.kind
               AND r.device_time = k.device_time AND r.value_raw = k.value_raw
"""

PATIENT_EXISTS = "SELECT EXISTS (SELECT 1 FROM patients WHERE id = $1)"

READINGS_PAGE = """
SELECT id, measured_at, value_mgdl, value_raw, unit_raw, kind, context, context_inferred, meal,
       minutes_after_meal, device_id, flags, source, device_time, clock_offset_s, note
FROM readings
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at < $3
  AND (measured_at, id) > ($4, $5)
ORDER BY measured_at, id
LIMIT $6
"""

# --- FHIR import (ingest/fhir.py) -------------------------------------------------------------------------------

# An Observation's subject: by telemon id, or by the hospital's number (external_id, unique only within a team,
# so one value may name patients of several teams: the caller refuses it as ambiguous).
FHIR_PATIENTS_BY_IDS = "SELECT id FROM patients WHERE id = ANY($1::uuid[])"
FHIR_PATIENTS_BY_EXTERNAL_IDS = "SELECT external_id, id FROM patients WHERE external_id = ANY($1::text[])"

# The per-patient device hospital imports are stored under (id ``fhir-<patient uuid hex>``, deterministic so that a
# re-import deduplicates). It never authenticates: readings come with an API key, and its token, Nightscout secret
# and broker password are hashes of a secret that was thrown away. ON CONFLICT DO NOTHING: created once, even
# when two imports race.
FHIR_INSERT_DEVICES = """
INSERT INTO devices (patient_id, id, kind, label, token_hash, ns_secret_hash, broker_password, active)
SELECT d.patient_id, d.id, 'app', 'FHIR import (hospital)', d.token_hash, d.ns_secret_hash, d.broker_password, true
FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::text[])
     AS d(patient_id, id, token_hash, ns_secret_hash, broker_password)
ON CONFLICT DO NOTHING
"""

# --- Nightscout API (ingest/nightscout.py) ----------------------------------------------------------------------

# A patient's latest readings, newest first, within [$2, $3] (inclusive bounds), of one kind ($4) or all (NULL).
NS_ENTRIES = """
SELECT id, kind, measured_at, value_mgdl, device_id, external_id
FROM readings
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at <= $3 AND ($4::text IS NULL OR kind = $4)
ORDER BY measured_at DESC, id DESC
LIMIT $5
"""
