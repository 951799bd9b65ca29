"""What the hospital record domain contributes to the service: the FHIR read side, the reports (PDF, CSV) and the
team's activity report, through the hospital API and from the dashboard. The records sit above the dashboard: they
print its logbook and charts, and serve their dashboard pages with its session and templates."""

from __future__ import annotations

from fastapi import FastAPI

from records import activity_page, export_api, exports_page, fhir_api, report_api, report_fhir, report_page
from telemon.domain import Domain


def _routes(app: FastAPI) -> None:
    app.include_router(report_api.router)  # the PDF report and the end-of-monitoring letter
    app.include_router(export_api.router)  # CSV: a patient's readings and measurements, the team's patients
    app.include_router(report_fhir.router)  # the PDF report as a FHIR DiagnosticReport
    app.include_router(fhir_api.router)  # FHIR read side: metadata, Patient, Observation search
    app.include_router(fhir_api.summary_router)  # the HL7 CGM IG summary of a period
    # the dashboard's own ways to them, under the clinician's session (its pages, sessions and templates:
    # clinician_ui.web): the PDF report, the CSV downloads, the monthly activity report
    for pages in (report_page, exports_page, activity_page):
        app.include_router(pages.router)


DOMAIN = Domain("records", include_routes=_routes)
