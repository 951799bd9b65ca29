"""The MQTT consumer against the real broker and database: replay, receipts, clock correction, garbage."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import uuid
from pathlib import Path

import asyncpg
import httpx

from telemon.settings import Settings
from tests.support.data import IGLU_DUE_DATE, IGLU_ZONE, iglu_by_subject, utc
from tests.support.factories import Setup, patient_with_device
from tests.support.mosquitto import start_mosquitto
from tests.support.mqtt import Receipts, forget_session, publish, publisher, running_consumer


def _chunks(items: list[dict[str, object]], size: int) -> list[list[dict[str, object]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def _iglu_patients(db: asyncpg.Pool) -> dict[str, Setup]:
    return {
        subject: await patient_with_device(db, kind="cgm", time_zone=IGLU_ZONE, due_date=IGLU_DUE_DATE)
        for subject in iglu_by_subject()
    }


async def _check_stored(db: asyncpg.Pool, patients: dict[str, Setup]) -> None:
    for subject, readings in iglu_by_subject().items():
        rows = await db.fetch(
            "SELECT measured_at, value_mgdl FROM readings WHERE patient_id = $1 ORDER BY measured_at",
            patients[subject].patient_id,
        )
        expected = sorted((utc(t), float(v)) for t, v in readings)
        assert [(r["measured_at"], r["value_mgdl"]) for r in rows] == expected, subject


async def test_iglu_replayed_over_http_twice(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    patients = await _iglu_patients(db)
    sent = 0
    for round_ in (1, 2):
        totals = {"accepted": 0, "duplicates": 0}
        for subject, readings in iglu_by_subject().items():
            items = [{"measured_at": t, "value": v, "unit": "mg/dL", "kind": "cgm"} for t, v in readings]
            for chunk in _chunks(items, 1000):
                response = await client.post(
                    "/api/v1/readings",
                    json={"readings": chunk},
                    headers={"Authorization": f"Bearer {patients[subject].token}"},
                )
                body = response.json()
                assert body["rejected"] == []
                totals["accepted"] += body["accepted"]
                totals["duplicates"] += body["duplicates"]
                sent += len(chunk) if round_ == 1 else 0
        if round_ == 1:
            assert totals == {"accepted": sent, "duplicates": 0}
        else:
            assert totals == {"accepted": 0, "duplicates": sent}
    assert sent == 13_866
    await _check_stored(db, patients)


async def test_iglu_replayed_over_mqtt_twice(settings: Settings, mqtt_url: str, db: asyncpg.Pool) -> None:
    patients = await _iglu_patients(db)
    messages = [
        (patients[subject].device_id, chunk)
        for subject, readings in iglu_by_subject().items()
        for chunk in _chunks([{"measured_at": t, "value": v, "unit": "mg/dL"} for t, v in readings], 100)
    ]
    async with running_consumer(settings, mqtt_url):
        with Receipts(mqtt_url, [s.device_id for s in patients.values()]) as receipts, publisher(mqtt_url) as pub:
            for device_id, chunk in messages:
                publish(pub, device_id, {"readings": chunk})
            first = await receipts.wait_for(len(messages))
            assert sum(r["accepted"] for r in first) == 13_866
            assert all(r["rejected"] == [] and r["duplicates"] == 0 for r in first)
            for device_id, chunk in messages:
                publish(pub, device_id, {"readings": chunk})
            second = (await receipts.wait_for(2 * len(messages)))[len(messages) :]
            assert sum(r["accepted"] for r in second) == 0
            assert sum(r["duplicates"] for r in second) == 13_866
    await _check_stored(db, patients)


async def test_meter_three_hours_off_is_corrected_and_resync_adds_nothing(
    settings: Settings, mqtt_url: str, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, time_zone="Europe/Paris")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    skew = dt.timedelta(hours=3)
    true_times = [now - dt.timedelta(days=2) + dt.timedelta(hours=5 * i) for i in range(8)]
    memory = [
        {"measured_at": (t + skew).isoformat(), "value": 100 + i, "unit": "mg/dL"} for i, t in enumerate(true_times)
    ]
    async with running_consumer(settings, mqtt_url):
        with Receipts(mqtt_url, [setup.device_id]) as receipts, publisher(mqtt_url) as pub:
            publish(pub, setup.device_id, {"device_time": (now + skew).isoformat(), "readings": memory})
            assert (await receipts.wait_for(1))[0] == {"accepted": 8, "duplicates": 0, "rejected": []}
            # the clock was fixed; the meter re-sends its whole memory, still stamped with the wrong times
            publish(pub, setup.device_id, {"device_time": now.isoformat(), "readings": memory})
            assert (await receipts.wait_for(2))[1] == {"accepted": 0, "duplicates": 8, "rejected": []}
    rows = await db.fetch(
        "SELECT measured_at, device_time, clock_offset_s FROM readings WHERE patient_id = $1 ORDER BY measured_at",
        setup.patient_id,
    )
    assert len(rows) == 8
    for row, true_time in zip(rows, true_times, strict=True):
        assert abs((row["measured_at"] - true_time).total_seconds()) < 5
        assert row["device_time"] == true_time + skew
        assert abs(row["clock_offset_s"] + 3 * 3600) < 5


async def test_garbage_is_recorded_and_the_consumer_carries_on(
    settings: Settings, mqtt_url: str, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db)
    recent = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    garbage: list[bytes] = [
        bytes(range(256)) * 4,  # random bytes
        b"[" * 100_000 + b"]" * 100_000,  # deeply nested JSON
        b'{"readings": [' + b'{"value": 1},' * 800_000 + b"{}]}",  # a 10 MB document
        json.dumps({"readings": "many"}).encode(),  # wrong shape
        json.dumps([1, 2, 3]).encode(),  # wrong shape
    ]
    bad_items = [
        {"measured_at": recent, "value": "95", "unit": "mg/dL"},  # wrong type
        {"measured_at": recent, "value": float("nan"), "unit": "mg/dL"},  # NaN
        {"measured_at": recent, "value": float("inf"), "unit": "mg/dL"},  # Infinity
        {"measured_at": "9999-12-31T23:59:59Z", "value": 95, "unit": "mg/dL"},  # year 9999
        {"measured_at": recent, "value": 95, "unit": "furlongs"},
        {"measured_at": "yesterday", "value": 95, "unit": "mg/dL"},
        {"measured_at": recent, "value": 95, "unit": "mg/dL", "context": "brunch"},
        {"measured_at": recent, "value": 2000, "unit": "mg/dL"},
    ]
    good = {"measured_at": recent, "value": 92, "unit": "mg/dL", "context": "fasting"}
    async with running_consumer(settings, mqtt_url) as services:
        with Receipts(mqtt_url, [setup.device_id]) as receipts, publisher(mqtt_url) as pub:
            for payload in garbage:
                publish(pub, setup.device_id, payload)
            publish(pub, setup.device_id, json.dumps({"readings": [*bad_items, good]}, allow_nan=True).encode())
            answers = await receipts.wait_for(len(garbage) + 1)
        assert services.consumer is not None and services.consumer.is_connected()
    reasons = [a["rejected"][0]["reason"] for a in answers[: len(garbage)]]
    assert reasons[0].startswith("payload is not JSON")
    assert reasons[1].startswith("payload is not JSON")
    assert reasons[2].startswith("payload of ")
    assert "exceeds" in reasons[2]
    assert reasons[3].startswith("expected an object")
    assert reasons[4].startswith("expected an object")
    last = answers[-1]
    assert last["accepted"] == 1
    assert [r["index"] for r in last["rejected"]] == list(range(len(bad_items)))
    by_index = {r["index"]: r["reason"] for r in last["rejected"]}
    assert by_index[0] == "value: expected a number, got str"
    assert "not a finite number" in by_index[1] and "not a finite number" in by_index[2]
    assert "in the future" in by_index[3]
    assert "furlongs" in by_index[4]
    assert "not an ISO 8601" in by_index[5]
    assert "brunch" in by_index[6]
    assert "plausible range" in by_index[7]
    recorded = await db.fetchval("SELECT count(*) FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert recorded == len(garbage) + len(bad_items)
    assert (
        await db.fetchval("SELECT max(length(raw)) FROM ingest_rejections WHERE device_id = $1", setup.device_id)
        <= 4096
    )


async def test_unknown_and_disabled_devices_are_refused(settings: Settings, mqtt_url: str, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    await db.execute("UPDATE devices SET active = false WHERE id = $1", setup.device_id)
    ghost = f"meter-{uuid.uuid4().hex[:8]}"
    reading = {"readings": [{"measured_at": dt.datetime.now(dt.UTC).isoformat(), "value": 95, "unit": "mg/dL"}]}
    async with running_consumer(settings, mqtt_url):
        with Receipts(mqtt_url, [setup.device_id, ghost]) as receipts, publisher(mqtt_url) as pub:
            publish(pub, setup.device_id, reading)
            publish(pub, ghost, reading)
            answers = await receipts.wait_for(2)
    assert sorted(a["rejected"][0]["reason"] for a in answers) == sorted(
        [f"device {setup.device_id} is unknown or disabled", f"device {ghost} is unknown or disabled"]
    )
    assert (
        await db.fetchval("SELECT count(*) FROM readings WHERE device_id = ANY($1::text[])", [setup.device_id, ghost])
        == 0
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM ingest_rejections WHERE device_id = ANY($1::text[])", [setup.device_id, ghost]
        )
        == 2
    )


async def test_two_consumers_split_the_load_through_a_shared_subscription(
    settings: Settings, db: asyncpg.Pool, tmp_path: Path
) -> None:
    # a private Mosquitto: the embedded amqtt broker has no shared subscriptions
    with start_mosquitto("allow_anonymous true\n", tmp_path) as (host, port):
        await _split_between_two_consumers(settings, f"mqtt://{host}:{port}", db)


async def _split_between_two_consumers(settings: Settings, mqtt_url: str, db: asyncpg.Pool) -> None:
    group = dataclasses.replace(settings, mqtt_shared_group=f"g{uuid.uuid4().hex[:8]}")
    devices = [await patient_with_device(db) for _ in range(4)]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    async with running_consumer(group, mqtt_url) as first, running_consumer(group, mqtt_url) as second:
        with Receipts(mqtt_url, [d.device_id for d in devices]) as receipts, publisher(mqtt_url) as pub:
            for i in range(200):
                moment = (start + dt.timedelta(minutes=i)).isoformat()
                publish(
                    pub, devices[i % 4].device_id, {"readings": [{"measured_at": moment, "value": 90, "unit": "mg/dL"}]}
                )
            answers = await receipts.wait_for(200)
        assert first.consumer is not None and second.consumer is not None
        assert first.consumer.stored_messages > 0 and second.consumer.stored_messages > 0
        assert first.consumer.stored_messages + second.consumer.stored_messages == 200
    assert sum(a["accepted"] for a in answers) == 200
    stored = await db.fetchval(
        "SELECT count(*) FROM readings WHERE patient_id = ANY($1::uuid[])", [d.patient_id for d in devices]
    )
    assert stored == 200


async def test_the_consumer_reconnects_when_the_broker_drops_it(
    settings: Settings, db: asyncpg.Pool, tmp_path: Path
) -> None:
    """On a private Mosquitto (which closes a connection whose session another client takes over, as MQTT asks;
    the embedded amqtt does not)."""
    setup = await patient_with_device(db)
    client_id = f"test-consumer-{uuid.uuid4().hex[:8]}"
    with start_mosquitto("allow_anonymous true\n", tmp_path) as (host, port):
        mqtt_url = f"mqtt://{host}:{port}"
        async with running_consumer(settings, mqtt_url, client_id) as services:
            consumer = services.consumer
            assert consumer is not None and consumer.connections == 1
            # another client under the same id takes the session over: the broker closes the consumer's connection
            await asyncio.to_thread(forget_session, mqtt_url, client_id)
            for _ in range(100):
                if consumer.connections >= 2 and consumer.is_connected():
                    break
                await asyncio.sleep(0.1)
            assert consumer.connections >= 2, "the consumer did not reconnect"
            await asyncio.sleep(0.3)  # the SUBACK of the restored subscription
            recent = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
            with Receipts(mqtt_url, [setup.device_id]) as receipts, publisher(mqtt_url) as pub:
                publish(pub, setup.device_id, {"readings": [{"measured_at": recent, "value": 98, "unit": "mg/dL"}]})
                assert (await receipts.wait_for(1))[0] == {"accepted": 1, "duplicates": 0, "rejected": []}
