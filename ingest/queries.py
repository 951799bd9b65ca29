"""SQL of the ingest domain. Values go in as parameters only; bulk writes use ``COPY`` or ``unnest`` arrays."""

DEVICE_CONTEXT = """
SELECT d.id AS device_id, d.kind AS device_kind, d.active, p.id AS patient_id, p.time_zone,
       p.due_date - 280 AS pregnancy_start
FROM devices d JOIN patients p ON p.id = d.patient_id
"""
DEVICE_CONTEXT_BY_IDS = DEVICE_CONTEXT + " WHERE d.id = ANY($1::text[])"
DEVICE_CONTEXT_BY_TOKEN = DEVICE_CONTEXT + " WHERE d.token_hash = $1"
# A Nightscout api-secret: the SHA-1 or the SHA-512 hex of the device token (sha256 of the lowercase hex stored).
DEVICE_CONTEXT_BY_NS_SECRET = DEVICE_CONTEXT + " WHERE d.ns_secret_hash = $1 OR d.ns_secret512_hash = $1"
# A device that authenticated with its token gets the hash of its SHA-512 secret if it has none yet ($2).
FILL_DEVICE_NS_SHA512 = "UPDATE devices SET ns_secret512_hash = $2 WHERE id = $1 AND ns_secret512_hash IS NULL"

# Readings are copied (COPY) into a per-connection staging table, then stored by one statement (``STORE``).
# ``message`` is the position of the message a row came from, ``position`` the row's place in the batch. The
# device time travels as microseconds since the Unix epoch and the flags as an array literal (``Row.record``):
# encoding those is much cheaper than encoding timestamptz and text[] values; measured_at is the device time plus
# the clock offset. The table is made by the transaction's first round trip (``BEGIN_WITH_STAGING``): a batch
# takes five round trips (BEGIN, COPY's two, STORE, COMMIT), each of which waits for a busy event loop.
CREATE_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS ingest_staging (
    message int, position int, patient_id uuid, device_id text, kind text, device_us bigint,
    value_raw float8, unit_raw text, value_mgdl float8, clock_offset_s int, context text, context_inferred bool,
    meal text, minutes_after_meal int2, flags text, source text, external_id text, note text
) ON COMMIT DELETE ROWS
"""
BEGIN_WITH_STAGING = "BEGIN;" + CREATE_STAGING
COMMIT = "COMMIT"
ROLLBACK = "ROLLBACK"
STAGING_COLUMNS = (
    "message", "position", "patient_id", "device_id", "kind", "device_us", "value_raw", "unit_raw", "value_mgdl",
    "clock_offset_s", "context", "context_inferred", "meal", "minutes_after_meal", "flags", "source",
    "external_id", "note",
)  # fmt: skip
# (whole seconds and the microseconds apart: a float8 holds every microsecond only up to the year 2255)
_DEVICE_TIME = "(to_timestamp(s.device_us / 1000000) + s.device_us % 1000000 * interval '1 microsecond')"

# Everything a batch writes, in one statement: the staged readings not stored yet (the dedup key is the primary
# key (patient_id, device_id, kind, device_time, value_raw): what the device said), the devices' last_seen_at (to
# the minute: a device syncing every few seconds does not rewrite its row every time), the rejections ($2–$7),
# and the announcement of the patients with new readings to the dashboards (all API processes) on the channel
# telemon_readings: {"patient_ids": [...]}, 150 a payload, short enough for NOTIFY's 8,000 bytes.
# It answers the rows the batch added (message -1), and, only when some were already stored, how many each message
# added (a key sent twice counts for the first message that sent it); $8 is the number of staged rows.
STORE = f"""
WITH inserted AS (
    INSERT INTO readings (patient_id, device_id, kind, device_time, value_raw, unit_raw, measured_at, value_mgdl,
                          clock_offset_s, context, context_inferred, meal, minutes_after_meal, flags, source,
                          external_id, note)
    SELECT s.patient_id, s.device_id, s.kind, {_DEVICE_TIME}, s.value_raw, s.unit_raw,
           {_DEVICE_TIME} + s.clock_offset_s * interval '1 second', s.value_mgdl, s.clock_offset_s, s.context,
           s.context_inferred, s.meal, s.minutes_after_meal, s.flags::text[], s.source, s.external_id, s.note
    FROM ingest_staging s
    ORDER BY s.position
    ON CONFLICT DO NOTHING
    RETURNING patient_id, device_id, kind, device_time, value_raw
), touched AS (
    UPDATE devices SET last_seen_at = now()
    WHERE id = ANY($1::text[]) AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 minute')
), rejected AS (
    INSERT INTO ingest_rejections (patient_id, device_id, source, item_index, reason, raw)
    SELECT * FROM unnest($2::uuid[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[])
), announced AS (
    SELECT pg_notify('telemon_readings', json_build_object('patient_ids', array_agg(patient_id))::text)
    FROM (SELECT patient_id, (row_number() OVER (ORDER BY patient_id) - 1) / 150 AS chunk
          FROM (SELECT DISTINCT patient_id::text FROM inserted) added) numbered
    GROUP BY chunk
)
SELECT -1 AS message, count(*)::int AS inserted FROM inserted
UNION ALL
SELECT -2, count(*)::int FROM announced
UNION ALL
SELECT message, count(*)::int FROM (
    SELECT DISTINCT ON (s.patient_id, s.device_id, s.kind, s.device_us, s.value_raw) s.message
    FROM inserted i
    JOIN ingest_staging s ON i.patient_id = s.patient_id AND i.device_id = s.device_id AND i.kind = s.kind
                         AND i.device_time = {_DEVICE_TIME} AND i.value_raw = s.value_raw
    WHERE (SELECT count(*) FROM inserted) < $8
    ORDER BY s.patient_id, s.device_id, s.kind, s.device_us, s.value_raw, s.position
) first_senders
GROUP BY message
"""

# Stored readings by their dedup key, whether just inserted or already there; $6 is the position of each key.
STORED_BY_KEY = """
SELECT k.position, r.id, r.kind, r.measured_at, r.value_mgdl, r.device_id, r.external_id, r.device_time,
       r.value_raw, r.patient_id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::int[])
     AS k(patient_id, device_id, kind, device_time, value_raw, position)
