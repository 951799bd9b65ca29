-- telemon schema, version 1.
-- Every patient-scoped table carries patient_id first in its primary key, so the schema can be
-- distributed by patient without redesign. Readings are partitioned by month of the device's own timestamp.

CREATE TABLE care_teams (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (length(btrim(name)) > 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE clinicians (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    password_hash  text NOT NULL,           -- argon2id
    display_name   text NOT NULL DEFAULT '',
    role           text NOT NULL CHECK (role IN ('diabetologist', 'midwife', 'nurse', 'admin')),
    language       text NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en')),
    display_unit   text NOT NULL DEFAULT 'mg/dL' CHECK (display_unit IN ('mg/dL', 'mmol/L', 'g/L')),
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX clinicians_email_key ON clinicians (lower(email));

CREATE TABLE team_memberships (
    team_id       uuid NOT NULL REFERENCES care_teams (id) ON DELETE CASCADE,
    clinician_id  uuid NOT NULL REFERENCES clinicians (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, clinician_id)
);

CREATE TABLE patients (
    id                    uuid PRIMARY KEY,
    team_id               uuid NOT NULL REFERENCES care_teams (id),
    external_id           text NOT NULL CHECK (length(btrim(external_id)) > 0),
    display_name          text NOT NULL,
    time_zone             text NOT NULL,   -- IANA name, validated by the application
    due_date              date NOT NULL,
    diagnosis_date        date,
    delivery_date         date,
    treatment             text NOT NULL DEFAULT 'diet' CHECK (treatment IN ('diet', 'metformin', 'insulin')),
    profile               text NOT NULL DEFAULT 'FR' CHECK (profile IN ('FR', 'NICE', 'ADA')),
    target_overrides      jsonb NOT NULL DEFAULT '{}'::jsonb,  -- {"fasting": 92, "post_1h": 140, ...} in mg/dL
    readings_per_day      smallint NOT NULL DEFAULT 4 CHECK (readings_per_day BETWEEN 1 AND 12),
    last_reviewed_at      timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (team_id, external_id)
);

CREATE TABLE devices (
    patient_id        uuid NOT NULL REFERENCES patients (id),
    id                text NOT NULL UNIQUE CHECK (id ~ '^[A-Za-z0-9_-]{3,64}$'),  -- also the MQTT username
    kind              text NOT NULL CHECK (kind IN ('meter', 'app', 'cgm')),
    label             text NOT NULL DEFAULT '',
    token_hash        bytea NOT NULL UNIQUE,   -- sha256 of the bearer token
    ns_secret_hash    bytea NOT NULL UNIQUE,   -- sha256 of sha1hex(token): the Nightscout api-secret header
    broker_password   text NOT NULL,           -- Mosquitto $7$ hash of the token, for the broker's password file
    active            boolean NOT NULL DEFAULT true,
    last_seen_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, id)
);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    label         text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE,      -- sha256 of the key
    scopes        text[] NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz
);

-- Readings: what the device sent (value_raw, unit_raw, device_time) beside the normalised values
-- (value_mgdl, measured_at in UTC after clock correction). The primary key is the dedup key: it is built only
-- from what the device says, so a re-sync after the device's clock was corrected adds nothing.
CREATE TABLE readings (
    patient_id          uuid NOT NULL,
    device_id           text NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('smbg', 'cgm')),
    device_time         timestamptz NOT NULL,        -- the device's own timestamp, as sent
    value_raw           double precision NOT NULL,   -- the value as sent
    unit_raw            text NOT NULL,               -- the unit as sent
    id                  bigint GENERATED ALWAYS AS IDENTITY,
    measured_at         timestamptz NOT NULL,        -- UTC, after clock correction
    value_mgdl          double precision NOT NULL,
    clock_offset_s      integer NOT NULL DEFAULT 0,  -- server clock minus device clock at sync time
    context             text NOT NULL CHECK (context IN ('fasting', 'before_meal', 'after_meal', 'bedtime', 'night', 'unspecified')),
    context_inferred    boolean NOT NULL DEFAULT false,
    meal                text CHECK (meal IN ('breakfast', 'lunch', 'dinner', 'snack')),
    minutes_after_meal  smallint,
    flags               text[] NOT NULL DEFAULT '{}',
    source              text NOT NULL,               -- http, mqtt, nightscout, fhir
    external_id         text,                        -- the device's own id of the reading
    note                text,
    received_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, device_id, kind, device_time, value_raw)
) PARTITION BY RANGE (device_time);

CREATE TABLE readings_default PARTITION OF readings DEFAULT;
CREATE INDEX readings_patient_time ON readings (patient_id, measured_at);
CREATE INDEX readings_patient_id ON readings (patient_id, id);

-- Items that were refused, kept with the raw input and the reason (dead letters).
CREATE TABLE ingest_rejections (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id   uuid,
    device_id    text,
    source       text NOT NULL,
    item_index   integer,
    reason       text NOT NULL,
    raw          text NOT NULL,   -- bounded by the application
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ingest_rejections_patient ON ingest_rejections (patient_id, received_at);

CREATE TABLE alerts (
    patient_id       uuid NOT NULL REFERENCES patients (id),
    id               bigint GENERATED ALWAYS AS IDENTITY,
    rule             text NOT NULL,
    episode_key      text NOT NULL,
    severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'urgent')),
    status           text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'resolved')),
    message          jsonb NOT NULL,              -- {"en": "...", "fr": "..."}
    evidence         jsonb NOT NULL DEFAULT '{}'::jsonb,
    opened_at        timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    snoozed_until    timestamptz,
    snoozed_by       text,
    resolved_at      timestamptz,
    resolved_by      text,                        -- a clinician or api key, or 'system' when the condition cleared
    PRIMARY KEY (patient_id, id)
);
CREATE UNIQUE INDEX alerts_one_open_episode ON alerts (patient_id, rule, episode_key) WHERE status <> 'resolved';
CREATE INDEX alerts_status ON alerts (status, severity, opened_at);

-- Who did or saw what. patient_id is null for actions that concern no patient.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,     -- 'clinician:<uuid>', 'api_key:<uuid>', 'device:<id>', 'cli'
    action      text NOT NULL,
    patient_id  uuid,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at);
