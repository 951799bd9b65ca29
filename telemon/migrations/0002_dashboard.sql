-- telemon schema, version 2: what the clinician dashboard needs (clinician_ui/).
-- Patient-scoped tables carry patient_id first in their primary key (distributable by patient).

-- Dashboard sessions. The cookie holds a random token (256 bits); only its SHA-256 is stored, so a copy of the
-- table logs nobody in. Each session has its own CSRF token, sent back in every form.
CREATE TABLE clinician_sessions (
    token_hash    bytea PRIMARY KEY,
    clinician_id  uuid NOT NULL REFERENCES clinicians (id) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,        -- absolute end, whatever the activity
    flash         text,                        -- one message for the next page (after a redirect)
    user_agent    text NOT NULL DEFAULT '',
    client_ip     text
);
CREATE INDEX clinician_sessions_clinician ON clinician_sessions (clinician_id);
CREATE INDEX clinician_sessions_expiry ON clinician_sessions (expires_at);

-- Failed logins, per account ('email:<lower(email)>') and per client address ('ip:<address>'): past a threshold
-- every further failure locks the key for a doubling delay. A success clears the account's counter.
CREATE TABLE login_throttle (
    key              text PRIMARY KEY,
    failures         integer NOT NULL,
    last_failure_at  timestamptz NOT NULL,
    locked_until     timestamptz
);

-- Free-text notes of the care team about a patient.
CREATE TABLE patient_notes (
    patient_id  uuid NOT NULL REFERENCES patients (id),
    id          bigint GENERATED ALWAYS AS IDENTITY,
    author_id   uuid NOT NULL REFERENCES clinicians (id),
    body        text NOT NULL CHECK (length(btrim(body)) BETWEEN 1 AND 4000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, id)
);

-- "Mark reviewed": each review, by whom and when (patients.last_reviewed_at keeps the latest).
CREATE TABLE patient_reviews (
    patient_id    uuid NOT NULL REFERENCES patients (id),
    id            bigint GENERATED ALWAYS AS IDENTITY,
    clinician_id  uuid NOT NULL REFERENCES clinicians (id),
    reviewed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, id)
);

-- The team's patients, in name order (all-patients tab, team scoping of the triage).
CREATE INDEX patients_team_name ON patients (team_id, display_name, id);

-- Alert actions address an alert by its id alone (alerts' primary key starts with patient_id).
CREATE INDEX alerts_id ON alerts (id);

-- The dashboard reads each patient's recent readings by (patient_id, measured_at): the logbook and the charts of
-- the patient page, the 7-day figures of every row of the triage list. This index carries the columns those
-- pages need, so they are answered from the index alone (index-only scans) instead of one table page per reading
-- (a CGM patient's fortnight is ~4,000 readings spread over as many pages, interleaved with everyone else's).
-- It replaces readings_patient_time: same name, same key, so every query using that index keeps its plan.
DROP INDEX readings_patient_time;
CREATE INDEX readings_patient_time ON readings (patient_id, measured_at)
    INCLUDE (kind, value_mgdl, context, meal, minutes_after_meal, flags, id);