JOIN readings r ON r.patient_id = k.patient_id AND r.device_id = k.device_id AND r.kind = k.kind
               AND r.device_time = k.device_time AND r.value_raw = k.value_raw
"""

# A patient ($1) of the API key's care teams ($2): another team's patient is as absent as one that does not exist.
# The patient's time zone (a date in ?from= / ?to= is its local midnight), or no row: not a patient of these teams.
PATIENT_ZONE_OF_TEAMS = "SELECT time_zone FROM patients WHERE id = $1 AND team_id = ANY($2::uuid[])"

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
# so one value may name patients of several teams: the caller refuses it as ambiguous), among the patients of the
# API key's care teams ($2) only: another team's patient is not found, exactly like one that does not exist.
FHIR_PATIENTS_BY_IDS = "SELECT id FROM patients WHERE id = ANY($1::uuid[]) AND team_id = ANY($2::uuid[])"
FHIR_PATIENTS_BY_EXTERNAL_IDS = (
    "SELECT external_id, id FROM patients WHERE external_id = ANY($1::text[]) AND team_id = ANY($2::uuid[])"
)

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

# A patient's latest readings, newest first, within [$2, $3] (inclusive bounds), of one kind ($4) or all (NULL),
# with the Nightscout document each was uploaded with (if any). The other filters are Nightscout's ``find`` forms:
# dateString / sysTime compared as text, as Nightscout compares them ($6 operators, $7 operands: the UTC ISO form
# with milliseconds), the glucose value in whole mg/dL ($8 operators, $9 operands), and an id ($10: the uploader's
# _id, or telemon's id in 24 hex digits).
NS_ENTRIES = """
SELECT r.id, r.kind, r.measured_at, r.value_mgdl, r.device_id, r.external_id, n.doc
FROM readings r
LEFT JOIN nightscout_entries n ON n.patient_id = r.patient_id AND n.device_id = r.device_id AND n.kind = r.kind
                              AND n.device_time = r.device_time AND n.value_raw = r.value_raw
