"""What the hospital record domain contributes to the service: the FHIR read side, the reports (PDF, CSV) and the
team's activity report."""

from __future__ import annotations

from fastapi import FastAPI

from telemon.domain import Domain


def _routes(app: FastAPI) -> None:
    pass


DOMAIN = Domain("records", include_routes=_routes)
