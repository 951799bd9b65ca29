-- telemon schema, version 20: signed webhooks to a hospital's systems.

-- An endpoint a team's administrator registered: where to POST which events, and the secret they are signed with
-- (Standard Webhooks: "whsec_" + base64 of 32 random bytes; kept in clear because signing needs it, shown once).
-- An endpoint whose deliveries keep failing is disabled, with the reason the administrators are shown.
CREATE TABLE webhook_endpoints (
    id               uuid PRIMARY KEY,
    team_id          uuid NOT NULL REFERENCES care_teams (id),
    url              text NOT NULL CHECK (url ~ '^https?://' AND length(url) <= 2000),
    events           text[] NOT NULL CHECK (cardinality(events) > 0),
    secret           text NOT NULL CHECK (secret LIKE 'whsec_%'),
    label            text NOT NULL DEFAULT '' CHECK (length(label) <= 200),
    active           boolean NOT NULL DEFAULT true,
    disabled_at      timestamptz,
    disabled_reason  text,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_team ON webhook_endpoints (team_id) WHERE active;

-- The outbox: one row per event, written by a trigger in the transaction of the change itself (an alert opened,
-- escalated or resolved; a patient enrolled or reviewed; a message from a patient), so that an event exists if
-- and only if its change was committed. Only teams with an endpoint for the event get a row.
CREATE TABLE webhook_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),  -- webhook-id: the same on every attempt
    team_id     uuid NOT NULL REFERENCES care_teams (id),
    type        text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One delivery per (endpoint, event): its state and the time of its next attempt, on the retry schedule of
-- webhooks.delivery (at once, 5 s, 30 s, 2 min, 10 min, 1 h, then hourly up to 24 h).
CREATE TABLE webhook_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      uuid NOT NULL REFERENCES webhook_endpoints (id),
    event_id         bigint NOT NULL REFERENCES webhook_events (id),
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    scheduled_from   timestamptz NOT NULL DEFAULT now(),  -- the retry schedule's start (a re-send starts it again)
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);

-- Every attempt, for the delivery log: the answer's status code (null when none came), how long it took, and why
-- it failed.
CREATE TABLE webhook_attempts (
    delivery_id  bigint NOT NULL REFERENCES webhook_deliveries (id),
    attempt      integer NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    status_code  integer,
    latency_ms   integer NOT NULL,
    error        text,
    PRIMARY KEY (delivery_id, attempt)
);

-- An event for the team's endpoints that take it; nothing when none does. Announces new deliveries on
-- telemon_webhooks so that the deliverer sends them at once.
CREATE FUNCTION webhook_emit(p_team uuid, p_type text, p_data jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    event_id bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE team_id = p_team AND active AND p_type = ANY (events)) THEN
        RETURN;
    END IF;
    INSERT INTO webhook_events (team_id, type, data) VALUES (p_team, p_type, p_data) RETURNING id INTO event_id;
    INSERT INTO webhook_deliveries (endpoint_id, event_id)
    SELECT id, event_id FROM webhook_endpoints WHERE team_id = p_team AND active AND p_type = ANY (events);
    PERFORM pg_notify('telemon_webhooks', '');
END
$$;

-- alert.opened, alert.escalated (warning to urgent, or info to either), alert.resolved: ids, rule, severity and
-- the alert's code and parameters, so that a receiver can act without reading any text.
CREATE FUNCTION webhook_alert_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    kind text;
    rank_old int;
    rank_new int;
BEGIN
    IF TG_OP = 'INSERT' THEN
        kind := 'alert.opened';
    ELSIF OLD.status <> 'resolved' AND NEW.status = 'resolved' THEN
        kind := 'alert.resolved';
    ELSE
        rank_old := array_position(ARRAY['info', 'warning', 'urgent'], OLD.severity);
        rank_new := array_position(ARRAY['info', 'warning', 'urgent'], NEW.severity);
        IF NEW.status <> 'resolved' AND rank_new > rank_old THEN
            kind := 'alert.escalated';
        ELSE
            RETURN NULL;
        END IF;
    END IF;
    PERFORM webhook_emit(
        p.team_id, kind,
        jsonb_build_object(
            'alert_id', NEW.id, 'patient_id', NEW.patient_id, 'external_id', p.external_id, 'rule', NEW.rule,
            'severity', NEW.severity, 'status', NEW.status, 'code', NEW.code, 'params', NEW.params,
            'opened_at', NEW.opened_at, 'resolved_by', NEW.resolved_by))
    FROM patients p WHERE p.id = NEW.patient_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_alert_opened AFTER INSERT ON alerts FOR EACH ROW EXECUTE FUNCTION webhook_alert_changed();
CREATE TRIGGER webhook_alert_changed AFTER UPDATE OF status, severity ON alerts
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.severity IS DISTINCT FROM NEW.severity)
    EXECUTE FUNCTION webhook_alert_changed();

CREATE FUNCTION webhook_patient_enrolled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_emit(NEW.team_id, 'patient.enrolled',
                         jsonb_build_object('patient_id', NEW.id, 'external_id', NEW.external_id));
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_patient_enrolled AFTER INSERT ON patients
    FOR EACH ROW EXECUTE FUNCTION webhook_patient_enrolled();

CREATE FUNCTION webhook_patient_reviewed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_emit(p.team_id, 'patient.reviewed',
                         jsonb_build_object('patient_id', p.id, 'external_id', p.external_id,
                                            'clinician_id', NEW.clinician_id, 'reviewed_at', NEW.reviewed_at))
    FROM patients p WHERE p.id = NEW.patient_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_patient_reviewed AFTER INSERT ON patient_reviews
    FOR EACH ROW EXECUTE FUNCTION webhook_patient_reviewed();

-- message.received: a message from the patient (ids only: the body is for the care team, not for a hook).
CREATE FUNCTION webhook_message_received() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM webhook_emit(p.team_id, 'message.received',
                         jsonb_build_object('message_id', NEW.id, 'patient_id', p.id, 'external_id', p.external_id,
                                            'created_at', NEW.created_at))
    FROM patients p WHERE p.id = NEW.patient_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_message_received AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.author = 'patient') EXECUTE FUNCTION webhook_message_received();