WHERE r.patient_id = $1 AND r.measured_at >= $2 AND r.measured_at <= $3 AND ($4::text IS NULL OR r.kind = $4)
  AND (SELECT bool_and(CASE f.op WHEN '$gte' THEN t.iso >= f.v WHEN '$gt' THEN t.iso > f.v
                                 WHEN '$lte' THEN t.iso <= f.v WHEN '$lt' THEN t.iso < f.v ELSE t.iso = f.v END)
       FROM unnest($6::text[], $7::text[]) AS f(op, v),
            (SELECT to_char(r.measured_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS iso) t
      ) IS NOT FALSE
  AND (SELECT bool_and(CASE f.op WHEN '$gte' THEN round(r.value_mgdl) >= f.v WHEN '$gt' THEN round(r.value_mgdl) > f.v
                                 WHEN '$lte' THEN round(r.value_mgdl) <= f.v WHEN '$lt' THEN round(r.value_mgdl) < f.v
                                 ELSE round(r.value_mgdl) = f.v END)
       FROM unnest($8::text[], $9::float8[]) AS f(op, v)) IS NOT FALSE
  AND ($10::text IS NULL OR r.external_id = $10 OR lpad(to_hex(r.id), 24, '0') = $10)
ORDER BY r.measured_at DESC, r.id DESC
LIMIT $5
"""

# The Nightscout documents of stored readings ($1–$5: their keys, $6 the documents); the first upload's is kept.
NS_INSERT_ENTRY_DOCS = """
INSERT INTO nightscout_entries (patient_id, device_id, kind, device_time, value_raw, doc)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::jsonb[])
ON CONFLICT DO NOTHING
"""

# Treatments, upserted on their dedup key as Nightscout replaces a treatment with the same key (the last sent
# wins); one row per key in a call. Answers each row's id and whether it was new.
NS_UPSERT_TREATMENTS = """
INSERT INTO nightscout_treatments AS t (patient_id, dedup_key, device_id, ns_id, created_at, event_type, insulin,
                                        carbs, glucose_reading_id, doc)
SELECT $1, k.dedup_key, $2, k.ns_id, k.created_at, k.event_type, k.insulin, k.carbs, k.reading_id, k.doc
FROM unnest($3::text[], $4::text[], $5::timestamptz[], $6::text[], $7::float8[], $8::float8[], $9::bigint[],
            $10::jsonb[]) AS k(dedup_key, ns_id, created_at, event_type, insulin, carbs, reading_id, doc)
ON CONFLICT (patient_id, dedup_key) DO UPDATE
SET device_id = EXCLUDED.device_id, ns_id = EXCLUDED.ns_id, created_at = EXCLUDED.created_at,
    event_type = EXCLUDED.event_type, insulin = EXCLUDED.insulin, carbs = EXCLUDED.carbs,
    glucose_reading_id = EXCLUDED.glucose_reading_id, doc = EXCLUDED.doc, updated_at = now()
RETURNING t.dedup_key, t.id, t.ns_id, (t.xmax = 0) AS inserted
"""

# A patient's treatments, newest first, within [$2, $3], at most $4.
NS_TREATMENTS = """
SELECT id, ns_id, doc FROM nightscout_treatments
WHERE patient_id = $1 AND created_at >= $2 AND created_at <= $3
ORDER BY created_at DESC, id DESC
LIMIT $4
"""
