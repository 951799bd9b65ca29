"""SQL of the FHIR import: the patients an Observation names, and the import device of each. Values go in as
parameters only."""

# An Observation's subject: by telemon id, or by the hospital's number (external_id, unique only within a team,
# so one value may name patients of several teams: the caller refuses it as ambiguous), among the patients of the
# API key's care teams ($2) only: another team's patient is not found, exactly like one that does not exist.
FHIR_PATIENTS_BY_IDS = "SELECT id FROM patients WHERE id = ANY($1::uuid[]) AND team_id = ANY($2::uuid[])"
FHIR_PATIENTS_BY_EXTERNAL_IDS = (
    "SELECT external_id, id FROM patients WHERE external_id = ANY($1::text[]) AND team_id = ANY($2::uuid[])"
)

# The per-patient device hospital imports are stored under (id ``fhir-<patient uuid hex>``, deterministic so that a
# re-import deduplicates). It never authenticates: readings come with an API key, and its token, Nightscout secret
# and broker password are hashes of a secret that was thrown away. ON CONFLICT DO NOTHING: created once, even
# when two imports race.
FHIR_INSERT_DEVICES = """
INSERT INTO devices (patient_id, id, kind, label, token_hash, ns_secret_hash, broker_password, active)
SELECT d.patient_id, d.id, 'app', 'FHIR import (hospital)', d.token_hash, d.ns_secret_hash, d.broker_password, true
FROM unnest($1::uuid[], $2::text[], $3::bytea[], $4::bytea[], $5::text[])
     AS d(patient_id, id, token_hash, ns_secret_hash, broker_password)
ON CONFLICT DO NOTHING
"""
