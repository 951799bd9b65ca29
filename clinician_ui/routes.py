"""Mounts the clinician dashboard on the app: pages, actions, the event stream and the static files."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from clinician_ui import (
    account,
    api_keys_page,
    audit_page,
    conversation,
    dose_review_page,
    enrol,
    events,
    login,
    measurements,
    patient,
    postpartum,
    preferences,
    sessions,
    team,
    titration_page,
    triage,
    web,
    webhooks_page,
)
from clinician_ui import devices as device_pages
from clinician_ui import treatment as treatment_plan

STATIC = Path(__file__).parent / "static"


def include_routes(app: FastAPI) -> None:
    pages = (
        *(login, triage, patient, conversation, preferences, events),
        *(enrol, device_pages, treatment_plan),  # enrolment, devices and pairing sheets, the treatment plan
        *(dose_review_page, titration_page),  # dose review suggestions applied; the team's titration protocol
        measurements,  # the height and pre-pregnancy weight of the measurements section
        postpartum,  # the postpartum glucose test recorded from the patient page
        *(team, account, api_keys_page, audit_page),  # the team, invitations, passwords, API keys, audit
        webhooks_page,  # the team's signed webhooks and their delivery log
    )
    for module in pages:
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="dashboard-static")
    app.add_exception_handler(web.LoginRequired, _login_required)
    app.add_exception_handler(web.PageError, _page_error)


async def _login_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, web.LoginRequired)
    if request.url.path == "/events":
        return Response(status_code=401)
    target = exc.next_path if request.method == "GET" else "/"
    return web.redirect("/login?" + urllib.parse.urlencode({"next": web.safe_next(target)}))


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, web.PageError)
    who = await sessions.clinician_of(web.pool(request), request.cookies.get(sessions.COOKIE))
    context = {"error_key": exc.key, "error_values": exc.values, "status": exc.status}
    return web.render(request, "error.html", context, who=who, status_code=exc.status)
