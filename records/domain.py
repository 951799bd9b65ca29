"""What the hospital record domain contributes to the service: the FHIR read side, the reports (PDF, CSV) and the
team's activity report."""

from __future__ import annotations

from fastapi import FastAPI

from records import export_api, fhir_api, report_api, report_fhir
from telemon.domain import Domain


def _routes(app: FastAPI) -> None:
    app.include_router(report_api.router)  # the PDF report and the end-of-monitoring letter
    app.include_router(export_api.router)  # CSV: a patient's readings and measurements, the team's patients
    app.include_router(report_fhir.router)  # the PDF report as a FHIR DiagnosticReport
    app.include_router(fhir_api.router)  # FHIR read side: metadata, Patient, Observation search
    app.include_router(fhir_api.summary_router)  # the HL7 CGM IG summary of a period


DOMAIN = Domain("records", include_routes=_routes)
