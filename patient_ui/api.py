"""The patient's own API, authenticated by her phone app's device token: ``GET|PATCH /api/v1/me`` (her name,
language, unit, targets and the treatment plan in force, dose by dose), ``GET /api/v1/me/readings`` (her readings
of every device, judged against her targets exactly as the dashboard judges them) and ``GET /api/v1/me/measurements``
(her insulin doses, ketones, weights and blood pressures). Readings and measurements are sent through the device
contract that exists (``POST /api/v1/readings``) with the same token.

Only a token of kind ``app`` opens these routes: a meter's or an uploader's token is a credential typed into a
device by the team, not the patient's key to her record. The patient is the token's, never a parameter, so a
token reaches nothing of another patient; a revoked token is refused (403) on its next request."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import uuid
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from alerts import profiles as P
from alerts.cohort import PROFILE
from clinician_ui import glycaemia
from patient_ui import queries
from telemon import audit, treatment
from telemon.auth import AppDevice, app_device, pool
from telemon.pagination import cursor_instant, cursor_int, decode_cursor, envelope, limit_param
from telemon.periods import END, EPOCH, bound_instant, parse_bound

router = APIRouter(prefix="/api/v1", tags=["patient app"])

# The unit a patient reads before she chooses one in the app, after her guideline's own practice: French
# diabetology writes glucose in g/L (targets 0.92 / 1.20 g/L), NICE in mmol/L, the ADA in mg/dL.
PROFILE_UNIT = {"FR": "g/L", "NICE": "mmol/L", "ADA": "mg/dL"}
LANGUAGES = ("fr", "en")


@dataclass(frozen=True)
class Me:
    """The patient a valid app token belongs to."""

    device_id: str
    patient_id: uuid.UUID
    name: str
    language: str
    time_zone: str
    profile: str
    treatment: str
    target_overrides: Any
    due_date: dt.date
    delivery_date: dt.date | None
    archived: bool

    @property
    def actor(self) -> str:
        return f"device:{self.device_id}"

    @property
    def targets(self) -> glycaemia.Targets:
        return glycaemia.targets_for(self.profile, self.treatment, self.target_overrides)


async def me(device: AppDevice = Depends(app_device), db: asyncpg.Pool = Depends(pool)) -> Me:
    """The patient of the app's token (``telemon.auth.app_device`` refuses any other token)."""
    row = await db.fetchrow(queries.PATIENT_OF_APP, device.patient_id)
    if row is None:  # she was removed between the two reads
        raise HTTPException(status_code=401, detail="unknown device token")
    return Me(
        device_id=device.device_id,
        patient_id=row["patient_id"],
        name=row["display_name"],
        language=row["language"],
        time_zone=row["time_zone"],
        profile=row["profile"],
        treatment=row["treatment"],
        target_overrides=row["target_overrides"],
        due_date=row["due_date"],
        delivery_date=row["delivery_date"],
        archived=row["archived_at"] is not None,
    )


def _number(value: float) -> float | None:
    return None if math.isnan(value) else value


def basal_slot(time: str) -> str:
    """The device contract's slot of a basal injection at ``time`` (HH:MM, the plan's): the meal it is taken with,
    else bedtime (an evening basal, 21:00–22:30, is the usual GDM regimen)."""
    hour = int(time[:2]) + int(time[3:5]) / 60
    if 4 <= hour < 10.5:
        return "breakfast"
    if 10.5 <= hour < 15.5:
        return "lunch"
    if 15.5 <= hour < 20.5:
        return "dinner"
    return "bedtime"


def plan_out(plan: treatment.Plan | None) -> dict[str, Any] | None:
    """The plan in force as the app pre-fills a dose: one entry per injection of the day, with its slot (the device
    contract's), the insulin, the product and the units prescribed."""
    if plan is None:
        return None
    doses = []
    if plan.basal is not None:
        basal = plan.basal
        doses.append(
            {"slot": basal_slot(basal.time), "insulin": "basal", "product": basal.product, "units": basal.units,
             "time": basal.time}
        )  # fmt: skip
    for meal, units in plan.prandial.items():
        doses.append({"slot": meal, "insulin": "rapid", "product": plan.prandial_product, "units": units, "time": None})
    return {
        "version": plan.version,
        "treatment": plan.treatment,
        "metformin_mg": plan.metformin_mg,
        "metformin_times": list(plan.metformin_times),
        "doses": doses,
        "instruction": plan.instruction,
        "since": None if plan.created_at is None else _iso(plan.created_at),
    }


