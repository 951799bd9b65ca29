-- telemon schema, version 5: at most one open alert per (patient, rule) for the per-reading rules.
--
-- A patient fed thousands of extreme values used to get one alert per episode: tens of thousands of open alerts,
-- pages of hundreds of megabytes, and an engine busy reconciling them. One open alert is enough to act on; the
-- episodes that come while it is open (and not snoozed) are folded into it as evidence: how many, when the last
-- came, and the reading ids of the most recent ones (a bounded list).
ALTER TABLE alerts
    ADD COLUMN folded_episodes    integer NOT NULL DEFAULT 0,
    ADD COLUMN folded_reading_ids bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN folded_last_at     timestamptz;

-- Which alert took each folded episode: a later evaluation finds the episode here and neither counts it again
-- nor opens it (and once that alert is resolved, the episodes it held are resolved with it).
CREATE TABLE alert_folded_episodes (
    patient_id   uuid NOT NULL REFERENCES patients (id),
    rule         text NOT NULL,
    episode_key  text NOT NULL,
    alert_id     bigint NOT NULL,
    folded_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (patient_id, rule, episode_key)
);

-- Storms raised before this version: per (patient, rule), the oldest open alert keeps the others as folded
-- episodes; the others are resolved by the system (their rows stay, for the history).
CREATE TEMPORARY TABLE storm_fold ON COMMIT DROP AS
SELECT patient_id, id, rule, episode_key, evidence, keeper
FROM (
    SELECT a.patient_id, a.id, a.rule, a.episode_key, a.evidence,
           first_value(a.id) OVER w AS keeper, row_number() OVER w AS n
    FROM alerts a
    WHERE a.status = 'open' AND a.episode_key <> 'current'
    WINDOW w AS (PARTITION BY a.patient_id, a.rule ORDER BY a.opened_at, a.id)
) ranked
WHERE n > 1;

INSERT INTO alert_folded_episodes (patient_id, rule, episode_key, alert_id)
SELECT patient_id, rule, episode_key, keeper FROM storm_fold
ON CONFLICT DO NOTHING;

UPDATE alerts a
SET folded_episodes = f.n, folded_last_at = now()
FROM (SELECT patient_id, keeper, count(*) AS n FROM storm_fold GROUP BY patient_id, keeper) f
WHERE a.patient_id = f.patient_id AND a.id = f.keeper;

UPDATE alerts a
SET status = 'resolved', resolved_at = now(), resolved_by = 'system', updated_at = now()
FROM storm_fold f
WHERE a.patient_id = f.patient_id AND a.id = f.id;
