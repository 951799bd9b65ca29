"""The treatment record beside the glucose on the patient page: the insulin doses the logbook shows beside the
readings, the changes of the treatment plan marked on the glucose chart, and the measurements section — the latest
ketones, the blood pressures of the last two weeks, the weight with its gain since before the pregnancy and the
weight-gain flag (``telemon.weight_gain``, IOM 2009) — with the form that sets the height and pre-pregnancy weight.

The flag is information for the next visit, never an alert: it is shown on the page and nowhere else. Doses,
ketones, weight and blood pressure come from ``measurements`` (what devices and the companion app send, migration
0015); plan versions from ``telemon.treatment``; the height and pre-pregnancy weight are the record's and change
through ``telemon.patients.update_patient``, as the hospital API's PATCH changes them, with the same checks and
audit."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from clinician_ui import queries, sessions, web
from clinician_ui.enrol import CLINIC_ROLES, require_clinic_role
from clinician_ui.enrol_form import parse_decimal
from clinician_ui.i18n import Formatter
from clinician_ui.sessions import Clinician
from telemon import patients, record_queries, treatment, weight_gain
from telemon.db import Conn
from telemon.settings import SettingsError

router = APIRouter(include_in_schema=False)

PRESSURE_DAYS = 14  # blood pressures shown: the last two weeks, as the logbook
PRESSURES_SHOWN = 100  # at most (a patient measures once or twice a day)
WEIGHTS_LOADED = 500  # the pregnancy's weights, newest first: far more than a daily weighing makes
BODY_FIELDS = ("height_cm", "pre_pregnancy_weight_kg")
_BOUNDS = {
    "height_cm": (weight_gain.HEIGHT_CM, "cm"),
    "pre_pregnancy_weight_kg": (weight_gain.PRE_PREGNANCY_WEIGHT_KG, "kg"),
}


@dataclass(frozen=True)
class Loaded:
    """What the patient page reads for its treatment record, in one pass over its connection."""

    doses: list[asyncpg.Record]
    plans: list[treatment.Plan]  # every version, newest first
    ketone: asyncpg.Record | None
    pressures: list[asyncpg.Record]
    weights: list[asyncpg.Record]  # the pregnancy's, in time order
    height_cm: float | None
    pre_pregnancy_weight_kg: float | None
    archived: bool


async def load(
    db: Conn | asyncpg.Pool,
    patient_id: uuid.UUID,
    *,
    start: dt.datetime,
    end: dt.datetime,
    now: dt.datetime,
    due_date: dt.date,
    delivery_date: dt.date | None,
    zone: dt.tzinfo,
) -> Loaded:
    """The doses of the logbook's period [start, end), the plan's versions, the latest ketones, the last two weeks'
    blood pressures and the pregnancy's weights (from its start to the delivery, or now)."""
    doses = await db.fetch(record_queries.INSULIN_DOSES, patient_id, start, end)
    plans = await treatment.history(db, patient_id)
    ketone = await db.fetchrow(record_queries.LATEST_KETONE, patient_id)
    pressures = await db.fetch(
        record_queries.BLOOD_PRESSURES, patient_id, now - dt.timedelta(days=PRESSURE_DAYS), PRESSURES_SHOWN
    )
    pregnancy_start = dt.datetime.combine(
        due_date - dt.timedelta(days=patients.PREGNANCY_DAYS), dt.time(0), tzinfo=zone
    )
    weights_end = now + dt.timedelta(minutes=5)  # a scale a little ahead of the server is still today's weight
    if delivery_date is not None:
        weights_end = min(
            weights_end, dt.datetime.combine(delivery_date + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        )
    weights = await db.fetch(record_queries.WEIGHTS, patient_id, pregnancy_start, weights_end, WEIGHTS_LOADED)
    body = await db.fetchrow(queries.BODY, patient_id)
    assert body is not None  # the page found her
    return Loaded(
        doses=list(doses),
        plans=plans,
        ketone=ketone,
        pressures=list(pressures),
        weights=list(weights),
        height_cm=body["height_cm"],
        pre_pregnancy_weight_kg=body["pre_pregnancy_weight_kg"],
        archived=body["archived_at"] is not None,
    )


# --- the chart's plan changes -------------------------------------------------------------------------------------


def _units(value: float, fmt: Formatter) -> str:
    return fmt.num(value, 0 if float(value).is_integer() else 1)


def plan_words(plan: treatment.Plan, fmt: Formatter) -> str:
    """A version in a few words, as the chart's mark names it: "NPH 12 U", "metformin 1000 mg", "diet"."""
    parts: list[str] = []
    if plan.basal is not None:
        parts.append(fmt.t("plan.units", product=plan.basal.product, units=_units(plan.basal.units, fmt)))
    if plan.prandial:
        doses = ", ".join(
            f"{fmt.t('treatment.meal.' + meal)} {_units(units, fmt)} U" for meal, units in plan.prandial.items()
        )
        parts.append(fmt.t("plan.prandial", product=plan.prandial_product or fmt.t("plan.rapid"), doses=doses))
    if plan.metformin_mg is not None:
        parts.append(fmt.t("plan.metformin", mg=plan.metformin_mg))
    return " · ".join(parts) if parts else fmt.t("treatment." + plan.treatment)


def plan_marks(plans: Sequence[treatment.Plan], fmt: Formatter) -> list[tuple[dt.datetime, str]]:
    """(when it came into force, "plan v3: NPH 12 U") of each version, oldest first; the chart keeps those of its
    days."""
    return [
        (plan.created_at, fmt.t("chart.plan_change", version=plan.version, plan=plan_words(plan, fmt)))
        for plan in sorted(plans, key=lambda p: p.version)
        if plan.created_at is not None
    ]


# --- the measurements section ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightView:
    latest_kg: float | None
    latest_day: dt.date | None
    gain_kg: float | None  # since the pre-pregnancy weight
    assessment: weight_gain.Assessment | None
    flag: str | None  # the informational flag's words, when the gain is out of range
    recommended: str | None  # the recommended ranges in words (with a BMI)


@dataclass(frozen=True)
class MeasuresView:
    ketone: str | None
    ketone_at: dt.datetime | None
    pressures: list[asyncpg.Record]
    weight: WeightView
    height_cm: float | None
    pre_pregnancy_weight_kg: float | None
    can_edit: bool  # the clinician may set the height and pre-pregnancy weight (the enrolment's roles), not archived
    pressure_days: int = PRESSURE_DAYS


def _signed(value: float, fmt: Formatter) -> tuple[str, str]:
    """(sign, magnitude) of a gain: "+", "8.5" or "−", "1.0"."""
    return ("+" if value >= 0 else "−"), fmt.num(abs(value), 1)


def _range(low: float, high: float, fmt: Formatter, digits: int = 1) -> str:
    return f"{fmt.num(low, digits)}–{fmt.num(high, digits)}"


def _total(kg: tuple[float, float], fmt: Formatter) -> str:
    """A total as the IOM writes it: 11.5–16 kg, 7–11.5 kg."""
    return "–".join(_units(v, fmt) for v in kg)


def gestational_day(due_date: dt.date, day: dt.date) -> int:
    """Days of amenorrhoea on ``day`` (the due date is day 280)."""
    return patients.PREGNANCY_DAYS - (due_date - day).days


def weight_view(loaded: Loaded, due_date: dt.date, zone: dt.tzinfo, fmt: Formatter) -> WeightView:
    days = [(row["measured_at"].astimezone(zone).date(), float(row["value"])) for row in loaded.weights]
    if not days:
        return WeightView(None, None, None, None, None, None)
    latest_day, latest_kg = days[-1]
    before = loaded.pre_pregnancy_weight_kg
    gain = latest_kg - before if before is not None else None
    series = [(float(gestational_day(due_date, d)), kg) for d, kg in days if gestational_day(due_date, d) >= 0]
    found = weight_gain.assess(loaded.height_cm, before, series)
    flag = recommended = None
    if found is not None:
        cat = found.category
        ga = fmt.ga(due_date, latest_day)
        if found.weeks <= weight_gain.FIRST_TRIMESTER_WEEKS:
            recommended = fmt.t(
                "measures.weight.recommended_first",
                total=_total(cat.total_kg, fmt),
                high=fmt.num(weight_gain.FIRST_TRIMESTER_KG[1], 1),
            )
            so_far = f"≤ {fmt.num(found.expected_kg[1], 1)}"
        else:
            so_far = _range(*found.expected_kg, fmt)
            recommended = fmt.t(
                "measures.weight.recommended_value",
                total=_total(cat.total_kg, fmt),
                rate=_range(*cat.weekly_kg, fmt, 2),
                so_far=so_far,
                ga=ga,
            )
        if found.flagged:
            sign, magnitude = _signed(found.gain_kg, fmt)
            flag = fmt.t(
                f"measures.flag.{found.status}.{found.reason}",
                sign=sign,
                gain=magnitude,
                ga=ga,
                so_far=so_far,
                rate=fmt.num(found.rate_kg_per_week or 0.0, 2),
                range=_range(*cat.weekly_kg, fmt, 2),
            )
    return WeightView(latest_kg, latest_day, gain, found, flag, recommended)


def ketone_words(row: asyncpg.Record | None, fmt: Formatter) -> str | None:
    if row is None:
        return None
    if row["urine"] is not None:
        return fmt.t("measures.ketone.urine", grade=row["urine"])
    return fmt.t("measures.ketone.blood", value=fmt.num(float(row["value"]), 1))


def measures_view(loaded: Loaded, due_date: dt.date, zone: dt.tzinfo, fmt: Formatter, who: Clinician) -> MeasuresView:
    return MeasuresView(
        ketone=ketone_words(loaded.ketone, fmt),
        ketone_at=loaded.ketone["measured_at"] if loaded.ketone is not None else None,
        pressures=loaded.pressures,
        weight=weight_view(loaded, due_date, zone, fmt),
        height_cm=loaded.height_cm,
        pre_pregnancy_weight_kg=loaded.pre_pregnancy_weight_kg,
        can_edit=who.role in CLINIC_ROLES and not loaded.archived,
    )


def page_context(loaded: Loaded, due_date: dt.date, zone: dt.tzinfo, fmt: Formatter, who: Clinician) -> dict[str, Any]:
    """What ``_measurements.html`` reads from the patient page's context."""
    return {"measures": measures_view(loaded, due_date, zone, fmt, who)}


# --- the height and pre-pregnancy weight --------------------------------------------------------------------------


def body_number(text: str, name: str, fmt: Formatter) -> float | None:
    """A height or weight as typed ("165", "62,5"; empty: not known), or a 422 naming the field and its range."""
    text = text.strip()
    if not text:
        return None
    (low, high), unit = _BOUNDS[name]
    typed = parse_decimal(text)
    value = float(typed) if typed is not None else None
    if value is None or not low <= value <= high:
        raise web.PageError(
            422,
            "measures.body.error",
            field=fmt.t("field." + name),
            value=text[:20],
            low=fmt.num(low),
            high=fmt.num(high),
            unit=unit,
        )
    return value


@router.post("/patients/{patient_id}/body", response_model=None)
async def set_body(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    """Set (or clear) the height and pre-pregnancy weight from the measurements section, audited as a change of
    the record with each field's value before and after."""
    form = await web.form_of(request, who)
    require_clinic_role(who)
    fmt = web.formatter(who)
    db = web.pool(request)
    found = await patients.patient_of_teams(db, patient_id, who.team_ids)
    if found is None:
        raise web.PageError(404, "error.not_found")
    if found.archived:
        raise web.PageError(409, "error.archived")
    after = {name: body_number(web.field(form, name), name, fmt) for name in BODY_FIELDS}
    before = {name: getattr(found, name) for name in BODY_FIELDS}
    changed = [name for name in BODY_FIELDS if before[name] != after[name]]
    back = f"/patients/{patient_id}#measurements"
    if not changed:
        await sessions.flash(db, who, "patient.edit.unchanged")
        return web.redirect(back)
    detail = {"before": {k: before[k] for k in changed}, "after": {k: after[k] for k in changed}}
    async with db.acquire() as conn, conn.transaction():
        try:
            await patients.update_patient(conn, patient_id, after, actor=who.actor, detail=detail)
        except SettingsError:  # archived meanwhile
            raise web.PageError(409, "error.archived") from None
    await sessions.flash(db, who, "patient.edit.saved")
    return web.redirect(back)
