"""The treatment record's rules end to end: a plan written through telemon.treatment, readings and measurements sent
by a device over HTTP (with the noise of a real morning), the engine's incremental pass and a confirming pass, the
alerts stored with their params; applying the suggestion clears it; a team that turned suggestions off gets none."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from alerts import titration
from alerts.engine import Engine
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
    rules = [a["rule"] for a in await _alerts(db, setup.patient_id)]
    assert "dose_review" not in rules and "blood_pressure_high" in rules
