"""Insulin doses, ketones, weight and blood pressure through the device contract, HTTP and MQTT, against the real
database and broker: stored in the same transaction as the sync's glucose readings, bad items refused alone by
index, a re-sent sync all duplicates, hostile values never a 500 and never holding MQTT back."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import asyncpg
import httpx
import pytest

from ingest.readings import Prepared, Submission
from ingest.service import IngestService, devices_by_ids
from telemon.settings import Settings
from tests.support.factories import Setup, patient_with_device
from tests.support.mqtt import Receipts, publish, publisher, running_consumer


def _ago(minutes: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def _sync() -> list[dict[str, Any]]:
    """A companion-app sync: a fasting reading, the evening's NPH, ketones, weight and a high blood pressure, with
    three bad items among them (indices 2, 5 and 8)."""
    return [
        {"measured_at": _ago(60), "value": 5.6, "unit": "mmol/L", "context": "fasting"},
        {"kind": "insulin", "measured_at": _ago(600), "units": 10, "insulin": "basal", "product": "NPH",
         "slot": "bedtime"},
        {"kind": "insulin", "measured_at": _ago(300), "units": 1000, "insulin": "rapid"},
        {"kind": "ketone", "measured_at": _ago(58), "value": 0.4, "unit": "mmol/L"},
        {"kind": "ketone", "measured_at": _ago(57), "urine": "trace"},
        {"kind": "ketone", "measured_at": _ago(56), "urine": "lots"},
        {"kind": "weight", "measured_at": _ago(55), "value": 72.5, "unit": "kg"},
        {"kind": "blood_pressure", "measured_at": _ago(50), "systolic": 165, "diastolic": 112, "pulse": 88,
         "unit": "mmHg"},
        {"kind": "blood_pressure", "measured_at": _ago(49), "systolic": 90, "diastolic": 120, "unit": "mmHg"},
    ]  # fmt: skip


REFUSED = [
    {"index": 2, "reason": "units: 1000 U is outside the plausible range (above 0 to 160 U)"},
    {"index": 5, "reason": "urine: 'lots' is not one of negative, trace, +, ++, +++"},
    {"index": 8, "reason": "diastolic: 120 mmHg is not below the systolic 90 mmHg"},
]


async def _stored(db: asyncpg.Pool, setup: Setup) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT kind, value, urine, insulin, product, slot, systolic, diastolic, pulse, source FROM measurements"
        " WHERE patient_id = $1 AND device_id = $2 ORDER BY measured_at",
        setup.patient_id,
        setup.device_id,
    )
    return [tuple(r.values()) for r in rows]


def _expected(source: str) -> list[tuple[Any, ...]]:
    return [
        ("insulin", 10.0, None, "basal", "NPH", "bedtime", None, None, None, source),
        ("ketone", 0.4, None, None, None, None, None, None, None, source),
        ("ketone", None, "trace", None, None, None, None, None, None, source),
        ("weight", 72.5, None, None, None, None, None, None, None, source),
        ("blood_pressure", None, None, None, None, None, 165.0, 112.0, 88.0, source),
    ]


async def test_an_http_sync_mixing_glucose_and_other_kinds(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="app")
    headers = {"Authorization": f"Bearer {setup.token}"}
    items = _sync()
    first = await client.post("/api/v1/readings", json={"readings": items}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"accepted": 6, "duplicates": 0, "rejected": REFUSED}
    again = await client.post("/api/v1/readings", json={"readings": items}, headers=headers)
    assert again.json() == {"accepted": 0, "duplicates": 6, "rejected": REFUSED}
    assert await _stored(db, setup) == _expected("http")
    assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", setup.patient_id) == 1
    recorded = await db.fetch(
        "SELECT item_index, reason, raw FROM ingest_rejections WHERE device_id = $1 ORDER BY id", setup.device_id
    )
    assert [(r["item_index"], r["reason"]) for r in recorded] == [(r["index"], r["reason"]) for r in REFUSED] * 2
    assert json.loads(recorded[0]["raw"])["units"] == 1000


async def test_a_sync_of_only_other_kinds_and_a_partly_new_resend(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    """No glucose at all still stores and counts; a re-sent sync with one new dose adds only that dose."""
    setup = await patient_with_device(db, kind="app")
    headers = {"Authorization": f"Bearer {setup.token}"}
    dose = {"kind": "insulin", "measured_at": _ago(120), "units": 4, "insulin": "rapid", "slot": "breakfast"}
    weight = {"kind": "weight", "measured_at": _ago(100), "value": 70.1, "unit": "kg"}
    first = await client.post("/api/v1/readings", json={"readings": [dose, weight]}, headers=headers)
    assert first.json() == {"accepted": 2, "duplicates": 0, "rejected": []}
    lunch = {**dose, "measured_at": _ago(20), "slot": "lunch"}
    glucose = {"measured_at": _ago(10), "value": 118, "unit": "mg/dL"}
    second = await client.post("/api/v1/readings", json={"readings": [dose, weight, lunch, glucose]}, headers=headers)
    assert second.json() == {"accepted": 2, "duplicates": 2, "rejected": []}
    count = await db.fetchval("SELECT count(*) FROM measurements WHERE patient_id = $1", setup.patient_id)
    assert count == 3


class _Leaky(IngestService):
    """Validation that lets through a urine reading the database refuses (its CHECK of the urine scale)."""

    def validate(self, submission: Submission, now: dt.datetime) -> Prepared:
        prepared = super().validate(submission, now)
        for measurement in prepared.measurements:
            measurement.urine = "lots" if measurement.urine else None
        return prepared


async def test_the_other_kinds_are_stored_in_the_glucose_transaction(db: asyncpg.Pool) -> None:
    """When the measurements of a sync cannot be stored, neither are its glucose readings: one transaction."""
    setup = await patient_with_device(db, kind="app")
    device = (await devices_by_ids(db, [setup.device_id]))[setup.device_id]
    items = [_sync()[0], _sync()[4]]  # a glucose reading and a urine ketone
    with pytest.raises(asyncpg.CheckViolationError):
        await _Leaky(db).receive({"readings": items}, device, "test")
    assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", setup.patient_id) == 0
    receipt = await IngestService(db).receive({"readings": items}, device, "test")
    assert (receipt.accepted, receipt.duplicates) == (2, 0)


HOSTILE_BODY = (
    '{"readings": ['
    '{"kind": "weight", "measured_at": "%(at)s", "value": NaN, "unit": "kg"},'
    '{"kind": "insulin", "measured_at": "%(at)s", "units": 1e999, "insulin": "basal"},'
    '{"kind": "insulin", "measured_at": "%(at)s", "units": 99999999999999999999999999999999999999999, "insulin": "basal"},'
    '{"kind": "blood_pressure", "measured_at": "%(at)s", "systolic": "142", "diastolic": 91},'
    '{"kind": "insulin", "measured_at": "%(at)s", "units": 6, "product": "Humalog\\u0000"},'
    '{"kind": "ketone", "measured_at": "%(at)s", "urine": "+", "note": "\\ud800"},'
    '{"kind": "weight", "measured_at": "%(at)s", "value": {"kg": [[[1]]]}, "unit": "kg"},'
    '{"kind": "blood_pressure", "measured_at": "%(at)s", "systolic": 120, "diastolic": 80, "unit": "mmHg"}'
    "]}"
)
HOSTILE_REASONS = [
    (0, "value: nan is not a finite number"),
    (1, "units: inf is not a finite number"),
    (2, "units: 1e+41 U is outside the plausible range (above 0 to 160 U)"),
    (3, "systolic: expected a number, got str"),
    (4, "product: contains a NUL character"),
    (5, "note: is not valid Unicode (a lone UTF-16 surrogate)"),
    (6, "value: expected a number, got dict"),
]


async def test_hostile_values_over_http_are_refused_alone_never_a_500(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, kind="app")
    body = HOSTILE_BODY % {"at": _ago(30)}
    headers = {"Authorization": f"Bearer {setup.token}", "Content-Type": "application/json"}
    response = await client.post("/api/v1/readings", content=body.encode(), headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == HOSTILE_REASONS
    assert answer["accepted"] == 1
    raws = await db.fetch("SELECT raw FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert len(raws) == len(HOSTILE_REASONS) and all("\x00" not in r["raw"] for r in raws)


async def test_an_mqtt_sync_mixing_kinds_then_hostile_values_never_hold_the_next_message(
    settings: Settings, mqtt_url: str, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, kind="app")
    items = _sync()
    async with running_consumer(settings, mqtt_url) as services:
        assert services.consumer is not None
        with Receipts(mqtt_url, [setup.device_id]) as receipts, publisher(mqtt_url) as pub:
            publish(pub, setup.device_id, {"readings": items})
            publish(pub, setup.device_id, (HOSTILE_BODY % {"at": _ago(30)}).encode())
            publish(pub, setup.device_id, {"readings": items})
            first, hostile, again = await receipts.wait_for(3, timeout=15)
        assert services.consumer.ready()
    assert first == {"accepted": 6, "duplicates": 0, "rejected": REFUSED}
    assert [(r["index"], r["reason"]) for r in hostile["rejected"]] == HOSTILE_REASONS
    assert hostile["accepted"] == 1
    assert again == {"accepted": 0, "duplicates": 6, "rejected": REFUSED}
    stored = await _stored(db, setup)
    assert stored[:5] == _expected("mqtt")
    assert stored[5][0] == "blood_pressure" and stored[5][6:8] == (120.0, 80.0)
