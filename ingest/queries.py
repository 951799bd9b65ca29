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

READINGS_PAGE = """
SELECT id, measured_at, value_mgdl, value_raw, unit_raw, kind, context, context_inferred, meal,
       minutes_after_meal, device_id, flags, source, device_time, clock_offset_s, note
FROM readings
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at < $3
  AND (measured_at, id) > ($4, $5)
ORDER BY measured_at, id
LIMIT $6
"""
