-- telemon schema, version 3: what the alert engine's reconcile looks up per candidate.

-- A per-reading episode a clinician resolved is never opened again: the engine looks for it by
-- (patient_id, rule, episode_key) among resolved alerts, which alerts_one_open_episode (open ones only) does not
-- hold; without this index every candidate scanned all of its patient's alerts.
CREATE INDEX alerts_resolved_episode ON alerts (patient_id, rule, episode_key) WHERE status = 'resolved';