def me_out(who: Me, plan: treatment.Plan | None) -> dict[str, Any]:
    targets = who.targets
    usual = P.PROFILES[PROFILE[who.profile]].usual_post
    return {
        "name": who.name,
        "language": who.language,
        "unit": PROFILE_UNIT[who.profile],
        "time_zone": who.time_zone,
        "profile": who.profile,
        "treatment": who.treatment,
        "due_date": who.due_date.isoformat(),
        "delivered": who.delivery_date is not None,
        "archived": who.archived,
        "device_id": who.device_id,
        # in target iff value < target; after a meal, the 1 h target up to ``one_hour_until_minutes`` after it,
        # else the 2 h one; a reading of unknown delay is judged against ``after_meal_usual``
        "targets_mgdl": {
            "fasting": targets.fasting,
            "one_hour": _number(targets.post_1h),
            "two_hours": _number(targets.post_2h),
        },
        "hypo_below_mgdl": targets.hypo,
        "after_meal_usual": "one_hour" if usual == "post_1h" and not math.isnan(targets.post_1h) else "two_hours",
        "one_hour_until_minutes": P.POST_1H_MAX_MINUTES,
        # the plan in force (null when none was written): what the app pre-fills when she records a dose
        "plan": plan_out(plan),
    }


@router.get(
    "/me", summary="The patient's own profile: name, language, unit, targets and treatment plan in force (app token)"
)
async def get_me(who: Me = Depends(me), db: asyncpg.Pool = Depends(pool)) -> dict[str, Any]:
    return me_out(who, await treatment.current_plan(db, who.patient_id))


class MePatch(BaseModel):
    language: Literal["fr", "en"]


@router.patch("/me", summary="Change the patient's language (app token)")
async def patch_me(body: MePatch, who: Me = Depends(me), db: asyncpg.Pool = Depends(pool)) -> dict[str, Any]:
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(queries.SET_LANGUAGE, who.patient_id, body.language)
        await audit.record(
            conn,
            actor=who.actor,
            action="patient.language",
            patient_id=who.patient_id,
            detail={"language": body.language},
        )
    return me_out(dataclasses.replace(who, language=body.language), await treatment.current_plan(db, who.patient_id))


async def _my_page(
    db: asyncpg.Pool,
    who: Me,
    query: str,
    action: str,
    *,
    from_: str | None,
    to: str | None,
    kind: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[asyncpg.Record], dict[str, str], list[Any] | None]:
    """One page of her rows of ``query`` (readings or measurements) in [from, to) (``telemon.periods``: a date is
    her local midnight), the kinds of her devices, and the next page's cursor; the read audited as ``action``."""
    start = bound_instant(parse_bound(from_, "from"), "from", who.time_zone) or EPOCH
    end = bound_instant(parse_bound(to, "to"), "to", who.time_zone) or END
    after_time, after_id = decode_cursor(cursor, cursor_instant, cursor_int) or (EPOCH - dt.timedelta(days=1), 0)
    async with db.acquire() as conn:
        rows = await conn.fetch(query, who.patient_id, start, end, after_time, after_id, limit + 1, kind)
        kinds = {r["id"]: r["kind"] for r in await conn.fetch(queries.DEVICE_KINDS, who.patient_id)}
        await audit.record(
            conn,
            actor=who.actor,
            action=action,
            patient_id=who.patient_id,
            detail={"from": start.isoformat(), "to": end.isoformat(), "count": min(len(rows), limit)},
        )
    last = rows[limit - 1] if len(rows) > limit else None
    return list(rows[:limit]), kinds, [last["measured_at"].isoformat(), last["id"]] if last else None


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def readings_out(rows: list[asyncpg.Record], who: Me, kinds: dict[str, str]) -> list[dict[str, Any]]:
    """Rows with their judgement and logbook slot, as the dashboard computes them (readings sent without a
    context placed by the engine's own inference, after-meal ones judged against the 1 h or the 2 h target)."""
    zone = ZoneInfo(who.time_zone)
    placed = glycaemia.placed_rows(rows, zone)
    judgements = glycaemia.judge_rows(who.targets, placed)
    out = []
    for row, judgement in zip(placed, judgements, strict=True):
        local = row["measured_at"].astimezone(zone)
        out.append(
            {
                "id": row["id"],
                "measured_at": _iso(row["measured_at"]),
                "local_time": local.isoformat(),
                "value_mgdl": row["value_mgdl"],
                "kind": row["kind"],
                "context": row["context"],
                "context_inferred": row["context_inferred"],
                "meal": row["meal"],
                "minutes_after_meal": row["minutes_after_meal"],
                "flags": list(row["flags"]),
                "note": row["note"],
                "device_id": row["device_id"],
                "device_kind": kinds.get(row["device_id"]),
                "client_id": row["external_id"],
                "status": judgement.status,
                "target_mgdl": judgement.target,
                "slot": glycaemia.slot_of(row["context"], row["meal"], local.hour),
            }
        )
    return out


