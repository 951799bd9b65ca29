"""What the clinic contributes to the service: the hospital API's patient and device routes, the pairing exchange of
the phone app, and the patient's messages to and from her care team."""

from __future__ import annotations

from fastapi import FastAPI

from clinic import api, me_messages, postpartum_api, treatment_api
from telemon.domain import Domain


def _routes(app: FastAPI) -> None:
    app.include_router(api.router)
    app.include_router(me_messages.router)
    app.include_router(treatment_api.router)
    app.include_router(postpartum_api.router)


DOMAIN = Domain("clinic", include_routes=_routes)
