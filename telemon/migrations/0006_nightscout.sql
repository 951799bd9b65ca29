-- telemon schema, version 6: what Nightscout uploaders send beside the glucose value, and their treatments.
--
-- A device's Nightscout API secret may also arrive as the SHA-512 hex of its token (Nightscout accepts SHA-1 or
-- SHA-512). Like ns_secret_hash, the column holds sha256 of that hex. Devices added before this version have none
-- until the device authenticates once with its token itself (?token= or a bearer token): only then is the token
-- known to compute it.
ALTER TABLE devices ADD COLUMN ns_secret512_hash bytea UNIQUE;

-- The Nightscout entry document of a stored reading (same key as the reading), so that an upload is answered and
-- read back as Nightscout does: sgv as sent ("199" stays a string), direction (trend arrow), noise, filtered,
-- unfiltered, rssi, device, utcOffset, sysTime. The reading itself (value, time) stays in readings.
CREATE TABLE nightscout_entries (
    patient_id   uuid NOT NULL REFERENCES patients (id),
    device_id    text NOT NULL,
    kind         text NOT NULL,
    device_time  timestamptz NOT NULL,
    value_raw    double precision NOT NULL,
    doc          jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, device_id, kind, device_time, value_raw)
);

-- Nightscout treatments (insulin, carbs, BG checks, notes, site changes …) as uploaded, normalised as Nightscout
-- normalises them, until telemon has a treatment record of its own: nothing an uploader sends is lost. One row per
-- dedup key, as Nightscout upserts: the uploader's identifier, else its 24-hex _id, else created_at + eventType.
CREATE TABLE nightscout_treatments (
    patient_id   uuid NOT NULL REFERENCES patients (id),
    dedup_key    text NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    device_id    text NOT NULL,
    ns_id        text,                   -- the uploader's own 24-hex _id, when it sent one
    created_at   timestamptz NOT NULL,
    event_type   text,
    insulin      double precision,       -- units
    carbs        double precision,       -- grams
    glucose_reading_id bigint,           -- the meter reading made of its glucose, when it had one
    doc          jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, dedup_key)
);
CREATE INDEX nightscout_treatments_time ON nightscout_treatments (patient_id, created_at);
CREATE UNIQUE INDEX nightscout_treatments_id ON nightscout_treatments (id);

-- A device's refusals, for the patient page: an uploader whose every upload is refused (readings before the
-- pregnancy, a wrong clock …) is answered as Nightscout would answer it, so only the care team can notice it.
CREATE INDEX ingest_rejections_device ON ingest_rejections (device_id, received_at);
