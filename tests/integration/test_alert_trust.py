"""Alerts a diabetologist can trust, against the real database and the running ingest service with its engine
worker: no severe fasting alert on a reading inferred fasting after that morning's fasting one, no stale-sensor
alert from the middle of a backfill, and a delivery that ends the glycaemic monitoring."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from alerts.engine import Engine
from alerts.store import CONFIRM_S, PENDING_MAX_S
from telemon import patients
from telemon.app.services import Services
from tests.support.factories import api_key, patient_with_device
from tests.test_ui_toolkit import Team, browser, login, make_clinician, parse_html

PARIS = ZoneInfo("Europe/Paris")


async def _send(client: httpx.AsyncClient, token: str, readings: list[dict[str, Any]]) -> None:
    response = await client.post(
        "/api/v1/readings", json={"readings": readings}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(readings)


async def _alerts(db: asyncpg.Pool, patient_id: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT rule, severity, status, resolved_by, resolved_reason, evidence FROM alerts"
        " WHERE patient_id = $1 ORDER BY id",
        patient_id,
    )


def _yesterday_at(hour: int, minute: int) -> str:
    day = dt.datetime.now(PARIS).date() - dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour, minute)).isoformat()  # local time, no offset: Paris


async def test_a_reading_after_the_fasting_one_is_after_breakfast_wherever_it_is_judged(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    """84 mg/dL at 06:25 and 159 at 09:07, both without context, each in its own sync (one reading per MQTT
    message is common): no urgent severe fasting alert; the 159 is judged after breakfast."""
    setup = await patient_with_device(db, profile="FR")
    assert services.worker is not None
    await _send(client, setup.token, [{"measured_at": _yesterday_at(6, 25), "value": 84, "unit": "mg/dL"}])
    await services.worker.drain()
    await _send(client, setup.token, [{"measured_at": _yesterday_at(9, 7), "value": 159, "unit": "mg/dL"}])
    await services.worker.drain()
    alerts = await _alerts(db, setup.patient_id)
    assert [a["rule"] for a in alerts if a["rule"].startswith("fasting")] == []
    post = [a for a in alerts if a["rule"] == "postprandial_above_target"]
    assert [(a["severity"], a["evidence"]["values_mgdl"]) for a in post] == [("info", [159.0])]
    # stored with the clock's guess, marked inferred (the engine and the logbook place it among the day's)
    rows = await db.fetch(
        "SELECT value_mgdl, context, context_inferred FROM readings WHERE patient_id = $1 ORDER BY measured_at",
        setup.patient_id,
    )
    assert [r["context_inferred"] for r in rows] == [True, True]


async def test_a_sync_holding_the_whole_morning_stores_the_after_breakfast_context(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, profile="FR")
    await _send(
        client,
        setup.token,
        [
            {"measured_at": _yesterday_at(9, 7), "value": 159, "unit": "mg/dL"},
            {"measured_at": _yesterday_at(6, 25), "value": 84, "unit": "mg/dL"},
        ],
    )
    rows = await db.fetch(
        "SELECT value_mgdl, context, meal FROM readings WHERE patient_id = $1 ORDER BY measured_at", setup.patient_id
    )
    assert [(r["value_mgdl"], r["context"], r["meal"]) for r in rows] == [
        (84, "fasting", None),
        (159, "after_meal", "breakfast"),
    ]


async def test_a_cgm_backfill_opens_no_stale_alert_but_a_silent_sensor_does(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    """Three days of a sensor's history uploaded a day per request, the engine evaluating between requests (as it
    did in the demo): every evaluation in the middle saw a sensor silent for days, none opens ``cgm_stale``. Once
    the sensor really goes silent, the first evaluation past 15 minutes records the condition and the second, a
    few minutes later, opens the alert."""
    setup = await patient_with_device(db, kind="cgm")
    assert services.worker is not None
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first = now - dt.timedelta(days=3)
    passes = services.worker.passes
    for day in range(3):
        start = first + dt.timedelta(days=day)
        await _send(
            client,
            setup.token,
            [
                {
                    "measured_at": (start + dt.timedelta(minutes=5 * k)).isoformat(),
                    "value": 100 + (k % 12),
                    "unit": "mg/dL",
                    "kind": "cgm",
                }
                for k in range(288)
                if start + dt.timedelta(minutes=5 * k) <= now
            ],
        )
        await services.worker.drain()
    assert services.worker.passes - passes >= 3  # evaluated in the middle of the backfill
    assert [a["rule"] for a in await _alerts(db, setup.patient_id) if a["rule"] == "cgm_stale"] == []

    engine = Engine(db)
    silent = time.time() + 20 * 60  # the sensor has said nothing for 20 minutes
    await engine.evaluate([setup.patient_id], now=silent)
    assert [a["rule"] for a in await _alerts(db, setup.patient_id) if a["rule"] == "cgm_stale"] == []
    await engine.evaluate([setup.patient_id], now=silent + CONFIRM_S)
    stale = [a for a in await _alerts(db, setup.patient_id) if a["rule"] == "cgm_stale"]
    assert [(a["severity"], a["status"]) for a in stale] == [("warning", "open")]


async def test_a_predicted_low_does_not_wait_for_a_second_evaluation(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    """The forecast judges only a fresh sensor (a backfill's old readings never set it off): it opens at once."""
    setup = await patient_with_device(db, kind="cgm")
    assert services.worker is not None
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    values = (130, 115, 100, 88, 76, 66)  # falling every 5 minutes, the last one now
    falling = [(now - dt.timedelta(minutes=5 * (5 - k)), v) for k, v in enumerate(values)]
    await _send(
        client,
        setup.token,
        [{"measured_at": at.isoformat(), "value": v, "unit": "mg/dL", "kind": "cgm"} for at, v in falling],
    )
    await services.worker.drain()
    rules = [(a["rule"], a["status"]) for a in await _alerts(db, setup.patient_id)]
    assert ("cgm_predicted_low", "open") in rules


async def test_a_sighting_too_old_confirms_nothing(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    """Two evaluations an hour and more apart say nothing of the time between them: the second records the
    condition anew, and a third, minutes later, opens the alert."""
    setup = await patient_with_device(db)
    three_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    await _send(client, setup.token, [{"measured_at": three_days_ago.isoformat(), "value": 90, "unit": "mg/dL"}])
    engine = Engine(db)
    start = time.time()
    for now, opened in (
        (start, False),
        (start + PENDING_MAX_S + 60, False),
        (start + PENDING_MAX_S + 60 + CONFIRM_S, True),
    ):
        await engine.evaluate([setup.patient_id], now=now)
        no_data = [a["status"] for a in await _alerts(db, setup.patient_id) if a["rule"] == "no_data"]
        assert no_data == (["open"] if opened else [])


async def test_a_recorded_delivery_resolves_the_glycaemic_alerts_and_keeps_the_postpartum_ones(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, profile="FR", treatment="insulin")
    assert services.worker is not None
    three_hours_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    await _send(
        client,
        setup.token,
        [
            {"measured_at": three_hours_ago.isoformat(), "value": 45, "unit": "mg/dL", "context": "before_meal"},
            {"measured_at": _yesterday_at(7, 0), "value": 150, "unit": "mg/dL", "context": "fasting"},
        ],
    )
    await services.worker.drain()
    before = {a["rule"] for a in await _alerts(db, setup.patient_id) if a["status"] == "open"}
    assert {"hypo_l2", "fasting_severe"} <= before

    delivered = dt.datetime.now(PARIS).date() - dt.timedelta(days=45)  # inside FR's postpartum window (6–8 weeks)
    async with db.acquire() as conn, conn.transaction():
        await patients.record_delivery(conn, setup.patient_id, delivered, actor="cli")
    alerts = await _alerts(db, setup.patient_id)
    assert [a for a in alerts if a["status"] != "resolved"] == []
    assert {(a["resolved_by"], a["resolved_reason"]) for a in alerts} == {("system", "delivered")}
    key = await api_key(db, "alerts:read", teams=[setup.team_id])
    listed = await client.get(
        "/api/v1/alerts",
        params={"patient_id": str(setup.patient_id), "status": "resolved"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert listed.status_code == 200, listed.text
    assert {(a["resolved_by"], a["resolved_reason"]) for a in listed.json()["items"]} == {("system", "delivered")}
    audit = await db.fetchval(
        "SELECT detail FROM audit_log WHERE patient_id = $1 AND action = 'patient.delivery'", setup.patient_id
    )
    assert audit is not None and len(audit["alerts_resolved"]) == len(alerts)

    # the next evaluations open the postpartum reminder only; correcting the date keeps it
    engine = Engine(db)
    await engine.evaluate([setup.patient_id])
    await engine.evaluate([setup.patient_id], now=time.time() + CONFIRM_S)
    open_now = [(a["rule"], a["severity"]) for a in await _alerts(db, setup.patient_id) if a["status"] == "open"]
    assert open_now == [("postpartum_test_due", "info")]
    async with db.acquire() as conn, conn.transaction():
        await patients.record_delivery(conn, setup.patient_id, delivered + dt.timedelta(days=1), actor="cli")
    still_open = [a["rule"] for a in await _alerts(db, setup.patient_id) if a["status"] != "resolved"]
    assert still_open == ["postpartum_test_due"]
    # nothing that would put her on the triage list (urgent or warning) is open
    assert all(a["severity"] == "info" for a in await _alerts(db, setup.patient_id) if a["status"] != "resolved")

    # her page says why the alerts were resolved, in the clinician's language
    email = await make_clinician(db, Team(setup.team_id, "team"))
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{setup.patient_id}")).text)
    resolved = [a.text() for a in page.select("#history-alerts article.alert")]
    assert resolved and all("delivered: monitoring ended" in text for text in resolved if "resolved" in text)
    assert any("delivered: monitoring ended" in text for text in resolved)
