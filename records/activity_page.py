"""The team's monthly activity report (every clinician of the team): the page, and the same figures as CSV
(``records.activity``), and on paper (PDF, ``records.pdf``). ``?month=YYYY-MM``, by default the last whole month; an administrator of several teams
chooses the team (``?team=``). Reading it is audited (it lists patients)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import web
from clinician_ui.sessions import Clinician
from records import activity, pdf
from telemon import audit, teams
from telemon.csv_export import csv_response

router = APIRouter(include_in_schema=False)


async def _report(request: Request, who: Clinician, fmt: str) -> tuple[activity.Activity, dict[uuid.UUID, str]]:
    chosen = request.query_params.get("team")
    team_id = next((t for t in who.team_ids if str(t) == chosen), who.team_ids[0])
    async with web.connection(request) as conn:
        try:
            found = await activity.activity(conn, team_id, request.query_params.get("month"))
        except activity.MonthError:
            raise web.PageError(422, "error.month") from None
        names = await teams.team_names(conn, who.team_ids)
        await audit.record(
            conn,
            actor=who.actor,
            action="team.activity",
            detail={"team_id": str(team_id), "month": found.month, "format": fmt},
            patient_ids=[s["id"] for s in found.silent],
        )
    return found, names


def _context(found: activity.Activity, names: dict[uuid.UUID, str]) -> dict[str, Any]:
    return {
        "report": found,
        "team_names": names,
        "under_way": found.until < found.end,
        "minutes": lambda seconds: None if seconds is None else dt.timedelta(seconds=round(seconds)),
    }


@router.get("/activity")
async def activity_page(request: Request, who: Clinician = Depends(web.clinician)) -> HTMLResponse:
    found, names = await _report(request, who, "html")
    return web.render(request, "activity.html", _context(found, names), who=who)


@router.get("/activity.pdf", response_model=None)
async def activity_pdf(request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    found, names = await _report(request, who, "pdf")
    fmt = web.formatter(who)
    context = fmt.functions() | {"lang": fmt.lang} | _context(found, names)
    document = await pdf.render(lambda: web.templates.get_template("activity_print.html").render(**context))
    return pdf.pdf_response(document, f"telemon-activity-{found.month}.pdf")


@router.get("/activity.csv", response_model=None)
async def activity_csv(request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    found, _names = await _report(request, who, "csv")
    return csv_response(activity.activity_csv(found), f"telemon-activity-{found.month}.csv")
