"""What a domain package (``ingest``, ``alerts``, ``clinician_ui``) contributes to the service, handed to the
composition root (``telemon.app``), which alone imports the domains and assembles them: each domain exposes one
``Domain`` in its ``domain`` module — its routes, its scheduled jobs, and the form of its 503 answers during a
database outage. The core defines the shape and imports no domain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI

from telemon.jobs import Job
from telemon.outage import Unavailable


@dataclass(frozen=True)
class Domain:
    name: str
    # mounts the domain's routers (and its static files, exception handlers, lifespan parts) on the app
    include_routes: Callable[[FastAPI], None] | None = None
    jobs: tuple[Job, ...] = ()  # run by the one scheduler process, and by hand with ``telemon run-job NAME``
    # (path prefix, answer): the 503 of an outage in the domain's own form under that prefix (FHIR's
    # OperationOutcome, the dashboard's page); JSON elsewhere
    unavailable: tuple[tuple[str, Unavailable], ...] = ()
