-- telemon schema, version 10: running the clinic through the hospital API — patients archived at the end of
-- monitoring, patients' last change (for integrations that fetch what changed), revoked devices, one-time pairing
-- codes, and the per-address limit on pairing attempts.

-- Monitoring ends with the postpartum step: the patient is archived (read-only, out of the triage and of the
-- scheduled passes, still readable and exportable). archived_by names who did it ('api_key:<uuid>',
-- 'clinician:<uuid>', 'cli'). Un-archiving clears both.
ALTER TABLE patients ADD COLUMN archived_at timestamptz;
ALTER TABLE patients ADD COLUMN archived_by text;

-- The last change of what the patient's record says (identity, pregnancy, prescription, archive), whoever made it:
-- a trigger keeps it, so the command line, the dashboard and the API cannot forget it. Marking the patient reviewed
-- is not a change of her record and leaves it alone.
ALTER TABLE patients ADD COLUMN updated_at timestamptz;
UPDATE patients SET updated_at = created_at;
ALTER TABLE patients ALTER COLUMN updated_at SET NOT NULL, ALTER COLUMN updated_at SET DEFAULT now();
CREATE INDEX patients_team_updated ON patients (team_id, updated_at, id);

CREATE FUNCTION patients_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'updated_at' - 'last_reviewed_at') IS DISTINCT FROM
       (to_jsonb(OLD) - 'updated_at' - 'last_reviewed_at') THEN
        NEW.updated_at := now();
    ELSE
        NEW.updated_at := OLD.updated_at;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER patients_updated_at BEFORE UPDATE ON patients
    FOR EACH ROW EXECUTE FUNCTION patients_touch_updated_at();

-- When a device was revoked (active = false from then on): the list of a patient's devices says so.
ALTER TABLE devices ADD COLUMN revoked_at timestamptz;
-- The devices list's 7-day counts read the patient's last week through readings_patient_time (a few thousand rows
-- at most): no third index on readings, which every stored reading would pay for.

-- One-time pairing codes: a phone app exchanges one for its device's token, so that no token has to be typed.
-- The code the person types is a selector (looked up) and a secret (compared in constant time against its hash);
-- only the secret's hash is kept. A code is closed (closed_at) when it is used, when it was tried too many times
-- with a wrong secret, when a newer code of the same device replaced it, or once it has expired and a new code
-- is made: a selector is unique among the codes still open.
CREATE TABLE pairing_codes (
    patient_id   uuid NOT NULL REFERENCES patients (id),
    id           bigint GENERATED ALWAYS AS IDENTITY,
    device_id    text NOT NULL REFERENCES devices (id),
    selector     text NOT NULL,
    secret_hash  bytea NOT NULL,               -- sha256 of the secret part
    created_by   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    failed_attempts smallint NOT NULL DEFAULT 0,
    used_at      timestamptz,
    closed_at    timestamptz,
    PRIMARY KEY (patient_id, id)
);
CREATE UNIQUE INDEX pairing_codes_open_selector ON pairing_codes (selector) WHERE closed_at IS NULL;
CREATE INDEX pairing_codes_open_expiry ON pairing_codes (expires_at) WHERE closed_at IS NULL;
CREATE INDEX pairing_codes_device ON pairing_codes (device_id) WHERE closed_at IS NULL;

-- Failed pairing attempts per source address and fixed window: past a limit the address waits for the next
-- window. Kept in the database so that every API process counts the same attempts.
CREATE TABLE pairing_attempts (
    address       text NOT NULL,
    window_start  timestamptz NOT NULL,
    failures      integer NOT NULL DEFAULT 0,
    PRIMARY KEY (address, window_start)
);
