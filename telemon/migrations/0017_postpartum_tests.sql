-- telemon schema, version 17: the postpartum glucose test, recorded and classified.

-- After a pregnancy with gestational diabetes, a glucose test after the birth says whether the diabetes has gone
-- (75 g OGTT, fasting plasma glucose or HbA1c, per the patient's guideline profile). A test is recorded once the
-- delivery is recorded, with its values as entered (the unit and the decimals typed or sent), the glucose values in
-- mg/dL (telemon.units.exact_mgdl of what was entered), the classification made with the thresholds of the profile
-- in force at the time (stored: a later change of profile does not rewrite a past result) and the follow-up it
-- asks for. A patient may have several tests (a repeat, a confirmation, the yearly test); the newest by test date
-- (then by recording) is the current one. A test is never changed: a correction is a new test.
CREATE TABLE postpartum_tests (
    patient_id        uuid NOT NULL REFERENCES patients (id),
    id                bigint GENERATED ALWAYS AS IDENTITY,
    tested_on         date NOT NULL,
    test              text NOT NULL CHECK (test IN ('ogtt_75g', 'fasting_glucose', 'hba1c')),
    unit              text CHECK (unit IN ('mg/dL', 'mmol/L', 'g/L')),   -- the glucose values' unit as entered
    fasting_entered   numeric CHECK (fasting_entered > 0),               -- as entered, in unit
    two_hour_entered  numeric CHECK (two_hour_entered > 0),
    fasting_mgdl      double precision CHECK (fasting_mgdl > 0),         -- the same values in mg/dL
    two_hour_mgdl     double precision CHECK (two_hour_mgdl > 0),
    hba1c_percent     numeric CHECK (hba1c_percent > 0),                 -- HbA1c as entered: % (NGSP) ...
    hba1c_mmol_mol    numeric CHECK (hba1c_mmol_mol > 0),                -- ... or mmol/mol (IFCC), one of them
    classification    text NOT NULL CHECK (classification IN ('normal', 'impaired_fasting_glucose',
                          'impaired_glucose_tolerance', 'elevated_hba1c', 'diabetes')),
    findings          text[] NOT NULL DEFAULT '{}',                      -- every abnormal value's category
    follow_up         text[] NOT NULL DEFAULT '{}',                      -- codes, rendered at the edge
    profile           text NOT NULL CHECK (profile IN ('FR', 'NICE', 'ADA')),
    source            text NOT NULL,                                     -- the guideline the thresholds come from
    recorded_by       text NOT NULL,                                     -- 'clinician:<uuid>' or 'api_key:<uuid>'
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, id),
    CHECK ((fasting_entered IS NULL) = (fasting_mgdl IS NULL)),
    CHECK ((two_hour_entered IS NULL) = (two_hour_mgdl IS NULL)),
    CHECK ((unit IS NULL) = (fasting_entered IS NULL AND two_hour_entered IS NULL)),
    -- each test has the values it is made of, and only those
    CHECK (test <> 'ogtt_75g' OR (fasting_entered IS NOT NULL AND two_hour_entered IS NOT NULL
                                  AND hba1c_percent IS NULL AND hba1c_mmol_mol IS NULL)),
    CHECK (test <> 'fasting_glucose' OR (fasting_entered IS NOT NULL AND two_hour_entered IS NULL
                                         AND hba1c_percent IS NULL AND hba1c_mmol_mol IS NULL)),
    CHECK (test <> 'hba1c' OR (fasting_entered IS NULL AND two_hour_entered IS NULL
                               AND (hba1c_percent IS NULL) <> (hba1c_mmol_mol IS NULL)))
);
-- The current test of a patient, and her list, newest first.
CREATE INDEX postpartum_tests_newest ON postpartum_tests (patient_id, tested_on DESC, id DESC);

-- A recorded test is a result: it cannot be changed or removed.
CREATE FUNCTION postpartum_tests_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a postpartum test cannot be changed; record a new test' USING ERRCODE = 'check_violation';
END
$$;
CREATE TRIGGER postpartum_tests_kept BEFORE UPDATE OR DELETE ON postpartum_tests
    FOR EACH ROW EXECUTE FUNCTION postpartum_tests_keep();
