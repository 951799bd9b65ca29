"""Dose review suggestions under test: a patient on a plan, and a ``dose_review`` alert as the engine stores it
(code and typed params, the fasting readings as evidence), written straight into the alerts table."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from alerts import titration
from alerts.engine import Engine
from telemon import treatment

INSERT = """
INSERT INTO alerts (patient_id, rule, episode_key, severity, code, params, evidence)
VALUES ($1, $2, $3, 'warning', $4, $5, $6)
RETURNING id
"""


async def nph_plan(db: asyncpg.Pool, patient_id: uuid.UUID, units: float = 10) -> treatment.Plan:
    """Version 1 (or the next): NPH ``units`` U at 22:00, with a breakfast and a dinner dose of NovoRapid."""
    async with db.acquire() as conn:
        return await treatment.new_version(
            conn,
            patient_id,
            treatment.Plan(
                "insulin",
                basal=treatment.Basal("NPH", units, "22:00"),
                prandial_product="NovoRapid",
                prandial={"breakfast": 4, "dinner": 6},
                instruction="Inject at 22:00.",
            ),
            actor="clinician:test",
        )


def params(
    *, slot: str = "basal", current: float = 10, suggested: float = 12, plan_version: int = 1, product: str = "NPH"
) -> dict[str, Any]:
    return {
        "slot": slot,
        "product": product,
        "current_units": current,
        "suggested_units": suggested,
        "plan_version": plan_version,
        "protocol": titration.DEFAULT.as_json(),
        "days_above": 3,
        "days_window": 3,
        "days_required": 3,
        "target_mgdl": 95.0,
        "protocol_default": True,
        "source": titration.DEFAULT_SOURCE,
    }


def evidence(values_mgdl: tuple[float, ...] = (112.0, 118.0, 109.0)) -> dict[str, Any]:
    """The fasting readings of the last days, one a morning, newest last."""
    today = dt.datetime.now(dt.UTC).replace(hour=6, minute=30, second=0, microsecond=0)
    times = [(today - dt.timedelta(days=len(values_mgdl) - 1 - k)).timestamp() for k in range(len(values_mgdl))]
    return {"reading_ids": [], "values_mgdl": list(values_mgdl), "measured_at": times}


async def suggestion(
    db: asyncpg.Pool | asyncpg.Connection, patient_id: uuid.UUID, *, rule: str = "dose_review", **changes: Any
) -> int:
    """A ``dose_review`` alert (``rule`` another: an alert of that rule with the same params)."""
    given = params(**changes)
    if given["suggested_units"] < given["current_units"]:  # a reduction names the hypoglycaemia that preceded it
        yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        given |= {
            "threshold_mgdl": 70.0,
            "hypo": {"mgdl": 64.0, "at": yesterday.isoformat(), "local": yesterday.strftime("%Y-%m-%d %H:%M")},
        }
    code = f"dose_review.{'increase' if given['suggested_units'] > given['current_units'] else 'reduction'}"
    episode = f"{given['slot']}:{given['plan_version']}:{uuid.uuid4().hex[:6]}"
    alert_id: int = await db.fetchval(INSERT, patient_id, rule, episode, code, given, evidence())
    return alert_id


BACKDATED_PLAN = """
INSERT INTO treatment_plans (patient_id, version, treatment, basal_product, basal_units, basal_time, created_by,
                             created_at)
VALUES ($1, 1, 'insulin', 'NPH', $2, '22:00', 'clinician:test', now() - make_interval(days => $3))
"""
FASTING = """
INSERT INTO readings (patient_id, device_id, kind, device_time, value_raw, unit_raw, measured_at, value_mgdl, context,
                      source)
SELECT $1, $2, 'smbg', t, v, 'mg/dL', t, v, 'fasting', 'http' FROM unnest($3::timestamptz[], $4::float8[]) AS r(t, v)
"""


async def engine_suggestion(
    db: asyncpg.Pool, patient_id: uuid.UUID, device_id: str, *, units: float = 10, fasting_mgdl: float = 112.0
) -> int:
    """The real rule's suggestion: version 1 of the plan (NPH ``units`` U at 22:00) written four days ago (a version
    cannot be written in the past through telemon.treatment, so the row is set up directly), a fasting reading
    above target on each of the last three local days (today's a few minutes ago), and two evaluations of the engine
    three minutes apart (a stateful alert opens once confirmed). Returns the dose_review alert's id."""
    await db.execute(BACKDATED_PLAN, patient_id, units, 4)
    zone = ZoneInfo(await db.fetchval("SELECT time_zone FROM patients WHERE id = $1", patient_id))
    now = dt.datetime.now(dt.UTC)
    local = now.astimezone(zone)
    times = []
    for back in (2, 1, 0):
        at = dt.datetime.combine(local.date() - dt.timedelta(days=back), dt.time(7, 30), tzinfo=zone)
        times.append(min(at, now - dt.timedelta(minutes=10)) if back == 0 else at)
    await db.execute(FASTING, patient_id, device_id, times, [fasting_mgdl + k for k in range(3)])
    engine = Engine(db)
    await engine.evaluate([patient_id], now=(now - dt.timedelta(minutes=3)).timestamp())
    await engine.evaluate([patient_id], now=now.timestamp())
    alert_id: int | None = await db.fetchval(
        "SELECT id FROM alerts WHERE patient_id = $1 AND rule = 'dose_review' AND status = 'open'", patient_id
    )
    assert alert_id is not None, "the engine raised no dose review"
    return alert_id
