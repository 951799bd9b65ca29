"""The domains this service is assembled from, in the order their routes are mounted, and the scheduled jobs of
the core and of every domain."""

from __future__ import annotations

from alerts.domain import DOMAIN as ALERTS
from clinic.domain import DOMAIN as CLINIC
from clinician_ui.domain import DOMAIN as CLINICIAN_UI
from ingest.domain import DOMAIN as INGEST
from patient_ui.domain import DOMAIN as PATIENT_UI
from records.domain import DOMAIN as RECORDS
from telemon.domain import Domain
from telemon.jobs import CORE_JOBS, Job

DOMAINS: tuple[Domain, ...] = (INGEST, CLINICIAN_UI, ALERTS, CLINIC, PATIENT_UI, RECORDS)


def all_jobs() -> dict[str, Job]:
    return {job.name: job for job in (*CORE_JOBS, *(job for domain in DOMAINS for job in domain.jobs))}
