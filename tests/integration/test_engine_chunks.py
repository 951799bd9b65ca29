"""The scheduled pass evaluates the population in chunks sized on readings, not only on patients: a chunk of CGM
wearers (thousands of readings each) would hold the event loop, and with it ingest and urgent alerts, for as long
as it takes to load and reconcile. Every patient is still evaluated once. The minute pass over CGM wearers loads
only the hours its rules look back."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from typing import Any

import asyncpg

from alerts.engine import FIRST_CHUNK, Engine
from alerts.load import CGM_MINUTE_WINDOW, load_cohort
from alerts.rules import CGM_MINUTE_RULES
from ingest.service import IngestService, devices_by_ids
from tests.support.factories import patient_with_device

READINGS = 100  # each wearer's readings, every 5 minutes up to now


async def test_each_chunk_is_sized_on_the_readings_of_the_one_before(db: asyncpg.Pool) -> None:
    wearers = [await patient_with_device(db, kind="cgm") for _ in range(4)]
    now = dt.datetime.now(dt.UTC)
    service = IngestService(db)
    for wearer in wearers:
        device = (await devices_by_ids(db, [wearer.device_id]))[wearer.device_id]
        items = [
            {"measured_at": (now - dt.timedelta(minutes=5 * i, seconds=1)).isoformat(), "value": 100 + i % 7,
             "unit": "mg/dL", "kind": "cgm"}
            for i in range(READINGS)
        ]  # fmt: skip
        assert (await service.receive({"readings": items}, device, "http")).accepted == READINGS

    engine = Engine(db)
    evaluate = engine.evaluate
    chunks: list[tuple[list[uuid.UUID], int]] = []  # the patients of each chunk, the readings of their windows

    async def recorded(ids: list[uuid.UUID], **kwargs: Any) -> Any:
        changes = await evaluate(ids, **kwargs)
        chunks.append((list(ids), sum(kwargs["sizes"].values())))
        return changes

    engine.evaluate = recorded  # type: ignore[method-assign, assignment]
    # patients, readings a chunk: one of these wearers (72 readings in the pass's 6-hour window) among two others
    # without any makes a chunk of 24 readings a patient, after which a chunk may hold aim / 24 < 2 patients
    most, aim = 3, 40
    in_window = CGM_MINUTE_WINDOW // dt.timedelta(minutes=5)
    assert aim * most < 2 * in_window
    await engine.evaluate_population(cgm_only=True, chunk=most, chunk_readings=aim)

    # every CGM wearer of the database once, in order (other tests' wearers too)
    evaluated = [patient for ids, _ in chunks for patient in ids]
    assert evaluated == sorted(evaluated) and len(set(evaluated)) == len(evaluated)
    assert {w.patient_id for w in wearers} <= set(evaluated)
    assert len(chunks[0][0]) <= min(most, FIRST_CHUNK)
    for (before, readings), (ids, _) in itertools.pairwise(chunks):
        per_patient = max(readings / len(before), 1.0)
        assert len(ids) <= max(1, min(most, int(aim / per_patient), 2 * len(before))), (len(before), readings, len(ids))
    # a chunk holding one of these wearers holds at least 24 readings a patient (72 among at most 3 patients, other
    # tests' wearers beside them): the next chunk holds one patient
    mine = {w.patient_id for w in wearers}
    after_mine = [ids for (before, _), (ids, _) in itertools.pairwise(chunks) if mine & set(before)]
    assert after_mine and all(len(ids) == 1 for ids in after_mine)


async def test_the_minute_pass_runs_the_time_critical_sensor_rules_on_the_last_hours(db: asyncpg.Pool) -> None:
    """Every minute, only what cannot wait (a silent sensor, a predicted or rapid fall), over the last 6 hours: the
    14-day range review and its 4,032 readings a wearer wait for the 5-minute pass."""
    assert {rule.__name__ for rule in CGM_MINUTE_RULES} == {"cgm_stale", "cgm_predicted_low", "cgm_rapid_fall"}
    wearer = await patient_with_device(db, kind="cgm")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    items = [
        {"measured_at": (now - dt.timedelta(minutes=20 + 30 * i)).isoformat(), "value": 110, "unit": "mg/dL",
         "kind": "cgm"}
        for i in range(144)  # a reading every half hour over the last 3 days
    ]  # fmt: skip
    device = (await devices_by_ids(db, [wearer.device_id]))[wearer.device_id]
    assert (await IngestService(db).receive({"readings": items}, device, "http")).accepted == 144
    async with db.acquire() as conn:
        full, _ = await load_cohort(conn, [wearer.patient_id])
        short, _ = await load_cohort(conn, [wearer.patient_id], window=CGM_MINUTE_WINDOW)
    # the window starts at the local midnight of its first day (a day's readings are placed among each other), with
    # the reading before: 6 hours load at most 30 hours, and 12 readings at least
    assert len(full.t) == 144 and 12 <= len(short.t) <= 30 * 2 + 1