@router.get(
    "/me/readings",
    summary="The patient's readings of every device, judged against her targets (app token)",
)
async def get_my_readings(
    from_: str | None = Query(None, alias="from", description="inclusive: a date (her local midnight) or a timestamp"),
    to: str | None = Query(None, description="exclusive: a date (her local midnight) or a timestamp"),
    kind: Literal["smbg", "cgm"] | None = Query(None, description="meter readings (smbg) or sensor readings (cgm)"),
    limit: int = Depends(limit_param),
    cursor: str | None = Query(None),
    who: Me = Depends(me),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    """The list envelope ``{"items", "next"}``, oldest first. Each item carries ``status`` (``in``, ``above``,
    ``hypo``, ``none``: no target for its context, ``control``: control solution), the ``target_mgdl`` it was
    judged against and its logbook ``slot``; ``client_id`` is the id the sender gave it."""
    rows, kinds, position = await _my_page(
        db, who, queries.MY_READINGS, "me.readings.read", from_=from_, to=to, kind=kind, limit=limit, cursor=cursor
    )
    return envelope(readings_out(rows, who, kinds), position)


def measurements_out(rows: list[asyncpg.Record], who: Me, kinds: dict[str, str]) -> list[dict[str, Any]]:
    """Rows as the app shows them: the canonical value of each kind (insulin units, blood ketones in mmol/L,
    weight in kg) beside the value and unit as sent."""
    zone = ZoneInfo(who.time_zone)
    return [
        {
            "id": row["id"],
            "kind": row["kind"],
            "measured_at": _iso(row["measured_at"]),
            "local_time": row["measured_at"].astimezone(zone).isoformat(),
            "value": row["value"],
            "value_sent": row["value_raw"],
            "unit_sent": row["unit_raw"],
            "urine": row["urine"],
            "insulin": row["insulin"],
            "product": row["product"],
            "slot": row["slot"],
            "systolic": row["systolic"],
            "diastolic": row["diastolic"],
            "pulse": row["pulse"],
            "note": row["note"],
            "device_id": row["device_id"],
            "device_kind": kinds.get(row["device_id"]),
            "client_id": row["external_id"],
        }
        for row in rows
    ]


@router.get(
    "/me/measurements",
    summary="The patient's insulin doses, ketones, weights and blood pressures, of every device (app token)",
)
async def get_my_measurements(
    from_: str | None = Query(None, alias="from", description="inclusive: a date (her local midnight) or a timestamp"),
    to: str | None = Query(None, description="exclusive: a date (her local midnight) or a timestamp"),
    kind: Literal["insulin", "ketone", "weight", "blood_pressure"] | None = Query(None),
    limit: int = Depends(limit_param),
    cursor: str | None = Query(None),
    who: Me = Depends(me),
    db: asyncpg.Pool = Depends(pool),
) -> dict[str, Any]:
    """The list envelope ``{"items", "next"}``, oldest first. ``value`` is in the kind's canonical unit (insulin
    units, blood β-hydroxybutyrate mmol/L, weight kg; null for urine ketones and blood pressure), ``value_sent`` and
    ``unit_sent`` as the device sent them; ``client_id`` is the id the sender gave the item."""
    rows, kinds, position = await _my_page(
        db,
        who,
        queries.MY_MEASUREMENTS,
        "me.measurements.read",
        from_=from_,
        to=to,
        kind=kind,
        limit=limit,
        cursor=cursor,
    )
    return envelope(measurements_out(rows, who, kinds), position)
