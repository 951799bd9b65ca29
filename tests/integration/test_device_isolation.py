"""Device A cannot write readings for device B, on any transport; a disabled device is refused.

MQTT runs on a private Mosquitto with the shipped configuration and ACL, and a password file exported by
``telemon broker-passwords`` from what ``telemon add-device`` stored."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import httpx

from telemon.settings import Settings
from telemon.topics import readings_topic
from tests.support.factories import patient_with_device
from tests.support.mosquitto import shipped_config, start_mosquitto
from tests.support.mqtt import Receipts, publisher, running_consumer


def _reading(value: float) -> dict[str, object]:
    moment = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    return {"readings": [{"measured_at": moment.isoformat(), "value": value, "unit": "mg/dL"}]}


async def test_http_stores_under_the_token_owner_and_refuses_a_disabled_device(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    a = await patient_with_device(db)
    b = await patient_with_device(db)
    body = {**_reading(101), "device_id": b.device_id, "patient_id": str(b.patient_id)}
    response = await client.post("/api/v1/readings", json=body, headers={"Authorization": f"Bearer {a.token}"})
    assert response.json()["accepted"] == 1
    assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", b.patient_id) == 0
    assert await db.fetchval("SELECT device_id FROM readings WHERE patient_id = $1", a.patient_id) == a.device_id

    assert (await client.post("/api/v1/readings", json=_reading(1))).status_code == 401
    wrong = await client.post("/api/v1/readings", json=_reading(1), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    await db.execute("UPDATE devices SET active = false WHERE id = $1", a.device_id)
    disabled = await client.post("/api/v1/readings", json=_reading(102), headers={"Authorization": f"Bearer {a.token}"})
    assert disabled.status_code == 403
    assert disabled.json() == {"detail": f"device {a.device_id} is disabled"}


async def test_mqtt_device_cannot_publish_for_another(
    settings: Settings, database_url: str, db: asyncpg.Pool, tmp_path: Path
) -> None:
    a = await patient_with_device(db)
    b = await patient_with_device(db)
    passwd = tmp_path / "passwd"
    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "telemon",
            "broker-passwords",
            "--file",
            str(passwd),
            "--service-password",
            "service-secret",
            "--json",
        ],
        env={**os.environ, "TELEMON_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    with start_mosquitto(shipped_config(tmp_path, passwd), tmp_path) as (host, port):
        service_url = f"mqtt://telemon:service-secret@{host}:{port}"
        async with running_consumer(settings, service_url):
            with Receipts(f"mqtt://{a.device_id}:{a.token}@{host}:{port}", [a.device_id]) as receipts:
                with publisher(f"mqtt://{host}:{port}", a.device_id, a.token) as pub:
                    # forged: A writes into B's topic; the broker drops it (and closes A's connection)
                    pub.publish(readings_topic(b.device_id), json.dumps(_reading(150)), qos=1)
                    await asyncio.sleep(0.5)
                with publisher(f"mqtt://{host}:{port}", a.device_id, a.token) as pub:
                    pub.publish(readings_topic(a.device_id), json.dumps(_reading(120)), qos=1)
                    answer = (await receipts.wait_for(1))[0]
    assert answer == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", b.patient_id) == 0
    assert await db.fetchval("SELECT value_mgdl FROM readings WHERE patient_id = $1", a.patient_id) == 120
