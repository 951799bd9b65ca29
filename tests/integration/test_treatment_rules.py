"""The treatment record's rules end to end: a plan written through telemon.treatment, readings and measurements sent
by a device over HTTP (with the noise of a real morning), the engine's incremental pass and a confirming pass, the
alerts stored with their params; applying the suggestion clears it; a team that turned suggestions off gets none."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from alerts import actions, rules, titration
from alerts.cohort import MEASUREMENT, SLOT, URINE
from alerts.engine import Engine
from alerts.load import load_cohort
from alerts.messages import render
from alerts.store import CONFIRM_S
from telemon import treatment
from telemon.app.services import Services
from tests.support.factories import Setup, patient_with_device

ZONE = ZoneInfo("Europe/Paris")
NPH_10 = treatment.Plan("insulin", basal=treatment.Basal("NPH", 10, "22:00"))


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _mornings(now: dt.datetime) -> list[dt.datetime]:
    """06:30 local on the day before yesterday, yesterday and today (today: earlier if it is not 06:30 yet)."""
    local = now.astimezone(ZONE)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    today = max(
        midnight, min(local.replace(hour=6, minute=30, second=0, microsecond=0), local - dt.timedelta(seconds=30))
    )
    return [today - dt.timedelta(days=2), today - dt.timedelta(days=1), today]


async def _send(client: httpx.AsyncClient, setup: Setup, items: list[dict[str, Any]]) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/readings", json={"readings": items}, headers={"Authorization": f"Bearer {setup.token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _morning_sync(now: dt.datetime) -> list[dict[str, Any]]:
    """Three fasting readings above the FR target (95 mg/dL), each followed by an in-target after-breakfast one and
    the evening's logged NPH; a reading without context in target, a negative urine ketone test, a weight, and a
    blood pressure of 165/112 this morning."""
    items: list[dict[str, Any]] = []
    for morning, fasting in zip(_mornings(now), (5.9, 6.2, 5.8), strict=True):  # mmol/L: 106, 112, 104 mg/dL
        items.append({"measured_at": _iso(morning), "value": fasting, "unit": "mmol/L", "context": "fasting"})
        after = morning + dt.timedelta(hours=2)
        if after < now:
            items.append({"measured_at": _iso(after), "value": 6.1, "unit": "mmol/L", "context": "after_meal",
                          "meal": "breakfast", "minutes_after_meal": 120})  # fmt: skip
        evening = morning - dt.timedelta(hours=8, minutes=30)  # 22:00 the day before
        items.append({"kind": "insulin", "measured_at": _iso(evening), "units": 10, "insulin": "basal",
                      "product": "NPH", "slot": "bedtime"})  # fmt: skip
    last = _mornings(now)[-1]
    items += [
        # without a context: 21:00 the day before, after dinner (a morning one would be taken as fasting)
        {"measured_at": _iso(last - dt.timedelta(hours=9, minutes=30)), "value": 92, "unit": "mg/dL"},
        {"kind": "ketone", "measured_at": _iso(last + dt.timedelta(seconds=10)), "urine": "negative"},
        {"kind": "weight", "measured_at": _iso(last + dt.timedelta(seconds=20)), "value": 71.8, "unit": "kg"},
        {"kind": "blood_pressure", "measured_at": _iso(last + dt.timedelta(seconds=25)), "systolic": 165,
         "diastolic": 112, "pulse": 84, "unit": "mmHg"},
    ]  # fmt: skip
    return items


async def _alerts(db: asyncpg.Pool, patient_id: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT rule, severity, status, episode_key, code, params, evidence, resolved_by FROM alerts"
        " WHERE patient_id = $1 ORDER BY id",
        patient_id,
    )


async def test_a_dose_review_and_an_urgent_blood_pressure_from_a_real_morning(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, treatment="diet", profile="FR")
    async with db.acquire() as conn:
        await treatment.new_version(conn, setup.patient_id, NPH_10, actor="clinician:test")
    now = dt.datetime.now(dt.UTC)
    sync = _morning_sync(now)
    receipt = await _send(client, setup, sync)
    assert receipt["rejected"] == [] and receipt["accepted"] == len(sync)
    assert (await _send(client, setup, sync))["duplicates"] == len(sync)  # the meter sends its memory again
    assert services.worker is not None
    await services.worker.drain()

    # the measurement is judged at once (not stateful); the suggestion waits for a confirming evaluation
    first = {a["rule"]: a for a in await _alerts(db, setup.patient_id)}
    assert first["blood_pressure_high"]["severity"] == "urgent"
    assert first["blood_pressure_high"]["code"] == "blood_pressure_high.severe"
    assert first["blood_pressure_high"]["params"]["systolic"] == 165
    assert "dose_review" not in first
    engine = Engine(db)
    await engine.evaluate([setup.patient_id], now=time.time() + CONFIRM_S)

    alerts = await _alerts(db, setup.patient_id)
    by_rule = {a["rule"]: a for a in alerts}
    review = by_rule["dose_review"]
    assert (review["severity"], review["status"], review["episode_key"], review["code"]) == (
        "warning",
        "open",
        "v1-increase",
        "dose_review.increase",
    )
    params = review["params"]
    assert {k: params[k] for k in ("slot", "product", "current_units", "suggested_units", "plan_version")} == {
        "slot": "basal",
        "product": "NPH",
        "current_units": 10.0,
        "suggested_units": 12.0,
        "plan_version": 1,
    }
    assert (params["days_above"], params["days_window"], params["protocol"]) == (3, 3, titration.DEFAULT.as_json())
    fasting_ids = await db.fetch(
        "SELECT id FROM readings WHERE patient_id = $1 AND context = 'fasting' ORDER BY measured_at", setup.patient_id
    )
    assert review["evidence"]["reading_ids"] == [r["id"] for r in fasting_ids]
    assert "10.0 U → 12.0 U" in render(review["code"], params, "en", "mmol/L")
    # the morning's noise raises nothing else: no ketones, no missing doses, no hypoglycaemia
    assert {a["rule"] for a in alerts} <= {
        "dose_review",
        "blood_pressure_high",
        "fasting_above_target",
        "consecutive_above_target",
    }
    assert sum(a["rule"] == "blood_pressure_high" for a in alerts) == 1

    # the suggestion applied: a new version with 12 U resolves it, and the next step waits for the new dose's days
    async with db.acquire() as conn:
        await treatment.new_version(
            conn,
            setup.patient_id,
            treatment.Plan("insulin", basal=treatment.Basal("NPH", 12, "22:00")),
            actor="clinician:test",
        )
    await engine.evaluate([setup.patient_id])
    await engine.evaluate([setup.patient_id], now=time.time() + CONFIRM_S)
    reviews = [a for a in await _alerts(db, setup.patient_id) if a["rule"] == "dose_review"]
    assert [(a["episode_key"], a["status"], a["resolved_by"]) for a in reviews] == [
        ("v1-increase", "resolved", "system")
    ]


async def test_a_team_that_turned_suggestions_off_gets_none(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, treatment="diet", profile="FR")
    async with db.acquire() as conn:
        await treatment.new_version(conn, setup.patient_id, NPH_10, actor="clinician:test")
        off = dataclasses.replace(titration.DEFAULT, suggestions_enabled=False)
        await titration.save(conn, setup.team_id, off, "clinician:test")
    await _send(client, setup, _morning_sync(dt.datetime.now(dt.UTC)))
    assert services.worker is not None
    await services.worker.drain()
    engine = Engine(db)
    await engine.evaluate([setup.patient_id], now=time.time() + CONFIRM_S)
    raised = [a["rule"] for a in await _alerts(db, setup.patient_id)]
    assert "dose_review" not in raised and "blood_pressure_high" in raised


async def test_a_dismissed_suggestion_stays_dismissed_until_the_plan_changes(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    """A diabetologist who dismisses "10 → 12 U" decided for that plan version: the next evaluations, the fasting
    readings still high, do not raise it again (a suggestion that comes back every minute teaches a team to
    ignore it); a new version of the plan may be judged anew."""
    setup = await patient_with_device(db, treatment="diet", profile="FR")
    async with db.acquire() as conn:
        await treatment.new_version(conn, setup.patient_id, NPH_10, actor="clinician:test")
    await _send(client, setup, _morning_sync(dt.datetime.now(dt.UTC)))
    assert services.worker is not None
    await services.worker.drain()
    engine = Engine(db)
    await engine.evaluate([setup.patient_id], now=time.time() + CONFIRM_S)
    (review,) = [a for a in await _alerts(db, setup.patient_id) if a["rule"] == "dose_review"]
    assert review["status"] == "open"
    alert_id = await db.fetchval(
        "SELECT id FROM alerts WHERE patient_id = $1 AND rule = 'dose_review'", setup.patient_id
    )
    async with db.acquire() as conn, conn.transaction():
        await actions.act(conn, alert_id, "resolve", "clinician:dr-martin")
    for later in (0, CONFIRM_S, 2 * CONFIRM_S):
        await engine.evaluate([setup.patient_id], now=time.time() + later)
    reviews = [a for a in await _alerts(db, setup.patient_id) if a["rule"] == "dose_review"]
    assert [(a["episode_key"], a["status"], a["resolved_by"]) for a in reviews] == [
        ("v1-increase", "resolved", "clinician:dr-martin")
    ]
    # a new version with another dose (the team chose 11 U): a new episode, judged on the days since
    async with db.acquire() as conn:
        await treatment.new_version(
            conn, setup.patient_id, treatment.Plan("insulin", basal=treatment.Basal("NPH", 11, "22:00")), actor="t"
        )
    await engine.evaluate([setup.patient_id], now=time.time() + CONFIRM_S)
    keys = [a["episode_key"] for a in await _alerts(db, setup.patient_id) if a["rule"] == "dose_review"]
    assert keys[0] == "v1-increase" and all(k != "v1-increase" for k in keys[1:])


async def test_the_cohort_loads_the_plan_the_protocol_the_measurements_and_the_postpartum_test(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, treatment="diet", profile="FR")
    other = await patient_with_device(db)  # no plan, no measurement: the empty record's values
    async with db.acquire() as conn:
        await treatment.new_version(conn, setup.patient_id, NPH_10, actor="clinician:test")
        await treatment.new_version(  # the same basal dose, a lunch dose added: neither is a change of a dose
            conn,
            setup.patient_id,
            treatment.Plan("insulin", basal=treatment.Basal("NPH", 10, "22:00"), prandial_product="NovoRapid",
                           prandial={"lunch": 4}),
            actor="clinician:test",
        )  # fmt: skip
        third = await treatment.new_version(
            conn,
            setup.patient_id,
            treatment.Plan("insulin", basal=treatment.Basal("Levemir", 12.5, "21:00"), prandial_product="NovoRapid",
                           prandial={"lunch": 4}),
            actor="clinician:test",
        )  # fmt: skip
        own = titration.Protocol(step_units=None, step_percent=10, window_days=5, days_required=4, max_step_units=2)
        await titration.save(conn, setup.team_id, own, "clinician:test")
        await conn.execute(
            "INSERT INTO postpartum_tests (patient_id, tested_on, test, hba1c_percent, classification, profile,"
            " source, recorded_by) VALUES ($1, current_date, 'hba1c', 5.4, 'normal', 'FR', 'test', 'clinician:test')",
            setup.patient_id,
        )
    now = dt.datetime.now(dt.UTC)
    await _send(
        client,
        setup,
        [
            {"kind": "insulin", "measured_at": _iso(now - dt.timedelta(hours=9)), "units": 12.5, "insulin": "basal",
             "product": "Levemir", "slot": "bedtime"},
            {"kind": "ketone", "measured_at": _iso(now - dt.timedelta(hours=2)), "urine": "++"},
            {"kind": "ketone", "measured_at": _iso(now - dt.timedelta(hours=1)), "value": 0.4, "unit": "mmol/L"},
            {"kind": "blood_pressure", "measured_at": _iso(now - dt.timedelta(minutes=5)), "systolic": 142,
             "diastolic": 88, "unit": "mmHg"},
        ],
    )  # fmt: skip
    cohort, found = await load_cohort(db, [other.patient_id, setup.patient_id])
    assert found == [other.patient_id, setup.patient_id]
    r = cohort.record
    assert r is not None
    assert r.m_offsets.tolist() == [0, 0, 4]
    assert r.m_kind.tolist() == [MEASUREMENT["insulin"], MEASUREMENT["ketone"], MEASUREMENT["ketone"],
                                 MEASUREMENT["blood_pressure"]]  # fmt: skip
    assert r.m_urine.tolist() == [-1, URINE["++"], -1, -1] and r.m_value[0] == 12.5 and r.m_value[2] == 0.4
    assert (r.m_systolic[3], r.m_diastolic[3]) == (142, 88) and r.m_slot[0] == SLOT["bedtime"]
    assert r.plan_version.tolist() == [0, 3] and r.basal_units[1] == 12.5 and r.basal_product == [None, "Levemir"]
    assert math.isnan(r.basal_units[0]) and r.prandial_units[1].tolist()[1] == 4.0
    assert third.created_at is not None
    # the basal dose changed with version 3; the lunch dose never changed from another dose
    assert r.dose_since[1].tolist() == [int(third.created_at.timestamp()), 0, 0, 0]
    assert (r.step_percent[1], r.window_days[1], r.days_required[1], r.max_step_units[1]) == (10.0, 5, 4, 2.0)
    assert math.isnan(r.step_units[1]) and not r.protocol_default[1] and r.protocol_default[0]
    assert r.postpartum_tested.tolist() == [False, True]
    # the rules read them: an urgent urine ketone, a blood pressure warning
    results = {c.rule: c for c in rules.evaluate(cohort)}
    assert results["ketones_high"].severity == ["urgent"] and results["blood_pressure_high"].severity == ["warning"]
