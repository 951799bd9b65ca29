"""The alert engine through a database outage, on a private PostgreSQL that is stopped and started again: the
engine worker keeps the patients whose pass failed and evaluates them once the database answers, the scheduled
alert jobs skip their runs without failing, each says so once for the whole outage, and nothing stops for good."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from alerts import scheduled
from telemon.app.services import open_services
from telemon.db import connect
from telemon.settings import Settings
from tests.support.factories import patient_with_device
from tests.support.postgres import PrivatePostgres, private_postgres

pytestmark = pytest.mark.slow

OUTAGE_S = 6.0  # long enough for several attempts of the worker (it retries after 1, 2, 4 s)


@pytest.fixture
def server() -> Iterator[PrivatePostgres]:
    with private_postgres() as started:
        yield started


async def _hypo(db: asyncpg.Pool, patient_id: uuid.UUID, device_id: str) -> None:
    """A stored hypo, written straight into the table: no ingest, so nothing hands the patient to the engine."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
    await db.execute(
        "INSERT INTO readings (patient_id, device_id, kind, device_time, value_raw, unit_raw, value_mgdl,"
        " measured_at, context, context_inferred, source)"
        " VALUES ($1, $2, 'smbg', $3, 40, 'mg/dL', 40, $3, 'before_meal', false, 'http')",
        patient_id,
        device_id,
        at,
    )


def _messages(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


@pytest.mark.parametrize("mode", ["fast", "immediate"])  # a clean restart, a crash
async def test_the_engine_keeps_its_patients_through_an_outage_and_says_so_once(
    server: PrivatePostgres, settings: Settings, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    caplog.set_level(logging.INFO)
    admin = await connect(server.url())
    try:
        await admin.execute("CREATE DATABASE telemon")
    finally:
        await admin.close()
    private = dataclasses.replace(settings, database_url=server.url("telemon"), db_pool_size=4)
    async with open_services(private) as services:
        worker = services.worker
        assert worker is not None
        db = services.pool
        patients = [await patient_with_device(db, treatment="insulin") for _ in range(3)]
        for p in patients:
            await _hypo(db, p.patient_id, p.device_id)

        server.stop(mode)
        await worker.submit([patients[0].patient_id, patients[1].patient_id])
        for _ in range(2):  # the scheduled jobs' runs during the outage: skipped, not failed
            assert await scheduled.evaluate_population(db) == 0
            assert await scheduled.evaluate_cgm_patients(db) == 0
        await asyncio.sleep(OUTAGE_S / 2)
        await worker.submit([patients[2].patient_id])  # a batch committed just before: handed over mid-outage
        await asyncio.sleep(OUTAGE_S / 2)
        assert worker.pending == 3  # none of them lost
        server.start()
        back = time.monotonic()
        await asyncio.wait_for(worker.drain(), 60)
        recovered_s = time.monotonic() - back

        opened = await db.fetch(
            "SELECT patient_id FROM alerts WHERE rule = 'hypo_l2' AND status = 'open' AND patient_id = ANY($1::uuid[])",
            [p.patient_id for p in patients],
        )
        assert {r["patient_id"] for r in opened} == {p.patient_id for p in patients}
        # the scheduled pass runs again once the database answers
        assert await scheduled.evaluate_population(db) >= 0
        print(f"\nalert engine: the held patients evaluated {recovered_s:.1f} s after PostgreSQL came back")

        # and it still works for what comes next
        later = await patient_with_device(db, treatment="insulin")
        await _hypo(db, later.patient_id, later.device_id)
        await worker.submit([later.patient_id])
        await asyncio.wait_for(worker.drain(), 30)
        assert await db.fetchval(
            "SELECT count(*) FROM alerts WHERE patient_id = $1 AND rule = 'hypo_l2'", later.patient_id
        )

    engine_log = _messages(caplog, "alerts.engine")
    assert sum("database unavailable" in m for m in engine_log) == 1, engine_log
    assert sum("database answers again" in m for m in engine_log) == 1, engine_log
    assert not [r for r in caplog.records if r.name == "alerts.engine" and r.levelno >= logging.ERROR]
    jobs_log = _messages(caplog, "alerts.scheduled")
    assert sum("database unavailable" in m for m in jobs_log) == 1, jobs_log
    assert sum("database answers again" in m for m in jobs_log) == 1, jobs_log
    assert worker.outages == 1
