"""SQL of the Nightscout API: the documents kept beside the readings, treatments, and Nightscout's ``find`` forms.
Values go in as parameters only."""

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

# The insulin doses of earlier versions of re-sent treatments: an uploader's ($2) doses from Nightscout ($3) whose
# external_id is one of the treatments' identities ($4), other than the doses of the versions that stand ($5).
# Answers what was deleted, for the audit.
NS_DROP_REPLACED_DOSES = """
DELETE FROM measurements
WHERE patient_id = $1 AND device_id = $2 AND kind = 'insulin' AND source = $3 AND external_id = ANY($4::text[])
  AND NOT (id = ANY($5::bigint[]))
RETURNING id, external_id, measured_at, value, insulin, product, slot
"""
