"""Each clinician's glucose unit and language."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import queries, sessions, web
from clinician_ui.i18n import LANGUAGES, glucose
from clinician_ui.sessions import Clinician
from telemon import audit, units

router = APIRouter(include_in_schema=False)


@router.get("/preferences")
async def preferences_form(request: Request, who: Clinician = Depends(web.clinician)) -> HTMLResponse:
    examples = {u: glucose(95.0, u, who.language) for u in units.UNITS}
    return web.render(request, "preferences.html", {"languages": LANGUAGES, "examples": examples}, who=who)


@router.post("/preferences", response_model=None)
async def save_preferences(request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    unit = web.field(form, "unit") or who.unit
    language = web.field(form, "language") or who.language
    if unit not in units.UNITS or language not in LANGUAGES:
        raise web.PageError(422, "error.invalid", detail=f"{unit} {language}")
    db = web.pool(request)
    await db.execute(queries.UPDATE_PREFERENCES, who.id, unit, language)
    await audit.record(db, actor=who.actor, action="clinician.preferences", detail={"unit": unit, "language": language})
    await sessions.flash(db, who, "preferences.saved")
    return web.redirect(web.safe_next(web.field(form, "next"), "/preferences"))
