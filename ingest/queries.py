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
# and the announcement of the patients with new readings to the dashboards (all API processes) on the readings
# channel ($9, ``telemon.channels.READINGS``): {"patient_ids": [...]}, 150 a payload, short enough for NOTIFY's
# 8,000 bytes.
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
    SELECT pg_notify($9::text, json_build_object('patient_ids', array_agg(patient_id))::text)
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

# The other item kinds of a batch (``ingest.measurements``), only when it has some (one more round trip): stored
# by ``unnest`` arrays ($1 the message of each, $2 its position in the batch, then ``MEASUREMENT_COLUMNS``); the
# dedup key is the primary key (patient_id, device_id, kind, device_time, values_key): what the device said. The
# patients with new measurements are announced on the readings channel ($23, ``telemon.channels.READINGS``) in
# this very statement, as ``STORE`` announces the glucose readings' (so a sync of doses only, or of a blood pressure,
# reaches the dashboards too; a patient announced by both statements of one transaction gets one notification when
# the payloads are equal, as PostgreSQL folds identical notifications). It answers how many rows each message added
# (a key sent twice counts for the first message that sent it); message -2 counts the notifications.
MEASUREMENT_COLUMNS = (
    "patient_id", "device_id", "kind", "device_time", "values_key", "measured_at", "clock_offset_s", "value",
    "value_raw", "unit_raw", "urine", "insulin", "product", "slot", "systolic", "diastolic", "pulse", "source",
    "external_id", "note",
)  # fmt: skip
STORE_MEASUREMENTS = """
WITH staged AS (
    SELECT * FROM unnest($1::int[], $2::int[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[], $7::text[],
                         $8::timestamptz[], $9::int[], $10::float8[], $11::float8[], $12::text[], $13::text[],
                         $14::text[], $15::text[], $16::text[], $17::float8[], $18::float8[], $19::float8[],
                         $20::text[], $21::text[], $22::text[])
        AS s(message, position, patient_id, device_id, kind, device_time, values_key, measured_at, clock_offset_s,
             value, value_raw, unit_raw, urine, insulin, product, slot, systolic, diastolic, pulse, source,
             external_id, note)
), inserted AS (
    INSERT INTO measurements (patient_id, device_id, kind, device_time, values_key, measured_at, clock_offset_s,
                              value, value_raw, unit_raw, urine, insulin, product, slot, systolic, diastolic, pulse,
                              source, external_id, note)
    SELECT patient_id, device_id, kind, device_time, values_key, measured_at, clock_offset_s, value, value_raw,
           unit_raw, urine, insulin, product, slot, systolic, diastolic, pulse, source, external_id, note
    FROM staged
    ORDER BY position
    ON CONFLICT DO NOTHING
    RETURNING patient_id, device_id, kind, device_time, values_key
), announced AS (
    SELECT pg_notify($23::text, json_build_object('patient_ids', array_agg(patient_id))::text)
    FROM (SELECT patient_id, (row_number() OVER (ORDER BY patient_id) - 1) / 150 AS chunk
          FROM (SELECT DISTINCT patient_id::text FROM inserted) added) numbered
    GROUP BY chunk
)
SELECT -2 AS message, count(*)::int AS inserted FROM announced
UNION ALL
SELECT message, count(*)::int FROM (
    SELECT DISTINCT ON (s.patient_id, s.device_id, s.kind, s.device_time, s.values_key) s.message
    FROM inserted i
    JOIN staged s USING (patient_id, device_id, kind, device_time, values_key)
    ORDER BY s.patient_id, s.device_id, s.kind, s.device_time, s.values_key, s.position
) first_senders
GROUP BY message
"""

# Stored measurements by their dedup key, whether just inserted or already there; $6 is the position of each key.
STORED_MEASUREMENTS_BY_KEY = """
SELECT k.position, m.id, m.kind, m.measured_at, m.device_id, m.external_id, m.patient_id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::int[])
     AS k(patient_id, device_id, kind, device_time, values_key, position)
JOIN measurements m ON m.patient_id = k.patient_id AND m.device_id = k.device_id AND m.kind = k.kind
                   AND m.device_time = k.device_time AND m.values_key = k.values_key
"""
