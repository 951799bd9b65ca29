"""HTTP ingest end to end against the real database."""

from __future__ import annotations

import datetime as dt
import gzip
import json

import asyncpg
import httpx

from tests.support.factories import patient_with_device


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


async def test_one_bad_item_among_99_good(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    readings = [
        {"measured_at": _iso(start + dt.timedelta(minutes=15 * i)), "value": 90 + i % 40, "unit": "mg/dL"}
        for i in range(100)
    ]
    readings[37]["value"] = "ninety"
    response = await client.post(
        "/api/v1/readings", json={"readings": readings}, headers={"Authorization": f"Bearer {setup.token}"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["accepted"] == 99
    assert body["duplicates"] == 0
    assert body["rejected"] == [{"index": 37, "reason": "value: expected a number, got str"}]
    assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", setup.patient_id) == 99
    rows = await db.fetch("SELECT item_index, reason, raw FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert len(rows) == 1
    assert rows[0]["item_index"] == 37
    assert json.loads(rows[0]["raw"])["value"] == "ninety"


async def test_gzip_body_and_resend_is_all_duplicates(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)
    body = {
        "readings": [
            {
                "measured_at": _iso(start + dt.timedelta(minutes=5 * i)),
                "value": 5.5,
                "unit": "mmol/l",
                "kind": "smbg",
                "context": "fasting",
            }
            for i in range(20)
        ]
    }
    headers = {"Authorization": f"Bearer {setup.token}", "Content-Encoding": "gzip", "Content-Type": "application/json"}
    first = await client.post("/api/v1/readings", content=gzip.compress(json.dumps(body).encode()), headers=headers)
    again = await client.post("/api/v1/readings", content=gzip.compress(json.dumps(body).encode()), headers=headers)
    assert first.json() == {"accepted": 20, "duplicates": 0, "rejected": []}
    assert again.json() == {"accepted": 0, "duplicates": 20, "rejected": []}
    value = await db.fetchval("SELECT DISTINCT value_mgdl FROM readings WHERE patient_id = $1", setup.patient_id)
    assert abs(value - 5.5 * 18.01559) < 0.01


async def test_instants_are_stored_to_the_microsecond(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    """The device time travels to the database as an integer of microseconds: nothing is rounded on the way,
    and the clock correction is applied to the exact instant."""
    setup = await patient_with_device(db)
    sent = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=3)  # the meter runs 3 h ahead
    taken = sent - dt.timedelta(hours=2, microseconds=876544)
    body = {"device_time": _iso(sent), "readings": [{"measured_at": _iso(taken), "value": 101, "unit": "mg/dL"}]}
    response = await client.post("/api/v1/readings", json=body, headers={"Authorization": f"Bearer {setup.token}"})
    assert response.json()["accepted"] == 1
    row = await db.fetchrow(
        "SELECT device_time, measured_at, clock_offset_s, flags FROM readings WHERE patient_id = $1", setup.patient_id
    )
    assert row["device_time"] == taken
    assert row["measured_at"] == taken + dt.timedelta(seconds=row["clock_offset_s"])
    assert -3 * 3600 - 5 <= row["clock_offset_s"] <= -3 * 3600 + 5
    assert row["flags"] == []
