"""Enrolling a patient from the dashboard: the form, its field-level errors, and the enrolment itself, which is the
hospital API's (``telemon.patients.create_patient_once``: one patient per hospital number in a team)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import queries, sessions, web
from clinician_ui.enrol_form import FIELD_LABELS, LANGUAGES, MAX_LENGTH, FieldProblem, read_enrolment
from clinician_ui.sessions import Clinician
from telemon import audit, patients, teams, units

router = APIRouter(include_in_schema=False)

# Who enrols patients and pairs their devices: the midwives who meet them, the diabetologists, and admins.
CLINIC_ROLES = ("midwife", "diabetologist", "admin")
DEFAULT_TIME_ZONE = "Europe/Paris"  # a team's first patient: where telemon's first maternity units are
TIME_ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))


def require_clinic_role(who: Clinician) -> None:
    if who.role not in CLINIC_ROLES:
        raise web.PageError(403, "error.forbidden")


async def _form_page(
    request: Request,
    who: Clinician,
    values: Mapping[str, str],
    errors: Mapping[str, FieldProblem],
    *,
    duplicate: patients.PatientRecord | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    async with web.connection(request) as db:
        names = await teams.team_names(db, who.team_ids)
    context = {
        "values": values,
        "errors": errors,
        "duplicate": duplicate,
        "teams": names,
        "profiles": patients.PROFILES,
        "treatments": patients.TREATMENTS,
        "languages": LANGUAGES,
        "time_zones": TIME_ZONES,
        "max_length": MAX_LENGTH,
        "field_labels": FIELD_LABELS,
    }
    return web.render(request, "enrol.html", context, who=who, status_code=status_code)


@router.get("/enrol")
async def enrol_form(request: Request, who: Clinician = Depends(web.clinician)) -> HTMLResponse:
    require_clinic_role(who)
    async with web.connection(request) as db:
        zone = await db.fetchval(queries.TEAM_TIME_ZONE, who.team_ids[0]) if who.team_ids else None
    values = {
        "team_id": str(who.team_ids[0]) if who.team_ids else "",
        "time_zone": zone or DEFAULT_TIME_ZONE,
        "language": who.language,
        "profile": "FR",
        "treatment": "diet",
        "readings_per_day": "4",
        "ogtt_unit": who.unit,
    }
    return await _form_page(request, who, values, {})


@router.post("/enrol", response_model=None)
async def enrol(request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    require_clinic_role(who)
    values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
    zone_text = web.field(form, "time_zone")
    zone = ZoneInfo(zone_text) if zone_text in available_timezones() else ZoneInfo(DEFAULT_TIME_ZONE)
    found, errors = read_enrolment(form, team_ids=who.team_ids, today=dt.datetime.now(zone).date())
    if found is None:
        return await _form_page(request, who, values, errors, status_code=422)
    db = web.pool(request)
    async with db.acquire() as conn, conn.transaction():
        patient, created = await patients.create_patient_once(
            conn,
            team_id=found.team_id,
            external_id=found.external_id,
            display_name=found.display_name,
            time_zone=found.time_zone,
            due_date=found.due_date,
            profile=found.profile,
            treatment=found.treatment,
            readings_per_day=found.readings_per_day,
            diagnosis_date=found.diagnosis_date,
            height_cm=found.height_cm,
            pre_pregnancy_weight_kg=found.pre_pregnancy_weight_kg,
        )
        if created:
            await patients.set_enrolment_details(conn, patient.id, found.details)
            detail: dict[str, Any] = {"ogtt": found.details.ogtt is not None}
            if found.note:
                detail["note_id"] = await conn.fetchval(queries.INSERT_NOTE, patient.id, who.id, found.note)
            await audit.record(conn, actor=who.actor, action="patient.create", patient_id=patient.id, detail=detail)
    if not created:  # the team has this hospital number: nothing was written; name the patient who has it
        problem = FieldProblem("enrol.duplicate", {"external_id": found.external_id})
        return await _form_page(request, who, values, {"external_id": problem}, duplicate=patient, status_code=422)
    await sessions.flash(db, who, "enrol.saved")
    return web.redirect(f"/patients/{patient.id}")


def ogtt_text(details: patients.EnrolmentDetails | None, lang: str) -> dict[str, str] | None:
    """The diagnostic OGTT's values as typed, in their unit (— for one not measured), for the record's summary."""
    if details is None or details.ogtt is None:
        return None
    ogtt = details.ogtt

    def shown(mgdl: float | None) -> str:
        if mgdl is None:
            return "—"
        value = round(units.from_mgdl(mgdl, ogtt.unit), units.DIGITS[ogtt.unit] + 1)
        text = f"{value:g}"
        return text.replace(".", ",") if lang == "fr" else text

    return {
        "fasting": shown(ogtt.fasting_mgdl),
        "one_hour": shown(ogtt.one_hour_mgdl),
        "two_hours": shown(ogtt.two_hours_mgdl),
        "unit": ogtt.unit,
    }
