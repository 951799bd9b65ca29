"""Hospitals read a patient's readings back with a scoped API key, in the list envelope."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx

from tests.support.factories import api_key, patient_with_device


async def test_read_back_in_time_order_with_pages(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, time_zone="Europe/Paris")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    readings = [
        {"measured_at": (start + dt.timedelta(minutes=30 * i)).isoformat(), "value": 4.0 + i / 10, "unit": "mmol/L"}
        for i in range(25)
    ]
    readings[3].update(context="fasting", meal=None, flags=["manual"])
    sent = await client.post(
        "/api/v1/readings", json={"readings": readings[::-1]}, headers={"Authorization": f"Bearer {setup.token}"}
    )
    assert sent.json()["accepted"] == 25
    key = await api_key(db, "readings:read")
    headers = {"Authorization": f"Bearer {key}"}
    url = f"/api/v1/patients/{setup.patient_id}/readings"

    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(url, params=params, headers=headers)).json()
        items += page["items"]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3
    assert [i["measured_at"] for i in items] == sorted(i["measured_at"] for i in items)
    assert items[0]["measured_at"] == start.isoformat().replace("+00:00", "Z")
    assert items[3]["context"] == "fasting" and items[3]["context_inferred"] is False
    assert items[3]["flags"] == ["manual"]
    assert items[4]["context_inferred"] is True
    assert items[0]["value"] == 4.0 and items[0]["unit"] == "mmol/L"
    assert abs(items[0]["value_mgdl"] - 4.0 * 18.01559) < 0.01
    assert items[0]["device_id"] == setup.device_id

    window = await client.get(
        url,
        params={"from": items[5]["measured_at"], "to": items[8]["measured_at"]},
        headers=headers,
    )
    assert [i["measured_at"] for i in window.json()["items"]] == [i["measured_at"] for i in items[5:8]]
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'readings.read' AND patient_id = $1", setup.patient_id
        )
        == 4
    )


async def test_read_back_refusals(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    url = f"/api/v1/patients/{setup.patient_id}/readings"
    assert (await client.get(url)).status_code == 401
    assert (await client.get(url, headers={"X-API-Key": "tmk_nope"})).status_code == 401
    writer = await api_key(db, "readings:write")
    forbidden = await client.get(url, headers={"X-API-Key": writer})
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "this API key lacks the scope readings:read"}
    reader = await api_key(db, "readings:read")
    headers = {"X-API-Key": reader}
    missing = await client.get(f"/api/v1/patients/{uuid.uuid4()}/readings", headers=headers)
    assert missing.status_code == 404
    assert (await client.get(url, params={"cursor": "garbage!"}, headers=headers)).status_code == 400
    assert (await client.get(url, params={"limit": 5001}, headers=headers)).status_code == 422
    assert (await client.get(url, params={"from": "2026-01-01T00:00:00"}, headers=headers)).status_code == 422
    empty = await client.get(url, headers=headers)
    assert empty.json() == {"items": [], "next": None}
