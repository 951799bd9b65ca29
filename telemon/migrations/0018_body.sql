-- telemon schema, version 18: the patient's height and pre-pregnancy weight, from which the dashboard computes her
-- pre-pregnancy body mass index and judges her weight gain against the range recommended for it (Institute of
-- Medicine 2009, telemon.weight_gain).

-- Both may be unknown (patients enrolled before this version, or not yet asked). The bounds are the plausible
-- ranges of telemon.weight_gain (HEIGHT_CM, PRE_PREGNANCY_WEIGHT_KG): beyond them the value is a typing error.
ALTER TABLE patients ADD COLUMN height_cm double precision CHECK (height_cm BETWEEN 120 AND 220);
ALTER TABLE patients ADD COLUMN pre_pregnancy_weight_kg double precision
    CHECK (pre_pregnancy_weight_kg BETWEEN 30 AND 250);
