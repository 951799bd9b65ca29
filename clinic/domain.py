"""What the clinic contributes to the service: the hospital API's patient and device routes, and the pairing
exchange of the phone app."""

from __future__ import annotations

from clinic import api
from telemon.domain import Domain

DOMAIN = Domain("clinic", include_routes=lambda app: app.include_router(api.router))
