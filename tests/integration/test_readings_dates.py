"""``?from=`` / ``?to=`` of a patient's readings take a date (the patient's local midnight) as well as a
timestamp with its offset; anything else is a 422 that says what is accepted."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.support.factories import api_key, patient_with_device

ZONE = "America/New_York"


async def test_a_date_is_the_patients_local_midnight(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, time_zone=ZONE)
    local = ZoneInfo(ZONE)
    day = dt.datetime.now(local).date() - dt.timedelta(days=3)
    midnight = dt.datetime.combine(day, dt.time(), local)
    # a minute either side of the local midnights that start and end ``day``
    times = [
        midnight - dt.timedelta(minutes=1),
        midnight,
        midnight + dt.timedelta(hours=12),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), local) - dt.timedelta(minutes=1),
        dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), local),
    ]
    readings = [
        {"measured_at": t.astimezone(dt.UTC).isoformat(), "value": 90 + i, "unit": "mg/dL", "context": "unspecified"}
        for i, t in enumerate(times)
    ]
    sent = await client.post(
        "/api/v1/readings", json={"readings": readings}, headers={"Authorization": f"Bearer {setup.token}"}
    )
    assert sent.json()["accepted"] == len(times)
    headers = {"X-API-Key": await api_key(db, "readings:read", teams=[setup.team_id])}
    url = f"/api/v1/patients/{setup.patient_id}/readings"

    one_day = await client.get(
        url, params={"from": day.isoformat(), "to": (day + dt.timedelta(days=1)).isoformat()}, headers=headers
    )
    assert one_day.status_code == 200, one_day.text
    assert [i["value"] for i in one_day.json()["items"]] == [91, 92, 93]
    # a date and a timestamp mixed; the same day as a UTC date would be another window (New York is behind UTC)
    mixed = await client.get(
        url, params={"from": day.isoformat(), "to": times[2].astimezone(dt.UTC).isoformat()}, headers=headers
    )
    assert [i["value"] for i in mixed.json()["items"]] == [91]
    since = await client.get(url, params={"from": (day + dt.timedelta(days=1)).isoformat()}, headers=headers)
    assert [i["value"] for i in since.json()["items"]] == [94]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"from": "2026-02-30"}, "from: 2026-02-30 is not a date of the calendar"),
        ({"from": "2026-11-01T06:00:00"}, "from: give a time zone offset (for example Z)"),
        ({"to": "1700000000"}, "to: '1700000000' is not a date (YYYY-MM-DD"),
        ({"from": "yesterday"}, "from: 'yesterday' is not a date (YYYY-MM-DD"),
        ({"from": "2026-W44-1"}, "from: '2026-W44-1' is not a date (YYYY-MM-DD"),
        ({"from": "20261101"}, "from: '20261101' is not a date (YYYY-MM-DD"),
        ({"to": "2026-11-01T25:00Z"}, "to: '2026-11-01T25:00Z' is not a date (YYYY-MM-DD"),
    ],
)
async def test_anything_else_is_a_clear_422(
    client: httpx.AsyncClient, db: asyncpg.Pool, params: dict[str, str], reason: str
) -> None:
    setup = await patient_with_device(db, time_zone=ZONE)
    headers = {"X-API-Key": await api_key(db, "readings:read", teams=[setup.team_id])}
    answer = await client.get(f"/api/v1/patients/{setup.patient_id}/readings", params=params, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith(reason)
