-- telemon schema, version 15: the device contract's other item kinds — insulin doses, ketones, weight and blood
-- pressure — stored beside the glucose readings of the same sync.

-- One row per item a device (or the companion app) sent. The primary key is the dedup key: what the device said
-- (device, kind, its own time, and its values written as text in values_key), so a re-sent sync adds nothing.
-- value is in the kind's canonical unit (insulin units, blood β-hydroxybutyrate in mmol/L, weight in kg);
-- value_raw and unit_raw are as sent. A few items a day per patient: no partitions.
CREATE TABLE measurements (
    patient_id      uuid NOT NULL REFERENCES patients (id),
    device_id       text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('insulin', 'ketone', 'weight', 'blood_pressure')),
    device_time     timestamptz NOT NULL,        -- the device's own timestamp, as sent
    values_key      text NOT NULL,               -- the values as sent, as text (the end of the dedup key)
    id              bigint GENERATED ALWAYS AS IDENTITY,
    measured_at     timestamptz NOT NULL,        -- UTC, after clock correction
    clock_offset_s  integer NOT NULL DEFAULT 0,
    value           double precision,
    value_raw       double precision,
    unit_raw        text,
    urine           text CHECK (urine IN ('negative', 'trace', '+', '++', '+++')),
    insulin         text CHECK (insulin IN ('basal', 'rapid', 'premixed')),
    product         text,
    slot            text CHECK (slot IN ('breakfast', 'lunch', 'dinner', 'bedtime')),
    systolic        double precision,
    diastolic       double precision,
    pulse           double precision,
    source          text NOT NULL,
    external_id     text,
    note            text,
    received_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, device_id, kind, device_time, values_key),
    CHECK (kind <> 'insulin' OR (value > 0 AND (insulin IS NOT NULL OR product IS NOT NULL))),
    CHECK (kind <> 'ketone' OR ((value IS NULL) <> (urine IS NULL))),
    CHECK (kind <> 'weight' OR value > 0),
    CHECK (kind <> 'blood_pressure' OR (systolic > diastolic AND diastolic > 0))
);
CREATE INDEX measurements_patient_time ON measurements (patient_id, measured_at);
CREATE UNIQUE INDEX measurements_patient_id ON measurements (patient_id, id);
