"""The patient page (logbook, charts, alerts, notes, changes) and what a clinician does there."""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from alerts import actions, messages
from alerts.evidence import FACTS
from clinician_ui import charts, conversation, dose_review_page, measurements, postpartum, queries, sessions, web
from clinician_ui import glycaemia as G
from clinician_ui.alert_groups import actor_words, page_cursor, patient_alerts
from clinician_ui.i18n import THRESHOLD_RULES, Formatter, number
from clinician_ui.sessions import Clinician
from clinician_ui.triage import SNOOZE_CHOICES
from telemon import audit, patients, record_queries, units
from telemon import treatment as treatment_plans
from telemon.db import Conn

router = APIRouter(include_in_schema=False)

LOGBOOK_DAYS = 14
RESOLVED_SHOWN = 30  # alert history: a page of the most recent, with a link to the older ones
OPEN_SHOWN_PER_RULE = 10  # open alerts shown per rule (with the number of the others)
NOTES_SHOWN = 50
REFUSALS_DAYS = 7  # a device's refused uploads are shown for the last week
HISTORY_SHOWN = 30
EVIDENCE_READINGS_SHOWN = 12
HISTORY_ACTIONS = [
    "patient.update",
    "patient.review",
    "patient.delivery",
    "postpartum.test",
    "note.add",
    "alert.acknowledge",
    "alert.snooze",
    "alert.resolve",
]
TARGET_LIMITS_MGDL = (60.0, 250.0)  # a target outside is a typing error
LIVE_HEADER = "x-telemon-live"  # the page's own live refresh: audited as patient.refresh, not as a new view


async def _patient(
    db: Conn | asyncpg.Pool, who: Clinician, patient_id: uuid.UUID, *, writing: bool = False
) -> asyncpg.Record:
    """The patient if she is one of the clinician's teams'; ``writing``: and not archived (read-only then)."""
    row: asyncpg.Record | None = await db.fetchrow(record_queries.PATIENT, patient_id, list(who.team_ids))
    if row is None:
        raise web.PageError(404, "error.not_found")
    if writing and row["archived_at"] is not None:
        raise web.PageError(409, "error.archived")
    return row


@dataclass(frozen=True)
class EvidenceView:
    readings: list[tuple[dt.datetime, float]]
    more: int
    facts: list[tuple[str, str]]


