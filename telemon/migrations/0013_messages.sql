-- telemon schema, version 13: messages between a patient and her care team, and the team's message templates.

-- A conversation is the patient's messages, in order. A message is written by the patient (through her app's
-- device) or by a clinician, and is never changed afterwards: a correction is a new message. The only later change
-- is read_at, set once when the other side first sees it (the team for the patient's messages, her app for the
-- team's), which gives read receipts both ways. A message may answer an alert of the same patient.
CREATE TABLE messages (
    patient_id    uuid NOT NULL REFERENCES patients (id),
    id            bigint GENERATED ALWAYS AS IDENTITY,
    author        text NOT NULL CHECK (author IN ('patient', 'clinician')),
    clinician_id  uuid REFERENCES clinicians (id),
    device_id     text REFERENCES devices (id),
    body          text NOT NULL CHECK (length(btrim(body)) > 0 AND length(body) <= 4000),
    alert_id      bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    read_at       timestamptz,
    read_by       text,            -- 'clinician:<uuid>' or 'device:<id>'
    PRIMARY KEY (patient_id, id),
    FOREIGN KEY (patient_id, alert_id) REFERENCES alerts (patient_id, id),
    CHECK ((author = 'clinician') = (clinician_id IS NOT NULL)),
    CHECK ((author = 'patient') = (device_id IS NOT NULL))
);
-- The triage looks for patients with a message from them that nobody of the team has read yet.
CREATE INDEX messages_unread_from_patient ON messages (patient_id, created_at)
    WHERE author = 'patient' AND read_at IS NULL;

-- A message cannot be edited: only read_at and read_by may change, and only from empty.
CREATE FUNCTION messages_keep_sent() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (to_jsonb(NEW) - 'read_at' - 'read_by') IS DISTINCT FROM (to_jsonb(OLD) - 'read_at' - 'read_by')
       OR (OLD.read_at IS NOT NULL AND NEW.read_at IS DISTINCT FROM OLD.read_at) THEN
        RAISE EXCEPTION 'a message cannot be changed after it was sent' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER messages_sent BEFORE UPDATE ON messages FOR EACH ROW EXECUTE FUNCTION messages_keep_sent();

-- The patient's e-mail address, optional: where the notice of a new message from the team goes (the notice says
-- only that there is a message, never what it says).
ALTER TABLE patients ADD COLUMN email text CHECK (email IS NULL OR (length(email) <= 254 AND email LIKE '%_@_%'));

-- Texts the team sends often, in both languages, edited by the team's administrators and diabetologists. A new
-- team starts with the usual ones (copied by a trigger, so that every way of creating a team gets them).
CREATE TABLE message_templates (
    team_id     uuid NOT NULL REFERENCES care_teams (id) ON DELETE CASCADE,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    title_en    text NOT NULL CHECK (length(btrim(title_en)) BETWEEN 1 AND 80),
    title_fr    text NOT NULL CHECK (length(btrim(title_fr)) BETWEEN 1 AND 80),
    body_en     text NOT NULL CHECK (length(btrim(body_en)) BETWEEN 1 AND 4000),
    body_fr     text NOT NULL CHECK (length(btrim(body_fr)) BETWEEN 1 AND 4000),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text NOT NULL DEFAULT 'system',
    PRIMARY KEY (team_id, id)
);

CREATE FUNCTION message_templates_seed(team uuid) RETURNS void LANGUAGE sql AS $$
INSERT INTO message_templates (team_id, title_en, title_fr, body_en, body_fr) VALUES
(team, 'Reminder to measure', 'Rappel des mesures',
 'We have not received your glucose readings for a while. Please measure as prescribed (fasting and after meals) and record each reading.',
 'Nous n''avons pas reçu vos glycémies depuis un moment. Merci de mesurer comme prescrit (à jeun et après les repas) et d''enregistrer chaque mesure.'),
(team, 'Diet advice', 'Conseil alimentaire',
 'Your readings after meals are above target. Spread your starchy foods over three meals and two snacks, prefer wholegrain, and walk 15 minutes after meals if you can.',
 'Vos glycémies après les repas dépassent l''objectif. Répartissez les féculents sur trois repas et deux collations, préférez les céréales complètes, et marchez 15 minutes après les repas si possible.'),
(team, 'Please call the unit', 'Merci d''appeler le service',
 'Please call the diabetes unit today so that we can talk about your readings.',
 'Merci d''appeler le service de diabétologie aujourd''hui pour que nous parlions de vos glycémies.');
$$;

SELECT message_templates_seed(id) FROM care_teams;

CREATE FUNCTION care_teams_seed_templates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM message_templates_seed(NEW.id);
    RETURN NEW;
END
$$;
CREATE TRIGGER care_teams_templates AFTER INSERT ON care_teams
    FOR EACH ROW EXECUTE FUNCTION care_teams_seed_templates();
