"""Live updates: PostgreSQL NOTIFY → one LISTEN connection per process → the server-sent-event streams of the
clinicians whose teams hold the patient, across several API processes (two real uvicorn servers here)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import uvicorn

from alerts import store
from telemon.app.factory import create_app
from telemon.app.services import Services
from telemon.embedded import free_port
from tests.test_ui_toolkit import add_alert, csrf_of, login, make_clinician, make_patient, make_team


@contextlib.asynccontextmanager
async def api_process(services: Services) -> AsyncIterator[str]:
    """The dashboard served by a uvicorn server of its own, as one more API process would."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(services=services), host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "server did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


class Stream:
    """The events of one open ``/events`` stream, collected in the background."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http, self.base = http, base
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.task: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        async with self.http.stream("GET", f"{self.base}/events", timeout=None) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    self.events.append((kind, json.loads(line[6:])))
                    kind = None

    async def __aenter__(self) -> Stream:
        self.task = asyncio.create_task(self._read())
        await self.wait_for(lambda kind, data: kind == "hello")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def wait_for(self, match: Any, timeout: float = 10) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for kind, data in self.events:
                if match(kind, data):
                    return data
            assert self.task is None or not self.task.done() or self.task.cancelled(), self.task.exception()
            await asyncio.sleep(0.02)
        raise AssertionError(f"no matching event in {self.events}")


async def _listeners(db: asyncpg.Pool) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'"
        " AND state = 'idle'"
    )
    return count


async def test_alert_changes_reach_every_process_and_only_the_patients_team(
    services: Services, db: asyncpg.Pool
) -> None:
    team, other = await make_team(db), await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team, "Live patient")
    stranger, _ = await make_patient(db, other, "Other team")
    mine = await add_alert(db, patient)
    theirs = await add_alert(db, stranger)
    async with api_process(services) as a, api_process(services) as b, httpx.AsyncClient() as http:
        await login_at(http, a, email)
        async with Stream(http, a) as s1, Stream(http, a) as s2, Stream(http, a) as s3, Stream(http, b) as s4:
            # three streams on process A, one on B: one LISTEN connection per process, not per stream
            assert await _listeners(db) == 2
            async with db.acquire() as conn, conn.transaction():  # another team's change first: never forwarded
                await store.acknowledge(conn, theirs, "cli")
            page = await http.get(f"{a}/")
            answer = await http.post(f"{a}/alerts/{mine}/acknowledge", data={"csrf_token": csrf_of(page.text)})
            assert answer.status_code == 303
            for stream in (s1, s2, s3, s4):
                event = await stream.wait_for(lambda kind, data: kind == "alert")
                assert event == {
                    "patient_id": str(patient),
                    "id": mine,
                    "rule": "hypo_l2",
                    "severity": "urgent",
                    "status": "acknowledged",
                    "change": "acknowledged",
                }
                assert all(d.get("patient_id") != str(stranger) for _, d in stream.events)
            # readings (telemon_readings, sent by ingest): forwarded the same way; a bad payload is skipped
            await db.execute("SELECT pg_notify('telemon_readings', 'not json')")
            await db.execute(
                "SELECT pg_notify('telemon_readings', $1)",
                json.dumps({"patient_ids": [str(stranger), str(patient), str(uuid.uuid4())]}),
            )
            got = await s4.wait_for(lambda kind, data: kind == "reading")
            assert got == {"patient_id": str(patient)}
            assert [d for k, d in s4.events if k == "reading"] == [{"patient_id": str(patient)}]
        # the streams closed: each process gives its listening connection back
        for _ in range(200):
            if await _listeners(db) == 0:
                break
            await asyncio.sleep(0.05)
        assert await _listeners(db) == 0
        # a stream opened later listens again
        async with Stream(http, b) as again:
            async with db.acquire() as conn, conn.transaction():
                await store.resolve(conn, mine, "cli")
            event = await again.wait_for(lambda kind, data: kind == "alert")
            assert (event["id"], event["change"]) == (mine, "resolved")


async def login_at(http: httpx.AsyncClient, base: str, email: str) -> None:
    http.base_url = httpx.URL(base)
    answer = await login(http, email)
    assert answer.status_code == 303
