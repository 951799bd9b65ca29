"""Mounts every ingest transport on the app; they all call the one ingest service."""

from __future__ import annotations

from fastapi import FastAPI

from ingest import fhir, http, nightscout


def include_routes(app: FastAPI) -> None:
    app.include_router(http.router)
    app.include_router(nightscout.router)
    app.include_router(fhir.router)
