"""What the alerts domain contributes to the service: the hospital API's alert routes, and the scheduled
evaluations of the whole population and of CGM wearers."""

from __future__ import annotations

from alerts import api, scheduled
from telemon.domain import Domain

DOMAIN = Domain("alerts", include_routes=lambda app: app.include_router(api.router), jobs=scheduled.JOBS)
