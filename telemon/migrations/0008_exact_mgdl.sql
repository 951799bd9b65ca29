-- Readings in mmol/L or g/L were stored with value_mgdl rounded to 0.001 mg/dL: 4.0 mmol/L became 72.062, below
-- the 4.0 mmol/L threshold (72.06236). Ingest now stores the double nearest to the exact decimal product of the
-- value as sent and the factor (telemon.units.exact_mgdl); this re-derives the readings already stored the same
-- way, so that a re-evaluation over old readings judges them as new ones. value_raw::numeric keeps 15 significant
-- digits (every value a meter or a person writes), numeric × 18.01559 is exact, and numeric → double precision is
-- correctly rounded: the same double as exact_mgdl. The unit spellings are those of telemon.units.canonical_unit.
-- mg/dL readings were stored as sent and are not touched; rows already exact are skipped (no new row version).
-- Cost: one pass over every partition and a new row version (and index entries: readings_patient_time includes
-- value_mgdl) for each mmol/L or g/L reading, in the migration's transaction; ingest goes on meanwhile.
UPDATE readings
SET value_mgdl = (value_raw::numeric * CASE WHEN lower(btrim(unit_raw, E' \t\n\r\f')) IN ('g/l', 'gl', 'g_l')
                                            THEN 100 ELSE 18.01559 END)::double precision
WHERE lower(btrim(unit_raw, E' \t\n\r\f')) IN ('mmol/l', 'mmoll', 'mmol', 'mmol_l', 'mm', 'g/l', 'gl', 'g_l')
  AND value_mgdl IS DISTINCT FROM
      (value_raw::numeric * CASE WHEN lower(btrim(unit_raw, E' \t\n\r\f')) IN ('g/l', 'gl', 'g_l')
                                 THEN 100 ELSE 18.01559 END)::double precision;
