"""SQL of the ingest domain. Values go in as parameters only; bulk writes use ``unnest`` arrays."""

DEVICE_CONTEXT = """
SELECT d.id AS device_id, d.kind AS device_kind, d.active, p.id AS patient_id, p.time_zone,
       p.due_date - 280 AS pregnancy_start
FROM devices d JOIN patients p ON p.id = d.patient_id
"""
DEVICE_CONTEXT_BY_IDS = DEVICE_CONTEXT + " WHERE d.id = ANY($1::text[])"
DEVICE_CONTEXT_BY_TOKEN = DEVICE_CONTEXT + " WHERE d.token_hash = $1"
DEVICE_CONTEXT_BY_NS_SECRET = DEVICE_CONTEXT + " WHERE d.ns_secret_hash = $1"

# The dedup key is the primary key (patient_id, device_id, kind, device_time, value_raw): what the device said.
INSERT_READINGS = """
INSERT INTO readings (patient_id, device_id, kind, device_time, value_raw, unit_raw, measured_at, value_mgdl,
                      clock_offset_s, context, context_inferred, meal, minutes_after_meal, flags, source,
                      external_id, note)
SELECT r.patient_id, r.device_id, r.kind, r.device_time, r.value_raw, r.unit_raw, r.measured_at, r.value_mgdl,
       r.clock_offset_s, r.context, r.context_inferred, r.meal, r.minutes_after_meal,
       CASE WHEN r.flags = '' THEN '{}'::text[] ELSE string_to_array(r.flags, ',') END, r.source,
       r.external_id, r.note
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::text[], $7::timestamptz[],
            $8::float8[], $9::int[], $10::text[], $11::bool[], $12::text[], $13::int2[], $14::text[], $15::text[],
            $16::text[], $17::text[])
     AS r(patient_id, device_id, kind, device_time, value_raw, unit_raw, measured_at, value_mgdl, clock_offset_s,
          context, context_inferred, meal, minutes_after_meal, flags, source, external_id, note)
ON CONFLICT DO NOTHING
RETURNING device_id, kind, device_time, value_raw
"""

INSERT_REJECTIONS = """
INSERT INTO ingest_rejections (patient_id, device_id, source, item_index, reason, raw)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[])
"""

TOUCH_DEVICES = "UPDATE devices SET last_seen_at = now() WHERE id = ANY($1::text[])"

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
