"""The engine against the real database: incremental evaluation after ingest, the alert lifecycle, NOTIFY,
and the alerts API."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from typing import Any

import asyncpg
import httpx

from alerts.engine import Engine
from alerts.messages import render_all
from alerts.store import CONFIRM_S
from telemon.app.services import Services
from tests.support.factories import api_key, patient_with_device


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


async def _send(client: httpx.AsyncClient, token: str, readings: list[dict[str, Any]]) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/readings", json={"readings": readings}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _alerts(db: asyncpg.Pool, patient_id: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, rule, severity, status, episode_key, evidence, code, params, message, resolved_by FROM alerts"
        " WHERE patient_id = $1 ORDER BY id",
        patient_id,
    )


async def test_a_hypo_synced_over_http_opens_one_alert_that_explains_itself(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, treatment="insulin")
    low_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    reading = {"measured_at": _iso(low_at), "value": 2.8, "unit": "mmol/L", "context": "before_meal"}
    await _send(client, setup.token, [reading])
    assert services.worker is not None
    await services.worker.drain()
    alerts = await _alerts(db, setup.patient_id)
    assert [(a["rule"], a["severity"], a["status"]) for a in alerts] == [("hypo_l2", "urgent", "open")]
    reading_id = await db.fetchval("SELECT id FROM readings WHERE patient_id = $1", setup.patient_id)
    assert reading_id in alerts[0]["evidence"]["reading_ids"]
    stored = render_all(alerts[0]["code"], alerts[0]["params"], fallback=alerts[0]["message"])  # its text, rendered
    assert "54" in stored["en"] and stored["fr"]

    # the same sync again, and evaluating again, open nothing twice
    await _send(client, setup.token, [reading])
    await services.worker.drain()
    await Engine(db).evaluate([setup.patient_id])
    assert len(await _alerts(db, setup.patient_id)) == 1


async def test_old_imports_page_nobody_but_yesterdays_hypo_does(
    client: httpx.AsyncClient, services: Services, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, due_date=dt.date.today() + dt.timedelta(days=100))
    now = dt.datetime.now(dt.UTC)
    await _send(
        client,
        setup.token,
        [
            {"measured_at": _iso(now - dt.timedelta(days=30)), "value": 45, "unit": "mg/dL"},
            {"measured_at": _iso(now - dt.timedelta(days=1)), "value": 60, "unit": "mg/dL"},
        ],
    )
    assert services.worker is not None
    await services.worker.drain()
    # a stateful finding opens once a second evaluation, minutes later, confirms it
    await Engine(db).evaluate([setup.patient_id], now=time.time() + CONFIRM_S)
    rules = [a["rule"] for a in await _alerts(db, setup.patient_id)]
    assert [r for r in rules if r.startswith("hypo")] == ["hypo_l1"]  # the 45 mg/dL of a month ago pages nobody
    assert "low_adherence" in rules  # two readings in a week, four a day prescribed


async def test_stateful_no_data_opens_then_resolves_itself(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    three_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    await _send(
        client, setup.token, [{"measured_at": _iso(three_days_ago), "value": 90, "unit": "mg/dL", "context": "fasting"}]
    )
    engine = Engine(db)
    await engine.evaluate([setup.patient_id])
    assert [a for a in await _alerts(db, setup.patient_id) if a["rule"] == "no_data"] == []  # not confirmed yet
    await engine.evaluate([setup.patient_id], now=time.time() + CONFIRM_S)
    assert [(a["rule"], a["status"]) for a in await _alerts(db, setup.patient_id) if a["rule"] == "no_data"] == [
        ("no_data", "open")
    ]
    await _send(client, setup.token, [{"measured_at": _iso(dt.datetime.now(dt.UTC)), "value": 92, "unit": "mg/dL"}])
    await engine.evaluate([setup.patient_id])
    no_data = [a for a in await _alerts(db, setup.patient_id) if a["rule"] == "no_data"]
    assert [(a["status"], a["resolved_by"]) for a in no_data] == [("resolved", "system")]


async def test_changes_are_notified_and_the_api_handles_the_lifecycle(
    client: httpx.AsyncClient, db: asyncpg.Pool, database_url: str
) -> None:
    setup = await patient_with_device(db)
    listener = await asyncpg.connect(database_url)
    heard: list[dict[str, Any]] = []
    await listener.add_listener("telemon_alerts", lambda *args: heard.append(json.loads(args[3])))
    try:
        await _send(
            client,
            setup.token,
            [{"measured_at": _iso(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)), "value": 50, "unit": "mg/dL"}],
        )
        await Engine(db).evaluate([setup.patient_id])
        deadline = time.monotonic() + 5
        while not any(h["patient_id"] == str(setup.patient_id) for h in heard) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        mine = [h for h in heard if h["patient_id"] == str(setup.patient_id)]
        assert mine and mine[0]["rule"] == "hypo_l2" and mine[0]["change"] == "opened"
        alert_id = mine[0]["id"]

        reader = {"X-API-Key": await api_key(db, "alerts:read")}
        writer = {"X-API-Key": await api_key(db, "alerts:write")}
        listed = (
            await client.get("/api/v1/alerts", params={"patient_id": str(setup.patient_id)}, headers=reader)
        ).json()
        assert [a["id"] for a in listed["items"]] == [alert_id] and listed["next"] is None
        assert listed["items"][0]["evidence"]["reading_ids"]
        assert (await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=reader)).status_code == 403
        acked = await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", headers=writer)
        assert acked.json()["status"] == "acknowledged" and acked.json()["acknowledged_by"].startswith("api_key:")
        until = _iso(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2))
        snoozed = await client.post(f"/api/v1/alerts/{alert_id}/snooze", json={"until": until}, headers=writer)
        assert snoozed.status_code == 200 and snoozed.json()["snoozed_until"] is not None
        resolved = await client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=writer)
        assert resolved.json()["status"] == "resolved"
        again = await client.post(f"/api/v1/alerts/{alert_id}/resolve", headers=writer)
        assert again.status_code == 409
        assert (await client.post("/api/v1/alerts/999999999/resolve", headers=writer)).status_code == 404
        # a resolved per-reading episode is not opened again by a later evaluation
        await Engine(db).evaluate([setup.patient_id])
        assert [a["status"] for a in await _alerts(db, setup.patient_id) if a["rule"] == "hypo_l2"] == ["resolved"]
        filtered = await client.get(
            "/api/v1/alerts",
            params={"patient_id": str(setup.patient_id), "status": "open", "rule": "hypo_l2"},
            headers=reader,
        )
        assert filtered.json()["items"] == []
        deadline = time.monotonic() + 5
        while len([h for h in heard if h["id"] == alert_id]) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [h["change"] for h in heard if h["id"] == alert_id] == ["opened", "acknowledged", "snoozed", "resolved"]
        actions = await db.fetch(
            "SELECT action FROM audit_log WHERE patient_id = $1 AND action LIKE 'alert.%' ORDER BY id", setup.patient_id
        )
        assert [a["action"] for a in actions] == ["alert.acknowledge", "alert.snooze", "alert.resolve"]
    finally:
        await listener.close()


async def test_alert_list_pages_most_urgent_first(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    now = dt.datetime.now(dt.UTC)
    await _send(
        client,
        setup.token,
        [
            {"measured_at": _iso(now - dt.timedelta(hours=h)), "value": v, "unit": "mg/dL", "context": "before_meal"}
            for h, v in [(30, 65), (20, 50), (10, 250)]
        ],
    )
    await Engine(db).evaluate([setup.patient_id])
    reader = {"X-API-Key": await api_key(db, "alerts:read")}
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"patient_id": str(setup.patient_id), "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/alerts", params=params, headers=reader)).json()
        seen += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    ranks = {"urgent": 0, "warning": 1, "info": 2}
    assert [ranks[a["severity"]] for a in seen] == sorted(ranks[a["severity"]] for a in seen)
    assert {a["rule"] for a in seen} >= {"hypo_l2", "hypo_l1", "ketone_check"}
