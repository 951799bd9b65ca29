"""What the dashboard contributes to the service: its pages, actions, event stream and static files, and its own
page for the 503 of a database outage (every path the other domains do not claim)."""

from __future__ import annotations

from clinician_ui import web
from clinician_ui.routes import include_routes
from telemon.domain import Domain

DOMAIN = Domain("clinician_ui", include_routes=include_routes, unavailable=(("/", web.unavailable),))
