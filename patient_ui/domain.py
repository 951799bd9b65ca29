"""What the companion app contributes to the service: the patient's own API (``/api/v1/me``) and the app's pages,
manifest, service worker and static files under ``/app``."""

from __future__ import annotations

from patient_ui.pages import include_routes
from telemon.domain import Domain

DOMAIN = Domain("patient_ui", include_routes=include_routes)
