-- telemon schema, version 14: the treatment plan, dated and versioned.

-- A patient's treatment plan as her diabetologist prescribes it: diet only, metformin (a dose in mg and the times
-- it is taken), or insulin as regimens (basal: product, units, time of day; prandial: product and units before
-- breakfast, lunch and dinner), with a free-text instruction. A plan is never changed: every change is a new
-- version with who made it, when and why, and the plan in force is the newest version. patients.treatment (which
-- the engine reads) is written in the same transaction as each new version and always says the newest's treatment.
CREATE TABLE treatment_plans (
    patient_id        uuid NOT NULL REFERENCES patients (id),
    version           integer NOT NULL CHECK (version >= 1),
    treatment         text NOT NULL CHECK (treatment IN ('diet', 'metformin', 'insulin')),
    metformin_mg      integer CHECK (metformin_mg BETWEEN 250 AND 3000),
    metformin_times   text[] NOT NULL DEFAULT '{}',
    basal_product     text CHECK (length(basal_product) BETWEEN 1 AND 40),
    basal_units       numeric(4, 1) CHECK (basal_units BETWEEN 0.5 AND 100 AND basal_units * 2 = trunc(basal_units * 2)),
    basal_time        time,
    prandial_product  text CHECK (length(prandial_product) BETWEEN 1 AND 40),
    prandial_breakfast numeric(4, 1) CHECK (prandial_breakfast BETWEEN 0.5 AND 100
                                            AND prandial_breakfast * 2 = trunc(prandial_breakfast * 2)),
    prandial_lunch    numeric(4, 1) CHECK (prandial_lunch BETWEEN 0.5 AND 100
                                            AND prandial_lunch * 2 = trunc(prandial_lunch * 2)),
    prandial_dinner   numeric(4, 1) CHECK (prandial_dinner BETWEEN 0.5 AND 100
                                            AND prandial_dinner * 2 = trunc(prandial_dinner * 2)),
    instruction       text NOT NULL DEFAULT '' CHECK (length(instruction) <= 2000),
    note              text NOT NULL DEFAULT '' CHECK (length(note) <= 2000),
    created_by        text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, version),
    -- a basal regimen is whole: a product, units and a time, or none of them
    CHECK ((basal_product IS NULL) = (basal_units IS NULL) AND (basal_units IS NULL) = (basal_time IS NULL)),
    -- metformin has a dose exactly when the treatment is metformin; insulin has at least one regimen
    CHECK ((treatment = 'metformin') = (metformin_mg IS NOT NULL)),
    CHECK (treatment <> 'insulin' OR basal_units IS NOT NULL
           OR COALESCE(prandial_breakfast, prandial_lunch, prandial_dinner) IS NOT NULL),
    CHECK (treatment = 'insulin' OR (basal_units IS NULL AND prandial_breakfast IS NULL AND prandial_lunch IS NULL
                                     AND prandial_dinner IS NULL))
);

-- A version, once written, is history: it cannot be changed or removed.
CREATE FUNCTION treatment_plans_keep() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a treatment plan version cannot be changed; write a new version' USING ERRCODE = 'check_violation';
END
$$;
CREATE TRIGGER treatment_plans_kept BEFORE UPDATE OR DELETE ON treatment_plans
    FOR EACH ROW EXECUTE FUNCTION treatment_plans_keep();
