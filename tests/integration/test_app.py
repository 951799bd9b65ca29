"""The app factory: health, readiness, request ids, and the scheduler's single leader."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import asyncpg
import httpx
import pytest

from telemon import logs
from telemon.app.factory import create_app
from telemon.app.services import open_services
from telemon.jobs import Job
from telemon.scheduler import Scheduler
from telemon.settings import Settings


async def test_healthz_and_readyz_with_database_and_broker(settings: Settings, mqtt_url: str) -> None:
    with_broker = dataclasses.replace(settings, mqtt_url=mqtt_url)
    async with open_services(with_broker) as services:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {"status": "ok", "checks": {"database": True, "broker": True}}


async def test_readyz_is_503_when_the_broker_is_down(settings: Settings) -> None:
    unreachable = dataclasses.replace(settings, mqtt_url="mqtt://127.0.0.1:9")
    async with open_services(unreachable) as services:
        transport = httpx.ASGITransport(app=create_app(services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"] == {"database": True, "broker": False}


async def test_request_id_is_returned_and_logged(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = (await client.get("/healthz")).headers["x-request-id"]
    assert len(generated) == 32
    token = logs.request_id.set("req-42")
    try:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello %s", ("x",), None)
        record.patient = "p1"
        entry = json.loads(logs.JsonFormatter().format(record))
    finally:
        logs.request_id.reset(token)
    assert entry["message"] == "hello x"
    assert entry["request_id"] == "req-42"
    assert entry["patient"] == "p1"


async def test_exactly_one_scheduler_leads_and_a_standby_takes_over(db: asyncpg.Pool) -> None:
    runs: list[str] = []

    async def tick(pool: asyncpg.Pool) -> None:
        runs.append("tick")

    jobs = {"tick": Job("tick", tick, "interval", {"seconds": 0.2})}
    first = Scheduler(db, jobs, retry_seconds=0.2)
    second = Scheduler(db, jobs, retry_seconds=0.2)
    first.start()
    await asyncio.sleep(0.5)
    second.start()
    await asyncio.sleep(1.0)
    assert first.is_leader and not second.is_leader
    assert runs, "the leader runs its jobs"
    await first.stop()
    for _ in range(50):
        if second.is_leader:
            break
        await asyncio.sleep(0.1)
    assert second.is_leader
    await second.stop()
