"""SQL of the team administration pages (the audit page, password checks). Values go in as parameters only."""

CLINICIAN_LANGUAGE = "SELECT language FROM clinicians WHERE id = $1"
PASSWORD_HASH = "SELECT password_hash FROM clinicians WHERE id = $1 AND active"  # noqa: S105 - SQL

# The actors of the care teams $1: their clinicians ('clinician:<id>', with their names) and the API keys that act
# for them ('api_key:<id>', with their labels).
TEAM_ACTORS = """
SELECT 'clinician:' || c.id AS actor, c.display_name AS name, 'clinician' AS kind
FROM clinicians c
WHERE EXISTS (SELECT 1 FROM team_memberships m WHERE m.clinician_id = c.id AND m.team_id = ANY($1::uuid[]))
UNION ALL
SELECT 'api_key:' || k.id, k.label, 'api_key'
FROM api_keys k
WHERE EXISTS (SELECT 1 FROM api_key_teams t WHERE t.api_key_id = k.id AND t.team_id = ANY($1::uuid[]))
ORDER BY 3, 2, 1
"""

# A patient of the care teams $2 by telemon id or hospital number ($1).
PATIENT_OF_TEAMS = """
SELECT id FROM patients
WHERE team_id = ANY($2::uuid[]) AND (id::text = $1 OR external_id = $1)
ORDER BY id::text = $1 DESC
LIMIT 1
"""

# The audit trail as a team's administrator may read it, newest first, one page after the id $1 (keyset: ids only
# grow). A row about a patient belongs to the patient's team; a row about no patient to the team of its actor ($8:
# the teams' clinicians and keys) or to the team it names in its detail. Filters: actor $2, patient $3 (as the
# subject of the row or among the patients of a list read), action prefix $4, from $5 (included) to $6 (excluded).
AUDIT_PAGE = """
SELECT a.id, a.at, a.actor, a.action, a.patient_id, a.detail, cardinality(a.patient_ids) AS patients_shown,
       p.display_name AS patient_name, p.external_id AS patient_external_id
FROM audit_log a
LEFT JOIN patients p ON p.id = a.patient_id
WHERE ($1::bigint IS NULL OR a.id < $1)
  AND ($2::text IS NULL OR a.actor = $2)
  AND ($3::uuid IS NULL OR a.patient_id = $3 OR $3 = ANY(a.patient_ids))
  AND ($4::text IS NULL OR starts_with(a.action, $4))
  AND ($5::timestamptz IS NULL OR a.at >= $5)
  AND ($6::timestamptz IS NULL OR a.at < $6)
  AND CASE WHEN a.patient_id IS NOT NULL THEN p.team_id = ANY($7::uuid[])
           ELSE a.actor = ANY($8::text[]) OR a.detail ->> 'team_id' = ANY($7::uuid[]::text[]) END
ORDER BY a.id DESC
LIMIT $9
"""
