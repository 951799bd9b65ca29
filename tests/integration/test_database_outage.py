"""Fault injection: the database goes away under a running ``telemon serve``, or is not there when it starts.

A private PostgreSQL (tests.support.postgres) is stopped and started again; the service is a real process whose
JSON log lines (stderr) are read back. During an outage every request that needs the database is a 503 with
``Retry-After`` in the form of its part of the app (JSON, a FHIR OperationOutcome, a dashboard page), ``/readyz``
is a 503, the log says so once; when PostgreSQL is back the same requests succeed without a restart. A service
started while PostgreSQL is down waits for it; one started with a setting that is wrong for good stops at once."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from telemon.db import create_pool
from telemon.embedded import free_port
from telemon.jobs import Job
from telemon.scheduler import Scheduler
from telemon.security import nightscout_secret
from tests.integration.test_fhir import DUE_2013, auth, example
from tests.support.factories import api_key, patient_with_device
from tests.support.postgres import PrivatePostgres, private_postgres
from tests.test_ui_toolkit import PASSWORD, csrf_of, make_clinician, make_team

pytestmark = pytest.mark.slow

WAITING = "database unavailable: waiting for it"
OUTAGE = "database unavailable: answering 503 until it is back"
BACK = "database available again"


class Service:
    """``telemon serve --roles api`` on a private database, its log in a file."""

    def __init__(self, database_url: str, state_dir: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir / "service.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")}
        env.update(
            TELEMON_DATABASE_URL=database_url,
            TELEMON_STATE_DIR=str(state_dir),
            TELEMON_LOG_LEVEL="INFO",
            TELEMON_DB_POOL_SIZE="4",
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "telemon", "serve", "--roles", "api", "--port", str(self.port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def entries(self) -> list[dict[str, Any]]:
        found = []
        for line in self.lines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        return found

    def count(self, message: str) -> int:
        return sum(1 for entry in self.entries() if entry.get("message") == message)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@asynccontextmanager
async def running(database_url: str, state_dir: Path) -> AsyncIterator[Service]:
    service = Service(database_url, state_dir)
    try:
        yield service
    finally:
        await asyncio.to_thread(service.stop)


async def until(check: Callable[[], Any], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


async def ready_status(http: httpx.AsyncClient) -> int | None:
    try:
        return (await http.get("/readyz", timeout=3)).status_code
    except httpx.HTTPError:
        return None


async def test_serve_started_while_the_database_is_down_waits_and_connects(tmp_path: Path) -> None:
    with private_postgres() as pg:
        await asyncio.to_thread(pg.stop)
        async with running(pg.url(), tmp_path) as service, httpx.AsyncClient(base_url=service.base_url) as http:
            await until(lambda: service.count(WAITING) == 1, 30, "the wait is logged")
            await asyncio.sleep(2)  # it keeps waiting: neither exiting nor logging each attempt
            assert service.process.poll() is None
            assert service.count(WAITING) == 1
            await asyncio.to_thread(pg.start)
            await until(lambda: ready_status(http), 60, "/readyz answers")
            assert await ready_status(http) == 200
            assert service.count("database available") == 1
            assert service.process.poll() is None
            assert not [line for line in service.lines() if "Traceback" in line]


async def test_a_setting_wrong_for_good_stops_serve_at_once_with_one_line(tmp_path: Path) -> None:
    with private_postgres() as pg:
        service = Service(pg.url("no_such_database"), tmp_path)
        try:
            code = await asyncio.to_thread(service.process.wait, 30)  # raises if it waited instead
        finally:
            service.stop()
        lines = [line for line in service.lines() if line.startswith("telemon:")]
        assert code == 2
        assert len(lines) == 1 and "TELEMON_DATABASE_URL" in lines[0] and "no_such_database" in lines[0]
        assert service.count(WAITING) == 0


async def _seed(pg: PrivatePostgres) -> dict[str, Any]:
    pool = await create_pool(pg.url(), max_size=2)
    try:
        team = await make_team(pool)
        email = await make_clinician(pool, team)
        setup = await patient_with_device(pool, due_date=DUE_2013)
        read_key = await api_key(pool, "readings:read", teams=[setup.team_id])
        write_key = await api_key(pool, "readings:write", teams=[setup.team_id])
    finally:
        await pool.close()
    return {"email": email, "setup": setup, "read_key": read_key, "write_key": write_key}


@pytest.mark.parametrize("mode", ["fast", "immediate"])  # a restart (connections cut cleanly), a crash
async def test_an_outage_answers_503_logs_once_and_recovers_by_itself(tmp_path: Path, mode: str) -> None:
    with private_postgres() as pg:
        async with running(pg.url(), tmp_path) as service, httpx.AsyncClient(base_url=service.base_url) as http:
            await until(lambda: ready_status(http), 60, "the service starts")
            assert await ready_status(http) == 200
            seeded = await _seed(pg)
            setup = seeded["setup"]
            token = csrf_of((await http.get("/login")).text)
            signed = await http.post(
                "/login", data={"email": seeded["email"], "password": PASSWORD, "csrf_token": token, "next": "/"}
            )
            assert signed.status_code == 303

            def requests() -> list[tuple[str, Any]]:
                readings = f"/api/v1/patients/{setup.patient_id}/readings"
                ns = {"api-secret": nightscout_secret(setup.token)}
                observation = example("r4", setup.patient_id)
                return [
                    ("api", http.get(readings, headers={"Authorization": f"Bearer {seeded['read_key']}"})),
                    ("dashboard", http.get("/", headers={"Accept-Language": "en"})),
                    ("ns", http.get("/ns/api/v1/entries.json", headers=ns)),
                    ("fhir", http.post("/fhir/Observation", json=observation, headers=auth(seeded["write_key"]))),
                ]

            before = {name: (await call).status_code for name, call in requests()}
            assert before == {"api": 200, "dashboard": 200, "ns": 200, "fhir": 201}

            await asyncio.to_thread(pg.stop, mode)
            for _ in range(3):
                answers = {name: await call for name, call in requests()}
                for name, answer in answers.items():
                    assert answer.status_code == 503, (name, answer.text)
                    assert int(answer.headers["retry-after"]) > 0
                    assert answer.headers["cache-control"] == "no-store"
                    assert "Traceback" not in answer.text
                assert answers["api"].json() == {"detail": "the database is unavailable; retry in a few seconds"}
                assert answers["ns"].json()["detail"].startswith("the database is unavailable")
                outcome = answers["fhir"].json()
                assert outcome["resourceType"] == "OperationOutcome"
                assert outcome["issue"][0]["code"] == "transient"
                assert answers["fhir"].headers["content-type"].startswith("application/fhir+json")
                assert answers["dashboard"].headers["content-type"].startswith("text/html")
                assert "database is unavailable" in answers["dashboard"].text
                ready = await http.get("/readyz")
                assert ready.status_code == 503 and ready.json()["checks"]["database"] is False
            assert (await http.get("/healthz")).status_code == 200
            assert service.count(OUTAGE) == 1
            assert service.count(BACK) == 0

            await asyncio.to_thread(pg.start)
            # the very first request after the return succeeds: the pool replaced its broken connections
            first = await http.get(
                f"/api/v1/patients/{setup.patient_id}/readings",
                headers={"Authorization": f"Bearer {seeded['read_key']}"},
            )
            assert first.status_code == 200, first.text
            after = {name: (await call).status_code for name, call in requests()}
            assert after == {"api": 200, "dashboard": 200, "ns": 200, "fhir": 200}  # the FHIR resend: a duplicate
            assert await ready_status(http) == 200
            await until(lambda: service.count(BACK) == 1, 10, "the end of the outage is logged")
            assert service.process.poll() is None
            entries = service.entries()
            assert service.count(OUTAGE) == 1
            # the alert engine's worker reports its own failures (a batch evaluated when the database went away)
            ours = [e for e in entries if not str(e.get("logger", "")).startswith("alerts.")]
            assert not [e for e in ours if e.get("level") in ("ERROR", "CRITICAL") or "exception" in e]


async def test_the_scheduler_survives_an_outage_and_one_process_leads_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="telemon.scheduler")
    with private_postgres() as pg:
        pool = await create_pool(pg.url(), max_size=4)
        runs: list[int] = []

        async def tick(db: Any) -> None:
            runs.append(await db.fetchval("SELECT 1"))

        jobs = {"tick": Job("tick", tick, "interval", {"seconds": 0.1})}
        schedulers = [Scheduler(pool, jobs, retry_seconds=0.2, check_seconds=0.2) for _ in range(2)]
        for scheduler in schedulers:
            scheduler.start()
        try:
            await until(lambda: sum(s.is_leader for s in schedulers) == 1 and runs, 10, "one leader runs the job")

            def records(message: str) -> list[logging.LogRecord]:
                return [r for r in caplog.records if r.name == "telemon.scheduler" and r.getMessage() == message]

            await asyncio.to_thread(pg.stop, "immediate")
            await until(lambda: not any(s.is_leader for s in schedulers), 10, "the leader steps down")
            await until(lambda: all(s.unavailable_since for s in schedulers), 10, "both see the outage")
            await asyncio.sleep(1.5)  # several retries of both, and of the job if it still ran
            assert not any(s.is_leader for s in schedulers)
            assert len(records("scheduler: database unavailable; jobs stop until it is back")) == 2  # once each
            assert len(records("scheduled job not done: database unavailable")) <= 1
            assert not [r for r in caplog.records if r.name == "telemon.scheduler" and r.exc_info]

            await asyncio.to_thread(pg.start)
            before = len(runs)
            await until(lambda: sum(s.is_leader for s in schedulers) == 1 and len(runs) > before, 20, "a leader again")
            await asyncio.sleep(0.5)
            assert sum(s.is_leader for s in schedulers) == 1  # never two
            assert len(records("scheduler: database available again")) == 2
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        finally:
            for scheduler in schedulers:
                await scheduler.stop()
            await pool.close()
