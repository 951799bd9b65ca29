-- telemon schema, version 11: what enrolment in the dashboard records besides the record itself — the patient's
-- birth year, the language she reads (her app and her messages), and the oral glucose tolerance test that made the
-- diagnosis, with the unit it was reported in.

-- The year alone: enough for the age-related risk the team weighs, less identifying than a birth date.
ALTER TABLE patients ADD COLUMN birth_year smallint CHECK (birth_year BETWEEN 1900 AND 2100);

-- The patient's own language; French by default, as the patients enrolled before this version were.
ALTER TABLE patients ADD COLUMN language text NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en'));

-- The diagnostic OGTT (75 g): the values in mg/dL, exactly as typed in ogtt_unit (telemon.units.exact_mgdl), so
-- that the page shows them again in the laboratory's unit. Any of the three may be missing (one value over its
-- threshold makes the diagnosis); the bounds are the plausible glucose range (telemon.units.PLAUSIBLE_MGDL).
ALTER TABLE patients ADD COLUMN ogtt_unit text CHECK (ogtt_unit IN ('mg/dL', 'mmol/L', 'g/L'));
ALTER TABLE patients ADD COLUMN ogtt_fasting_mgdl double precision CHECK (ogtt_fasting_mgdl BETWEEN 10 AND 600);
ALTER TABLE patients ADD COLUMN ogtt_1h_mgdl double precision CHECK (ogtt_1h_mgdl BETWEEN 10 AND 600);
ALTER TABLE patients ADD COLUMN ogtt_2h_mgdl double precision CHECK (ogtt_2h_mgdl BETWEEN 10 AND 600);
ALTER TABLE patients ADD CONSTRAINT patients_ogtt_unit CHECK (
    ogtt_unit IS NOT NULL OR (ogtt_fasting_mgdl IS NULL AND ogtt_1h_mgdl IS NULL AND ogtt_2h_mgdl IS NULL)
);