def _fact(key: str, value: Any, fmt: Formatter, zone: ZoneInfo) -> str:
    """One fact of an evidence, formatted by its kind (alerts.evidence)."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        kind = FACTS.get(key)
        if kind == "glucose":
            return fmt.g(float(value))
        if kind == "percent":
            return fmt.pct(float(value), 1)
        if kind == "instant":
            return fmt.when(dt.datetime.fromtimestamp(value, dt.UTC), zone)
        if kind == "seconds":
            return f"{fmt.num(value / 60, 0)} min"
        return fmt.num(value, 0 if isinstance(value, int) or float(value).is_integer() else 2)
    return str(value)


def evidence_view(
    evidence: Mapping[str, Any] | None, fmt: Formatter, zone: ZoneInfo, rule: str | None = None
) -> EvidenceView:
    evidence = evidence or {}
    values = list(evidence.get("values_mgdl") or [])
    times = list(evidence.get("measured_at") or [])
    pairs = [
        (dt.datetime.fromtimestamp(t, dt.UTC).astimezone(zone), float(v))
        for t, v in zip(times, values, strict=False)
        if isinstance(t, int | float) and isinstance(v, int | float)
    ]
    facts: list[tuple[str, str]] = []
    for key, value in evidence.items():
        if FACTS.get(key) in ("readings", "hidden") or isinstance(value, dict | list) or value is None:
            continue
        # a hypoglycaemia's 54 mg/dL is a threshold of danger, not a target the patient aims at
        label = messages.fact_label(
            "threshold_mgdl" if key == "target_mgdl" and rule in THRESHOLD_RULES else key, fmt.lang
        )
        facts.append((label, _fact(key, value, fmt, zone)))
    return EvidenceView(pairs[-EVIDENCE_READINGS_SHOWN:], max(0, len(pairs) - EVIDENCE_READINGS_SHOWN), facts)


@dataclass(frozen=True)
class Change:
    at: dt.datetime
    who: str
    what: str


def _target_text(fmt: Formatter, value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{target_number(float(value), fmt.unit, fmt.lang)}\u00a0{fmt.unit}"
    return fmt.t("patient.target.default", value="—")


def target_number(value_mgdl: float, unit: str, lang: str) -> str:
    """A target as the settings form and the change history show it: in ``unit`` with the unit's usual decimals,
    or with up to three more when that is the exact value it was entered as (5.25 mmol/L stays 5.25; 90 mg/dL
    shows as 5.0 mmol/L, the nearest). A target typed in a unit is stored as :func:`telemon.units.exact_mgdl` of
    it, so the entered value comes back exactly."""
    digits = units.DIGITS[unit]
    exact = Decimal(repr(value_mgdl)) / units.DECIMAL_TO_MGDL[unit]
    for places in range(digits, digits + 4):
        shown = exact.quantize(Decimal(1).scaleb(-places))
        if units.exact_mgdl(float(shown), unit) == value_mgdl:
            return number(float(shown), places, lang)
    return number(float(exact), digits, lang)


def describe_change(action: str, detail: Mapping[str, Any] | None, fmt: Formatter) -> str:
    """One line of the patient's change history, in the clinician's language and unit."""
    detail = detail or {}
    if action == "patient.update":
        before, after = detail.get("before") or {}, detail.get("after") or {}
        parts: list[str] = []
        for name, new in after.items():
            old = before.get(name)
            if name == "target_overrides":
                old, new = old or {}, new or {}
                for key in ("fasting", "post_1h", "post_2h"):
                    if old.get(key) != new.get(key):
                        parts.append(
                            f"{fmt.t('patient.target.' + key)}: {_target_text(fmt, old.get(key))} → "
                            f"{_target_text(fmt, new.get(key))}"
                        )
            elif name == "treatment":
                parts.append(
                    f"{fmt.t('field.treatment')}: {fmt.t('treatment.' + str(old))} → {fmt.t('treatment.' + str(new))}"
                )
            else:
                shown = ["—" if v is None else v for v in (old, new)]  # a value not known (cleared, or never set)
                parts.append(f"{fmt.t('field.' + name)}: {shown[0]} → {shown[1]}")
        return fmt.t("action.patient.update", fields="; ".join(parts))
    if action == "patient.delivery":
        return fmt.t("action.patient.delivery", date=str(detail.get("date", "")))
    applied = detail.get("applied")
    if action == "alert.resolve" and isinstance(applied, Mapping):
        return fmt.t("action.alert.applied", version=applied.get("plan_version", "?"))
    if action.startswith("alert."):
        return fmt.t("action." + action, rule=fmt.rule(str(detail.get("rule", ""))))
    return fmt.t("action." + action)


def _actor_ids(rows: list[asyncpg.Record]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for row in rows:
        for column in ("acknowledged_by", "snoozed_by", "resolved_by"):
            actor = row[column]
            if actor and actor.startswith("clinician:"):
                try:
                    found.add(uuid.UUID(actor.removeprefix("clinician:")))
                except ValueError:
                    continue
    return found


def _days(last: dt.date) -> list[dt.date]:
    return [last - dt.timedelta(days=i) for i in range(LOGBOOK_DAYS)]  # newest first


@router.get("/patients/{patient_id}")
async def patient_page(
    patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)
) -> HTMLResponse:
    fmt = web.formatter(who)
    async with web.connection(request) as db:
        p = await _patient(db, who, patient_id)
        zone = ZoneInfo(p["time_zone"])
        today = fmt.now.astimezone(zone).date()
        until_text = request.query_params.get("until", "")
        try:
            last_day = min(dt.date.fromisoformat(until_text), today) if until_text else today
        except ValueError:
            last_day = today
        days = _days(last_day)
        start = dt.datetime.combine(days[-1], dt.time(0), tzinfo=zone)
        end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
        meter_rows = await db.fetch(record_queries.METER_READINGS, patient_id, start, end)
        cgm_row = await db.fetchrow(record_queries.CGM_READINGS, patient_id, start, end, p["time_zone"])
        alerts_before = page_cursor(request.query_params.get("alerts_before"))
        alert_rows = await db.fetch(
            queries.PATIENT_ALERTS, patient_id, OPEN_SHOWN_PER_RULE, RESOLVED_SHOWN, alerts_before
        )
        names = {
            f"clinician:{r['id']}": r["display_name"]
            for r in await db.fetch(queries.CLINICIAN_NAMES, list(_actor_ids(alert_rows)))
        }
        names |= await actor_words(db, alert_rows, fmt)
        notes = await db.fetch(queries.PATIENT_NOTES, patient_id, NOTES_SHOWN)
        since = fmt.now - dt.timedelta(days=REFUSALS_DAYS)
        refusals = await db.fetch(queries.PATIENT_DEVICE_REFUSALS, patient_id, since)
        history_rows = await db.fetch(queries.PATIENT_HISTORY, patient_id, HISTORY_ACTIONS, HISTORY_SHOWN)
        # the page's own live refresh is a read too, recorded apart so that it is not counted as a new visit
        live_refresh = request.headers.get(LIVE_HEADER) == "1"
        action = "patient.refresh" if live_refresh else "patient.view"
        await audit.record(db, actor=who.actor, action=action, patient_id=patient_id)
        talk = await conversation.conversation(db, request, who, p, who.language)  # marks her messages read
        current_plan = await treatment_plans.current_plan(db, patient_id)
        after_birth = await postpartum.section(db, who, p, today)  # the postpartum test, once delivered
        applied = await dose_review_page.applied_versions(db, patient_id)
        record = await measurements.load(
            db, patient_id, start=start, end=end, now=fmt.now, due_date=p["due_date"],
            delivery_date=p["delivery_date"], zone=zone,
        )  # fmt: skip
    targets = G.targets_for(p["profile"], p["treatment"], p["target_overrides"])
    book = G.logbook(meter_rows, targets, zone, days, doses=record.doses)
    entries = sorted((e for d in book for c in d.cells.values() for e in c.entries), key=lambda e: e.local)
    assert cgm_row is not None
    cgm_t = np.asarray(cgm_row["t"], dtype=np.int64)
    cgm_v = np.asarray(cgm_row["v"], dtype=np.float64)
    cgm_minutes = np.asarray(cgm_row["local_minute"], dtype=np.int64)
    has_cgm = "cgm" in p["device_kinds"] or len(cgm_t) > 0
    period_s = (min(end, fmt.now) - start).total_seconds()
    tir = G.time_in_ranges(cgm_v, period_s) if len(cgm_v) else None
    chart = charts.glucose_chart(
        fmt=fmt,
        zone=zone,
        days=list(reversed(days)),
        meter=entries,
        cgm_t=cgm_t,
        cgm_v=cgm_v,
        targets=targets,
        cgm=has_cgm,
        plan_changes=measurements.plan_marks(record.plans, fmt),
    )
    shown_alerts = patient_alerts(alert_rows, RESOLVED_SHOWN)
    evidence = {a["id"]: evidence_view(a["evidence"], fmt, zone, a["rule"]) for a in alert_rows}
    dose_reviews = dose_review_page.views(alert_rows, current_plan, applied, fmt)
    history = [
        Change(h["at"], h["actor_name"] or h["actor"], describe_change(h["action"], h["detail"], fmt))
        for h in history_rows
    ]
    context = (
        {
            "p": p,
            "current_plan": current_plan,
            "zone": zone,
            "today": today,
            "last_day": last_day,
            "older": (days[-1] - dt.timedelta(days=1)).isoformat(),
            "newer": (last_day + dt.timedelta(days=LOGBOOK_DAYS)).isoformat() if last_day < today else None,
            "targets": targets,
            "logbook": book,
            "slots": G.SLOTS,
            "chart": chart,
            "has_cgm": has_cgm,
            "tir": tir,
            "tir_bar": charts.tir_bar(fmt, tir) if tir else None,
            "tir_segments": charts.TIR_SEGMENTS,
            "tir_label": lambda segment: charts.tir_label(fmt, segment),
            "tir_goal": lambda segment: charts.tir_goal(fmt, segment),
            "agp": charts.agp_chart(fmt, G.agp(cgm_v, cgm_minutes)) if len(cgm_v) else None,
            "open_groups": shown_alerts.open_groups,
            "resolved_alerts": shown_alerts.resolved,
            "older_alerts": shown_alerts.older,
            "alerts_paged": alerts_before is not None,
            "evidence": evidence,
            "dose_reviews": dose_reviews,
            "actor_names": names,
            "notes": notes,
            "refusals": refusals,
            "refusals_days": REFUSALS_DAYS,
            "history": history,
            "snooze_choices": SNOOZE_CHOICES,
            "profiles": patients.PROFILES,
            "treatments": patients.TREATMENTS,
            "target_value": lambda key: _target_field(p["target_overrides"], key, who.unit, who.language),
            "target_default": lambda key: _target_default(targets, key),
            "nan": math.isnan,
        }
        | talk
        | after_birth
    )
    context |= measurements.page_context(record, p["due_date"], zone, fmt, who)
    return web.render(request, "patient.html", context, who=who)


def _target_default(targets: G.Targets, key: str) -> float:
    return dict(zip(("fasting", "post_1h", "post_2h"), targets.defaults, strict=True))[key]


def _target_field(overrides: Mapping[str, Any] | None, key: str, unit: str, lang: str) -> str:
    """The override of ``key`` in the clinician's unit and decimal mark for the edit form (empty: the profile's
    target). A save compares what comes back with this text to tell a changed target from an untouched one."""
    value = (overrides or {}).get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return ""
    return target_number(float(value), unit, lang)


# --- actions -----------------------------------------------------------------------------------------------------


async def _done(request: Request, who: Clinician, message: str, default: str, form: Mapping[str, Any]) -> Response:
    await sessions.flash(web.pool(request), who, message)
    return web.redirect(web.safe_next(web.field(form, "next"), default))


FLASH_OF = {
    "acknowledge": "alert.acknowledged_flash",
    "snooze": "alert.snoozed_flash",
    "resolve": "alert.resolved_flash",
}
MAX_ALERTS_AT_ONCE = 500


async def _act_on(db: asyncpg.Pool, who: Clinician, action: str, found: list[asyncpg.Record], hours: int) -> int:
    """Apply ``action`` to the alerts ``found`` (already scoped to the clinician's teams) in one transaction,
    through the alert store (which notifies), each recorded in the audit trail; returns how many changed."""
    changed = 0
    chosen = next(a for a in actions.ACTIONS if a == action)
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours) if chosen == "snooze" else None
    async with db.acquire() as conn, conn.transaction():
        for alert in found:
            if await actions.act(conn, alert["id"], chosen, who.actor, until=until) is not None:
                changed += 1
    return changed


MAX_ALERT_ID = 2**63 - 1  # alert ids are bigint: anything larger names no alert


def _alert_id(text: str) -> bool:
    """Whether a form value can be an alert id (ASCII digits within bigint; ``"²".isdigit()`` is true too)."""
    return text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_ALERT_ID


@router.post("/alerts/{action}", response_model=None)
async def act_on_alerts(action: str, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    """Acknowledge, snooze or resolve several alerts at once (a rule's alerts of one patient)."""
    form = await web.form_of(request, who)
    if action not in FLASH_OF:
        raise web.PageError(404, "error.not_found")
    values = list(form.getlist("alert_id")) if hasattr(form, "getlist") else []
    for packed in form.getlist("alert_ids") if hasattr(form, "getlist") else []:  # a button's "12 13 14"
        values += packed.split() if isinstance(packed, str) else []
    ids = sorted({int(v) for v in values if isinstance(v, str) and _alert_id(v)})[:MAX_ALERTS_AT_ONCE]
    db = web.pool(request)
    found = await db.fetch(queries.ALERTS_IN_TEAMS, ids, list(who.team_ids)) if ids else []
    if not found:
        raise web.PageError(404, "error.not_found")
    hours = dict(SNOOZE_CHOICES).get(web.field(form, "for"), 4)
    changed = await _act_on(db, who, action, found, hours)
    return await _done(request, who, FLASH_OF[action] if changed else "alert.not_open", "/", form)


@router.post("/alerts/{alert_id}/{action}", response_model=None)
async def alert_action(
    alert_id: int, action: str, request: Request, who: Clinician = Depends(web.clinician)
) -> Response:
    form = await web.form_of(request, who)
    if action not in FLASH_OF or not 1 <= alert_id <= MAX_ALERT_ID:
        raise web.PageError(404, "error.not_found")
    db = web.pool(request)
    found = await db.fetchrow(queries.ALERT_IN_TEAMS, alert_id, list(who.team_ids))
    if found is None:
        raise web.PageError(404, "error.not_found")
    hours = dict(SNOOZE_CHOICES).get(web.field(form, "for"), 4)
    changed = await _act_on(db, who, action, [found], hours)
    return await _done(request, who, FLASH_OF[action] if changed else "alert.not_open", "/", form)


@router.post("/patients/{patient_id}/review", response_model=None)
async def review(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    db = web.pool(request)
    await _patient(db, who, patient_id, writing=True)
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(queries.INSERT_REVIEW, patient_id, who.id)
        await audit.record(conn, actor=who.actor, action="patient.review", patient_id=patient_id)
    return await _done(request, who, "patient.reviewed_flash", f"/patients/{patient_id}", form)


@router.post("/patients/{patient_id}/notes", response_model=None)
async def add_note(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    db = web.pool(request)
    await _patient(db, who, patient_id, writing=True)
    body = web.field(form, "body")
    if not 1 <= len(body) <= 4000:
        raise web.PageError(422, "error.invalid", detail="1–4000")
    async with db.acquire() as conn, conn.transaction():
        note_id = await conn.fetchval(queries.INSERT_NOTE, patient_id, who.id, body)
        await audit.record(conn, actor=who.actor, action="note.add", patient_id=patient_id, detail={"note_id": note_id})
    return await _done(request, who, "patient.notes.saved", f"/patients/{patient_id}#notes", form)


# A target as people type it: a decimal point or a decimal comma (French), at most 4 decimals.
TARGET_TEXT = re.compile(r"\d{1,3}(?:[.,]\d{1,4})?")


def _target_decimal(text: str) -> Decimal | None:
    """The number typed (None: empty), or a 422 naming the text. Spaces around it are allowed."""
    text = text.strip().replace("\u202f", "").replace("\u00a0", "")
    if not text:
        return None
    if not TARGET_TEXT.fullmatch(text):
        raise web.PageError(422, "error.invalid", detail=text[:20])
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise web.PageError(422, "error.invalid", detail=text[:20]) from None


def _parse_target(text: str, unit: str) -> float | None:
    """A target typed in ``unit``, in mg/dL (None: empty, i.e. the profile's own): the exact value of what was
    typed (telemon.units.exact_mgdl), so that 5.3 mmol/L stays 5.3 mmol/L and compares with readings as NICE's
    "below 5.3 mmol/L" means, and shows again as 5.3."""
    typed = _target_decimal(text)
    if typed is None:
        return None
    mgdl = units.exact_mgdl(float(typed), unit)
    low, high = TARGET_LIMITS_MGDL
    if not math.isfinite(mgdl) or not low <= mgdl <= high:
        raise web.PageError(422, "error.invalid", detail=text.strip()[:20])
    return mgdl


def _submitted_targets(form: Any, stored: Mapping[str, Any] | None, unit: str, lang: str) -> dict[str, float]:
    """The targets of a settings form. A field that comes back with the number the form showed (decimal point or
    comma alike) keeps the stored value exactly: the form shows 90 mg/dL as "5.0" mmol/L, and a save that did not
    touch it must not turn it into 5.0 mmol/L (90.08 mg/dL). Only a field the clinician changed is parsed anew."""
    stored = stored or {}
    overrides: dict[str, float] = {}
    for key in ("fasting", "post_1h", "post_2h"):
        text = web.field(form, f"target_{key}")
        old = stored.get(key)
        shown = _target_field(stored, key, unit, lang)
        if shown and isinstance(old, int | float) and _target_decimal(text) == _target_decimal(shown):
            overrides[key] = old
            continue
        value = _parse_target(text, unit)
        if value is not None:
            overrides[key] = value
    return overrides


@router.post("/patients/{patient_id}/settings", response_model=None)
async def settings(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    if not who.can_prescribe:
        raise web.PageError(403, "error.forbidden")
    db = web.pool(request)
    p = await _patient(db, who, patient_id, writing=True)
    profile, treatment = web.field(form, "profile"), web.field(form, "treatment")
    per_day = web.field(form, "readings_per_day")
    if profile not in patients.PROFILES or treatment not in patients.TREATMENTS:
        raise web.PageError(422, "error.invalid", detail=f"{profile} {treatment}")
    if not per_day.isdigit() or not 1 <= int(per_day) <= 12:
        raise web.PageError(422, "error.invalid", detail=per_day)
    if treatment != p["treatment"]:
        try:
            await treatment_plans.check_treatment_change(db, patient_id, treatment)
        except patients.FieldError:
            raise web.PageError(409, "treatment.follows_plan") from None
    # the unit the form was shown in (the clinician may have changed preferences in another tab since)
    form_unit = web.field(form, "target_unit")
    overrides = _submitted_targets(
        form, p["target_overrides"], form_unit if form_unit in units.UNITS else who.unit, who.language
    )
    before = {
        "profile": p["profile"],
        "treatment": p["treatment"],
        "readings_per_day": p["readings_per_day"],
        "target_overrides": dict(p["target_overrides"] or {}),
    }
    after = {
        "profile": profile,
        "treatment": treatment,
        "readings_per_day": int(per_day),
        "target_overrides": overrides,
    }
    changed = [k for k in before if before[k] != after[k]]
    if not changed:
        return await _done(request, who, "patient.edit.unchanged", f"/patients/{patient_id}", form)
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(queries.UPDATE_PATIENT_SETTINGS, patient_id, profile, treatment, int(per_day), overrides)
        detail = {"before": {k: before[k] for k in changed}, "after": {k: after[k] for k in changed}}
        await audit.record(conn, actor=who.actor, action="patient.update", patient_id=patient_id, detail=detail)
    return await _done(request, who, "patient.edit.saved", f"/patients/{patient_id}", form)


@router.post("/patients/{patient_id}/delivery", response_model=None)
async def delivery(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    db = web.pool(request)
    p = await _patient(db, who, patient_id, writing=True)
    text = web.field(form, "delivery_date")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise web.PageError(422, "error.invalid", detail=text) from None
    today = dt.datetime.now(ZoneInfo(p["time_zone"])).date()
    if not p["due_date"] - dt.timedelta(days=patients.PREGNANCY_DAYS) <= day <= today:
        raise web.PageError(422, "error.invalid", detail=text)
    async with db.acquire() as conn, conn.transaction():
        await patients.record_delivery(conn, patient_id, day, actor=who.actor)
    return await _done(request, who, "patient.delivery.saved", f"/patients/{patient_id}", form)
