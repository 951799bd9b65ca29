"""Fault injection: the consumer is killed (SIGKILL) while 20,000 QoS 1 messages are being published, then
restarted. A private Mosquitto keeps the consumer's persistent session with no queue-count limit
(DESIGN §5); every message is stored exactly once."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from telemon.embedded import free_port
from tests.support.factories import Setup, patient_with_device
from tests.support.mosquitto import start_mosquitto
from tests.support.mqtt import publish, publisher

pytestmark = pytest.mark.slow

MESSAGES = 20_000
DEVICES = 20
BROKER = """
allow_anonymous true
persistence false
max_queued_messages 0
max_queued_bytes 268435456
max_inflight_messages 100
"""


def _consumer(database_url: str, mqtt_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TELEMON_DATABASE_URL": database_url,
        "TELEMON_MQTT_URL": mqtt_url,
        "TELEMON_MQTT_CLIENT_ID": "crash-test-consumer",
        "TELEMON_LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "telemon", "serve", "--roles", "mqtt", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _ready(port: int, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert process.poll() is None, "consumer exited"
            try:
                if (await client.get(f"http://127.0.0.1:{port}/readyz", timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("consumer not ready")


def _publish_all(mqtt_url: str, devices: list[Setup], sent: list[int]) -> None:
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    with publisher(mqtt_url) as client:
        for i in range(MESSAGES):
            device = devices[i % DEVICES]
            moment = start + dt.timedelta(seconds=10 * (i // DEVICES))
            publish(
                client,
                device.device_id,
                {"readings": [{"measured_at": moment.isoformat(), "value": 80 + i % 90, "unit": "mg/dL"}]},
            )
            sent[0] = i + 1


async def test_sigkill_during_publishing_loses_and_doubles_nothing(
    database_url: str, db: asyncpg.Pool, tmp_path: Path
) -> None:
    devices = [await patient_with_device(db) for _ in range(DEVICES)]
    patient_ids = [d.patient_id for d in devices]

    async def stored() -> int:
        count: int = await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = ANY($1::uuid[])", patient_ids)
        return count

    with start_mosquitto(BROKER, tmp_path) as (host, broker_port):
        mqtt_url = f"mqtt://{host}:{broker_port}"
        port = free_port()
        consumer = _consumer(database_url, mqtt_url, port)
        await _ready(port, consumer)
        sent = [0]
        thread = threading.Thread(target=_publish_all, args=(mqtt_url, devices, sent))
        thread.start()
        try:
            while sent[0] < MESSAGES // 4 or await stored() == 0:
                await asyncio.sleep(0.05)
            consumer.send_signal(signal.SIGKILL)
            consumer.wait(10)
            killed_at = await stored()
            assert 0 < killed_at < MESSAGES
            await asyncio.sleep(1)  # messages keep coming while no consumer runs
            consumer = _consumer(database_url, mqtt_url, port)
            await _ready(port, consumer)
            await asyncio.to_thread(thread.join, 300)
            deadline = time.monotonic() + 120
            while await stored() < MESSAGES and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(1)  # nothing more arrives after the last one
            assert sent[0] == MESSAGES
            assert await stored() == MESSAGES
        finally:
            consumer.send_signal(signal.SIGINT)
            consumer.wait(30)
            thread.join(60)
