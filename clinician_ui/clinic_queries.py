"""SQL of the clinic's pages (enrolment, devices, end of monitoring) that is not a record's own (those are in
``telemon.queries``, shared with the hospital API). Values go in as parameters only."""

# The care teams $1 (a clinician's), by name, for the enrolment form's choice of team.
TEAM_NAMES = "SELECT id, name FROM care_teams WHERE id = ANY($1::uuid[]) ORDER BY name, id"

# The time zone a new patient of team $1 most likely lives in: the one of the team's latest enrolment.
TEAM_TIME_ZONE = "SELECT time_zone FROM patients WHERE team_id = $1 ORDER BY created_at DESC, id LIMIT 1"
