"""The treatment plan on the dashboard: the plan in force, its history (who, when, why), and the form with which a
diabetologist or an admin writes a new version.

Plans go through ``telemon.treatment``, the same record functions as the hospital API, so both check and audit a
change one way. A refused form is shown again with what was typed and the refusal in the clinician's language,
naming the field; nothing is written."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from clinician_ui import dose_review_page, queries, sessions, web
from clinician_ui.sessions import Clinician
from telemon import audit, patients, record_queries, treatment
from telemon.db import Conn

router = APIRouter(include_in_schema=False)

FORM_FIELDS = (
    "treatment",
    "metformin_mg",
    "metformin_times",
    "basal_product",
    "basal_units",
    "basal_time",
    "prandial_product",
    "prandial_breakfast",
    "prandial_lunch",
    "prandial_dinner",
    "instruction",
    "note",
)


@dataclass(frozen=True)
class Version:
    plan: treatment.Plan
    who: str  # the clinician's name, or the API key's actor
    from_alert: int | None = None  # the dose review suggestion this version applied


class FormRefused(Exception):
    def __init__(self, field: str, key: str, **values: object) -> None:
        super().__init__(field)
        self.field, self.key, self.values = field, key, values


def _number(text: str, name: str) -> float | None:
    """A number as a French or English clinician types it ("4,5" or "4.5"); empty is no value."""
    if not text:
        return None
    try:
        value = float(text.replace(",", ".").replace(" ", ""))
    except ValueError:
        raise FormRefused(name, "treatment.error.number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise FormRefused(name, "treatment.error.number")
    return value


def plan_of_form(form: Mapping[str, Any]) -> treatment.Plan:
    """The plan a submitted form asks for, before ``telemon.treatment.check_plan`` judges it (``FormRefused`` for
    a number that is not one); the fields that do not belong to the chosen treatment are ignored, since the form
    shows them all."""
    kind = web.field(form, "treatment")
    metformin = _number(web.field(form, "metformin_mg"), "metformin_mg")
    if metformin is not None and metformin != int(metformin):
        raise FormRefused("metformin_mg", "treatment.error.number")
    times = tuple(t.strip() for t in web.field(form, "metformin_times").replace(";", ",").split(",") if t.strip())
    basal = None
    if kind == "insulin" and (web.field(form, "basal_units") or web.field(form, "basal_product")):
        units = _number(web.field(form, "basal_units"), "basal.units")
        basal = treatment.Basal(web.field(form, "basal_product"), units or 0, web.field(form, "basal_time"))
    prandial: dict[str, float] = {}
    if kind == "insulin":
        for meal in treatment.MEALS:
            units = _number(web.field(form, f"prandial_{meal}"), f"prandial.{meal}")
            if units is not None:
                prandial[meal] = units
    return treatment.Plan(
        treatment=kind,
        metformin_mg=int(metformin) if kind == "metformin" and metformin is not None else None,
        metformin_times=times if kind == "metformin" else (),
        basal=basal,
        prandial_product=(web.field(form, "prandial_product") or None) if prandial else None,
        prandial=prandial,
        instruction=web.field(form, "instruction"),
        note=web.field(form, "note"),
    )


def form_values(plan: treatment.Plan | None, lang: str) -> dict[str, str]:
    """The form filled with the plan in force, so that a change starts from it."""
    if plan is None:
        return {name: "" for name in FORM_FIELDS} | {"treatment": "diet"}

    def units(value: float | None) -> str:
        text = "" if value is None else f"{value:g}"
        return text.replace(".", ",") if lang == "fr" else text

    basal = plan.basal
    return {
        "treatment": plan.treatment,
        "metformin_mg": "" if plan.metformin_mg is None else str(plan.metformin_mg),
        "metformin_times": ", ".join(plan.metformin_times),
        "basal_product": basal.product if basal else "",
        "basal_units": units(basal.units) if basal else "",
        "basal_time": basal.time if basal else "",
        "prandial_product": plan.prandial_product or "",
        **{f"prandial_{meal}": units(plan.prandial.get(meal)) for meal in treatment.MEALS},
        "instruction": plan.instruction,
        "note": "",
    }


async def versions(db: Conn, patient_id: uuid.UUID) -> list[Version]:
    """Every version, newest first, with the name of the clinician who wrote it and the dose review suggestion it
    applied, if any."""
    plans = await treatment.history(db, patient_id)
    ids = []
    for plan in plans:
        try:
            ids.append(uuid.UUID(plan.created_by.removeprefix("clinician:")))
        except ValueError:
            continue
    rows = await db.fetch(queries.CLINICIAN_NAMES, ids) if ids else []
    names = {f"clinician:{r['id']}": r["display_name"] for r in rows}
    applied = await dose_review_page.applied_versions(db, patient_id)
    origins = {version: alert_id for alert_id, version in applied.items()}
    return [Version(plan, names.get(plan.created_by, plan.created_by), origins.get(plan.version)) for plan in plans]


async def _patient(db: Conn, who: Clinician, patient_id: uuid.UUID) -> asyncpg.Record:
    row: asyncpg.Record | None = await db.fetchrow(record_queries.PATIENT, patient_id, list(who.team_ids))
    if row is None:
        raise web.PageError(404, "error.not_found")
    return row


async def _page(
    request: Request,
    db: Conn,
    who: Clinician,
    p: asyncpg.Record,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    error_field: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    shown = await versions(db, p["id"])
    current = shown[0].plan if shown else None
    context = {
        "p": p,
        "zone": ZoneInfo(p["time_zone"]),
        "versions": shown,
        "current_plan": current,
        "values": values or form_values(current, who.language),
        "treatments": patients.TREATMENTS,
        "basal_products": treatment.BASAL_PRODUCTS,
        "prandial_products": treatment.PRANDIAL_PRODUCTS,
        "meals": treatment.MEALS,
        "can_change": who.can_prescribe and p["archived_at"] is None,
        "error": error,
        "error_field": error_field,
    }
    return web.render(request, "treatment.html", context, who=who, status_code=status_code)


@router.get("/patients/{patient_id}/treatment", response_class=HTMLResponse)
async def plan_page(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> HTMLResponse:
    async with web.connection(request) as db:
        p = await _patient(db, who, patient_id)
        await audit.record(db, actor=who.actor, action="treatment.view", patient_id=patient_id)
        return await _page(request, db, who, p)


@router.post("/patients/{patient_id}/treatment", response_model=None)
async def change_plan(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    if not who.can_prescribe:
        raise web.PageError(403, "error.forbidden")
    values = {name: web.field(form, name) for name in FORM_FIELDS}
    async with web.connection(request) as db:
        p = await _patient(db, who, patient_id)
        if p["archived_at"] is not None:
            raise web.PageError(409, "error.archived")
        fmt = web.formatter(who)
        try:
            await treatment.new_version(db, patient_id, plan_of_form(form), actor=who.actor)
        except FormRefused as refused:
            message = fmt.t(refused.key, field=fmt.t("treatment.field." + refused.field), **refused.values)
            return await _page(
                request, db, who, p, values=values, error=message, error_field=refused.field, status_code=422
            )
        except patients.FieldError as refused:
            field = fmt.t("treatment.field." + refused.field)
            message = fmt.t("treatment.error." + refused.code.removeprefix("treatment."), field=field, **refused.params)
            return await _page(
                request, db, who, p, values=values, error=message, error_field=refused.field, status_code=422
            )
        except treatment.PlanRefused:
            raise web.PageError(409, "error.archived") from None
    await sessions.flash(web.pool(request), who, "treatment.saved")
    return web.redirect(f"/patients/{patient_id}/treatment#plan")
