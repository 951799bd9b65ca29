"""The engine worker evaluates a patient whose new readings may raise an alert to act on within minutes (a low, a
falling CGM) at once, in a pass of her own, while the other patients handed over wait for the rhythm's next pass.

Each test runs a worker of its own whose rhythm is an hour (``min_interval``): a patient evaluated before the end
of the test was evaluated without waiting for it. Readings are stored through the real ingest service (with no
worker registered, so that only the test's worker hears of them) and handed over as the service's rows."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest

from alerts.engine import URGENT_BELOW_MGDL, Engine, EngineWorker
from ingest.readings import Row, prepare
from ingest.service import IngestService, devices_by_ids
from tests.support.factories import Setup, patient_with_device

HOUR = 3600.0


async def _store(db: asyncpg.Pool, setup: Setup, *readings: tuple[float, float]) -> list[Row]:
    """Store ``(minutes ago, mg/dL)`` readings of the patient's device; the rows the service stored."""
    device = (await devices_by_ids(db, [setup.device_id]))[setup.device_id]
    now = dt.datetime.now(dt.UTC)
    kind = "cgm" if device.device_kind == "cgm" else "smbg"
    items: list[dict[str, Any]] = [
        {"measured_at": (now - dt.timedelta(minutes=ago, seconds=1)).isoformat(), "value": value, "unit": "mg/dL",
         "kind": kind}
        for ago, value in readings
    ]  # fmt: skip
    payload = {"readings": items}
    rows = prepare(payload, device, now=now, source="http", max_readings=100).rows
    receipt = await IngestService(db).receive(payload, device, "http")
    assert receipt.accepted == len(items) == len(rows)
    return rows


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition``; fail when it has not come true long after any pass would have run (the rhythm
    under test is an hour: this is not a measure of time, only a bound on a wait that would never end)."""
    for _ in range(6000):
        if condition():
            return
        await asyncio.sleep(0.01)
    pytest.fail(what)


async def _hypo_l2(db: asyncpg.Pool, setup: Setup) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM alerts WHERE patient_id = $1 AND rule = 'hypo_l2' AND status = 'open'", setup.patient_id
    )
    return count


async def test_a_low_is_evaluated_at_once_while_the_others_wait_for_the_rhythm(db: asyncpg.Pool) -> None:
    first, calm, low = [await patient_with_device(db, treatment="insulin") for _ in range(3)]
    worker = EngineWorker(Engine(db), min_interval=HOUR)
    worker.start()
    try:
        await worker.submit([first.patient_id], await _store(db, first, (30, 110)))
        await worker.drain()  # the first pass runs at once; the rhythm's next one is an hour away
        assert (worker.passes, worker.urgent_passes) == (1, 0)

        await worker.submit([calm.patient_id], await _store(db, calm, (20, 112), (1, 108)))
        await worker.submit([low.patient_id], await _store(db, low, (20, 108), (1, 45)))  # level 2: < 54 mg/dL
        await _until(lambda: worker.passes == 2, "the patient with a low waited for the rhythm")
        # her pass was hers alone: the calm patient handed over before her still waits for the rhythm
        assert (worker.urgent_passes, worker.pending) == (1, 1)
        assert await _hypo_l2(db, low) == 1
    finally:
        await worker.stop()  # shutting down evaluates what waits
    assert (worker.passes, worker.urgent_passes, worker.pending) == (3, 1, 0)


async def test_what_makes_a_patient_urgent(db: asyncpg.Pool) -> None:
    """Lows below the highest hypoglycaemia threshold; a fresh CGM fall, seen across two hand-overs as a sensor
    sends one reading a time, at the rapid-fall rate. Not: a value above it, a slow fall, a rise, an old fall."""
    worker = EngineWorker(Engine(db), min_interval=HOUR)  # never started: only its judgement is asked
    meter = await patient_with_device(db)
    fast, slow, rising, old = [await patient_with_device(db, kind="cgm") for _ in range(4)]
    assert worker.urgent_patients(await _store(db, meter, (90, URGENT_BELOW_MGDL + 1))) == set()
    assert worker.urgent_patients(await _store(db, meter, (60, URGENT_BELOW_MGDL - 1))) == {meter.patient_id}

    falls = ((fast, 110, 92), (slow, 120, 115), (rising, 100, 110))  # mg/dL 5 minutes ago, now
    handed: list[Row] = []
    for setup, before, _ in falls:
        handed += await _store(db, setup, (5, before))
    handed += await _store(db, old, (70, 110), (65, 80))  # a fall an hour old: a backfill, not a sensor now
    assert worker.urgent_patients(handed) == set()  # one reading each: no fall yet
    handed = []
    for setup, _, now in falls:
        handed += await _store(db, setup, (0, now))
    assert worker.urgent_patients(handed) == {fast.patient_id}  # 18 mg/dL in 5 minutes: 3.6 mg/dL a minute

    # and the urgent patient is evaluated at once: a pass of her own, the others wait for the rhythm
    worker.start()
    try:
        await worker.submit([meter.patient_id])  # the first pass, at once
        await worker.drain()
        await worker.submit([fast.patient_id, slow.patient_id], await _store(db, fast, (0, 80)))
        await _until(lambda: worker.urgent_passes == 1, "the falling CGM waited for the rhythm")
        assert worker.pending == 1  # the slow fall waits
    finally:
        await worker.stop()
