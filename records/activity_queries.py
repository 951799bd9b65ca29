"""SQL of the monthly activity report (records.activity). $1: the team, $2 and $3: the month's first instant and
the next month's, $4: the end of what has happened (the month's end, or now for the month under way)."""

from __future__ import annotations

# The zone most of the team's patients live in: the month is counted in it.
TEAM_ZONE = """
SELECT time_zone FROM patients WHERE team_id = $1 GROUP BY time_zone ORDER BY count(*) DESC, time_zone LIMIT 1
"""
TEAM_NAME = "SELECT name FROM care_teams WHERE id = $1"

# Patients monitored during the month: enrolled before its end, neither archived nor delivered before it began.
# Monitored days: from the later of enrolment and the month's start to the earliest of delivery, archive and the
# end of what has happened (an end is exclusive), counted in days of the patient's own zone.
MONITORED = """
WITH spans AS (
    SELECT p.id,
           greatest(p.created_at, $2) AS first_at,
           least($4, p.archived_at,
                 CASE WHEN p.delivery_date IS NULL THEN NULL
                      ELSE (p.delivery_date + 1)::timestamp AT TIME ZONE p.time_zone END) AS last_at,
           p.time_zone
    FROM patients p
    WHERE p.team_id = $1 AND p.created_at < $3
)
SELECT count(*) AS patients,
       COALESCE(sum(((last_at - interval '1 microsecond') AT TIME ZONE time_zone)::date
                    - (first_at AT TIME ZONE time_zone)::date + 1), 0)
           AS monitored_days
FROM spans WHERE last_at > first_at
"""

READINGS_BY_SOURCE = """
SELECT r.source, r.kind, count(*) AS readings
FROM readings r JOIN patients p ON p.id = r.patient_id
WHERE p.team_id = $1 AND r.received_at >= $2 AND r.received_at < $3
GROUP BY r.source, r.kind
ORDER BY r.source, r.kind
"""

MEASUREMENTS_BY_KIND = """
SELECT m.kind, count(*) AS items
FROM measurements m JOIN patients p ON p.id = m.patient_id
WHERE p.team_id = $1 AND m.received_at >= $2 AND m.received_at < $3
GROUP BY m.kind ORDER BY m.kind
"""

# Alerts opened in the month, by rule and severity: raised, acknowledged by a person, resolved (by a person or
# because the condition cleared).
ALERTS_BY_RULE = """
SELECT a.rule, a.severity, count(*) AS raised, count(a.acknowledged_at) AS acknowledged,
       count(*) FILTER (WHERE a.status = 'resolved' AND a.resolved_by <> 'system') AS resolved_by_person,
       count(*) FILTER (WHERE a.status = 'resolved' AND a.resolved_by = 'system') AS cleared
FROM alerts a JOIN patients p ON p.id = a.patient_id
WHERE p.team_id = $1 AND a.opened_at >= $2 AND a.opened_at < $3
GROUP BY a.rule, a.severity
ORDER BY array_position(ARRAY['urgent', 'warning', 'info'], a.severity), count(*) DESC, a.rule
"""

# Time to acknowledge the urgent alerts opened in the month (those acknowledged), in seconds.
URGENT_ACKNOWLEDGEMENT = """
SELECT count(*) AS urgent,
       count(a.acknowledged_at) AS acknowledged,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM a.acknowledged_at - a.opened_at))
           FILTER (WHERE a.acknowledged_at IS NOT NULL) AS median_s,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM a.acknowledged_at - a.opened_at))
           FILTER (WHERE a.acknowledged_at IS NOT NULL) AS p90_s
FROM alerts a JOIN patients p ON p.id = a.patient_id
WHERE p.team_id = $1 AND a.severity = 'urgent' AND a.opened_at >= $2 AND a.opened_at < $3
"""

MESSAGES = """
SELECT count(*) FILTER (WHERE m.author = 'patient') AS from_patients,
       count(*) FILTER (WHERE m.author = 'clinician') AS from_team
FROM messages m JOIN patients p ON p.id = m.patient_id
WHERE p.team_id = $1 AND m.created_at >= $2 AND m.created_at < $3
"""

# Patients under monitoring at the end of what has happened ($2 here) whose last reading is more than 7 days older
# than it (or who never sent one).
SILENT = """
SELECT p.id, p.display_name, p.external_id,
       (SELECT max(r.measured_at) FROM readings r WHERE r.patient_id = p.id AND r.measured_at < $2::timestamptz) AS last_reading_at
FROM patients p
WHERE p.team_id = $1 AND p.created_at < $2::timestamptz - interval '7 days'
  AND (p.archived_at IS NULL OR p.archived_at > $2::timestamptz)
  AND (p.delivery_date IS NULL OR (p.delivery_date + 1)::timestamp AT TIME ZONE p.time_zone > $2::timestamptz)
  AND NOT EXISTS (SELECT 1 FROM readings r WHERE r.patient_id = p.id
                  AND r.measured_at >= $2::timestamptz - interval '7 days' AND r.measured_at < $2::timestamptz)
ORDER BY last_reading_at NULLS FIRST, p.display_name
"""

# Postpartum tests done in the month: $2 and $3 here are the month's first day and the next month's.
POSTPARTUM_TESTS = """
SELECT t.classification, count(*) AS tests
FROM postpartum_tests t JOIN patients p ON p.id = t.patient_id
WHERE p.team_id = $1 AND t.tested_on >= $2 AND t.tested_on < $3
GROUP BY t.classification ORDER BY t.classification
"""
