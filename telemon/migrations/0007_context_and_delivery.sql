-- telemon schema, version 7: why the system resolved an alert, and stateful findings waiting for confirmation.
--
-- When a delivery is recorded, the glycaemic alerts still open are resolved by the system with the reason
-- 'delivered' (monitoring ends at delivery); a condition that cleared leaves the reason 'cleared'. The reason is
-- null for alerts a clinician or an integration resolved.
ALTER TABLE alerts ADD COLUMN resolved_reason text;

-- A stateful alert (stale sensor, no data, patterns, adherence, CGM review) opens only when its condition held
-- across two evaluations a few minutes apart, never from one evaluation in the middle of a backfill: the first
-- evaluation that finds the condition records it here with its time, a later one confirms it (and opens the
-- alert), an evaluation that finds the condition cleared removes it.
CREATE TABLE alert_pending (
    patient_id     uuid NOT NULL REFERENCES patients (id),
    rule           text NOT NULL,
    episode_key    text NOT NULL,
    first_seen_at  timestamptz NOT NULL,
    PRIMARY KEY (patient_id, rule, episode_key)
);
