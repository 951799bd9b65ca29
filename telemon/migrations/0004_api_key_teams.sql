-- telemon schema, version 4: API keys belong to care teams, and reads of several patients are audited by name.

-- The care teams an API key acts for: it reads, imports into and acts on the patients of these teams only. A key
-- made before keys belonged to teams has no row here; it is refused with a reason telling the administrator to
-- create a team key (telemon create-api-key --team), never silently given every team.
CREATE TABLE api_key_teams (
    api_key_id  uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    team_id     uuid NOT NULL REFERENCES care_teams (id) ON DELETE CASCADE,
    PRIMARY KEY (api_key_id, team_id)
);
CREATE INDEX api_key_teams_team ON api_key_teams (team_id);

-- When a key was revoked (active turned false), shown by telemon list-api-keys.
ALTER TABLE api_keys ADD COLUMN revoked_at timestamptz;

-- A read of a list (triage, all patients, alerts, the dashboard's event stream) names every patient it showed in
-- one row; patient_id stays the column of single-patient actions. "Who saw patient X" looks in both, and the GIN
-- index answers the array half without scanning the log.
ALTER TABLE audit_log ADD COLUMN patient_ids uuid[];
CREATE INDEX audit_log_patient_ids ON audit_log USING gin (patient_ids) WHERE patient_ids IS NOT NULL;
