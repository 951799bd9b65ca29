"""Poison messages through the MQTT consumer, on the shared broker and database: each is refused with a receipt and
recorded, and a good message sent after it is stored and acknowledged within seconds.

Validation refuses these inputs item by item; the consumer must be safe even when it does not. So the second half
of this file runs the consumer with an ingest service whose ``validate`` lets poison through to PostgreSQL or
raises the errors parsing can raise: the batch is split down to the culprit, the culprit is recorded with its raw
payload escaped, every other message of the batch is stored, and the consumer stays ready.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from ingest.mqtt import Incoming, MqttConsumer
from ingest.readings import Prepared, RejectedItem, Submission, storable
from ingest.service import IngestService
from telemon.mqtt_client import new_client
from telemon.settings import Settings
from telemon.topics import readings_topic
from tests.support.factories import patient_with_device
from tests.support.mosquitto import start_mosquitto
from tests.support.mqtt import (
    POISONS,
    Receipts,
    forget_session,
    publish,
    publisher,
    running_consumer,
)
from tests.support.mqtt import (
    reading as _reading,
)
from tests.support.mqtt import (
    recent as _recent,
)

RECEIPT_WITHIN_S = 10.0


@pytest.mark.parametrize("poison", list(POISONS), ids=list(POISONS))
async def test_a_poison_is_refused_and_the_next_message_is_stored(
    poison: str, settings: Settings, mqtt_url: str, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db)
    good = {"readings": [_reading(value=101, measured_at=_recent(5))]}
    async with running_consumer(settings, mqtt_url) as services:
        consumer = services.consumer
        assert consumer is not None
        with Receipts(mqtt_url, [setup.device_id]) as receipts, publisher(mqtt_url) as pub:
            sent = time.monotonic()
            publish(pub, setup.device_id, POISONS[poison])
            publish(pub, setup.device_id, good)
            answers = await receipts.wait_for(2, timeout=RECEIPT_WITHIN_S)
            assert time.monotonic() - sent < RECEIPT_WITHIN_S
        assert consumer.ready()
    refused, stored = answers
    assert refused["accepted"] == 0 and len(refused["rejected"]) == 1, refused
    assert refused["rejected"][0]["reason"]
    assert stored == {"accepted": 1, "duplicates": 0, "rejected": []}
    values = await db.fetch("SELECT value_raw FROM readings WHERE device_id = $1", setup.device_id)
    assert [r["value_raw"] for r in values] == [101]
    recorded = await db.fetch("SELECT reason, raw FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert len(recorded) == 1
    assert recorded[0]["reason"] == refused["rejected"][0]["reason"]
    assert "\x00" not in recorded[0]["raw"] and recorded[0]["raw"]


# --- validation that misses a poison --------------------------------------------------------------------------


class LeakyService(IngestService):
    """The real service, whose validation lets a marked message through with a poison PostgreSQL refuses (a NUL
    or a lone surrogate in a stored text), or raises what parsing can raise on hostile input."""

    def validate(self, submission: Submission, now: dt.datetime) -> Prepared:
        prepared = super().validate(submission, now)
        payload = submission.payload
        leak = payload.get("leak") if isinstance(payload, dict) else None
        if leak == "nul-note":
            prepared.rows = [dataclasses.replace(row, note="a\x00b") for row in prepared.rows]
        elif leak == "surrogate-id":
            prepared.rows = [dataclasses.replace(row, external_id="\ud800") for row in prepared.rows]
        elif leak == "surrogate-reason":  # a refusal that quotes the poison: recorded escaped, receipt escaped
            prepared.rejected.append(RejectedItem(0, "unit \ud800\x00 is unknown", "\ud800\x00"))
        elif leak == "overflow":
            raise OverflowError("int too large to convert to float")
        elif leak == "recursion":
            raise RecursionError("maximum recursion depth exceeded")
        elif leak == "unicode":
            "\ud800".encode()
        return prepared


LEAKS = ["nul-note", "surrogate-id", "overflow", "recursion", "unicode"]


async def test_a_batch_with_poisons_validation_missed_is_split_and_the_rest_stored(
    settings: Settings, mqtt_url: str, db: asyncpg.Pool
) -> None:
    """One micro-batch of 60 messages of three devices, five of them poison: one store fails, the split stores
    the 55 others and records the five, each with a receipt; nothing is left to retry."""
    devices = [await patient_with_device(db) for _ in range(3)]
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=6)
    batch: list[Incoming] = []
    poisons: dict[int, str] = {}
    for i in range(60):
        device = devices[i % 3]
        document: dict[str, Any] = {
            "readings": [{"measured_at": (start + dt.timedelta(minutes=i)).isoformat(), "value": 90, "unit": "mg/dL"}]
        }
        if i % 12 == 7:
            poisons[i] = document["leak"] = LEAKS[len(poisons)]
        batch.append(Incoming(i + 1, 1, readings_topic(device.device_id), json.dumps(document).encode()))
    consumer = MqttConsumer(db, mqtt_url, settings, service=LeakyService(db))
    receipts = await consumer._store_until_done(batch)
    assert receipts is not None
    assert consumer.refused_messages == len(poisons) == len(LEAKS)
    assert consumer.ready() is False  # never connected to a broker; nothing is failing though
    assert consumer._failing == {}
    for i, incoming in enumerate(batch):
        device_id, answer = receipts[id(incoming)]
        assert device_id == devices[i % 3].device_id
        if i in poisons:
            assert answer.accepted == 0 and answer.rejected[0]["index"] is None
            assert answer.rejected[0]["reason"].startswith("the message cannot be stored: ")
        else:
            assert (answer.accepted, answer.duplicates, answer.rejected) == (1, 0, [])
    ids = [d.device_id for d in devices]
    assert await db.fetchval("SELECT count(*) FROM readings WHERE device_id = ANY($1::text[])", ids) == 55
    recorded = await db.fetch(
        "SELECT reason, raw FROM ingest_rejections WHERE device_id = ANY($1::text[]) ORDER BY id", ids
    )
    assert len(recorded) == len(LEAKS)
    assert sorted(leak for r in recorded for leak in LEAKS if f'"leak": "{leak}"' in r["raw"]) == sorted(LEAKS)


async def test_a_refusal_quoting_the_poison_is_recorded_and_answered(
    settings: Settings, mqtt_url: str, db: asyncpg.Pool
) -> None:
    """A rejection reason holding a NUL and a lone surrogate: recorded escaped in the same transaction as the
    message's readings, and the receipt is valid JSON with the surrogate escaped."""
    setup = await patient_with_device(db)
    client_id = f"test-consumer-{uuid.uuid4().hex[:8]}"
    consumer_settings = dataclasses.replace(settings, mqtt_client_id=client_id)
    consumer = MqttConsumer(db, mqtt_url, consumer_settings, service=LeakyService(db))
    await consumer.start()
    try:
        with Receipts(mqtt_url, [setup.device_id]) as receipts, publisher(mqtt_url) as pub:
            publish(pub, setup.device_id, {"leak": "surrogate-reason", "readings": [_reading()]})
            publish(pub, setup.device_id, {"leak": "overflow", "readings": [_reading(value=96)]})
            publish(pub, setup.device_id, {"readings": [_reading(value=97, measured_at=_recent(3))]})
            answers = await receipts.wait_for(3, timeout=RECEIPT_WITHIN_S)
        assert consumer.ready()
    finally:
        await consumer.stop()
        forget_session(mqtt_url, client_id)
    quoting, overflow, good = answers
    assert quoting["accepted"] == 1 and [r["index"] for r in quoting["rejected"]] == [0]
    # told as it is (JSON escapes it) or already escaped, if validation's rejections escape their texts
    assert storable(quoting["rejected"][0]["reason"]) == "unit \\ud800\\u0000 is unknown"
    assert overflow["accepted"] == 0
    assert overflow["rejected"][0]["reason"].startswith("the message cannot be stored: OverflowError")
    assert good == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert await db.fetchval("SELECT count(*) FROM readings WHERE device_id = $1", setup.device_id) == 2
    recorded = await db.fetch(
        "SELECT reason, raw FROM ingest_rejections WHERE device_id = $1 ORDER BY id", setup.device_id
    )
    assert recorded[0]["reason"] == "unit \\ud800\\u0000 is unknown"
    assert recorded[0]["raw"] == "\\ud800\\u0000"
    assert len(recorded) == 2


# --- a payload far beyond the limit ---------------------------------------------------------------------------


def _shipped_max_packet_size() -> int:
    """``max_packet_size`` of deploy/mosquitto/mosquitto.conf: the broker limit devices meet in production."""
    text = (Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    found = re.search(r"^max_packet_size\s+(\d+)\s*$", text, re.MULTILINE)
    assert found is not None
    return int(found.group(1))


@pytest.mark.parametrize("protocol", [mqtt.MQTTv5, mqtt.MQTTv311], ids=["5", "3.1.1"])
async def test_a_10_mb_payload_gets_a_rejection_receipt(
    protocol: MQTTProtocolVersion, settings: Settings, db: asyncpg.Pool, tmp_path: Path
) -> None:
    """Through a broker with the shipped packet limit: the device is not disconnected (it would send the message
    again and again), telemon refuses the payload with a receipt and records it, and goes on."""
    setup = await patient_with_device(db)
    payload = b'{"readings": [' + b'{"value": 1},' * 800_000 + b"{}]}"
    assert 10_000_000 < len(payload) < _shipped_max_packet_size()
    broker = f"allow_anonymous true\nmax_packet_size {_shipped_max_packet_size()}\n"
    with start_mosquitto(broker, tmp_path) as (host, port):
        url = f"mqtt://{host}:{port}"
        async with running_consumer(settings, url) as services:
            consumer = services.consumer
            assert consumer is not None and consumer.protocol == "5"
            device = new_client(url, f"test-device-{uuid.uuid4().hex[:8]}", protocol=protocol)
            disconnects: list[str] = []
            device.on_disconnect = lambda c, userdata, flags, reason, props: disconnects.append(str(reason))
            device.connect(host, port)
            device.loop_start()
            try:
                with Receipts(url, [setup.device_id]) as receipts:
                    device.publish(readings_topic(setup.device_id), payload, qos=1).wait_for_publish(10)
                    device.publish(
                        readings_topic(setup.device_id), json.dumps({"readings": [_reading()]}).encode(), qos=1
                    ).wait_for_publish(10)
                    refused, stored = await receipts.wait_for(2, timeout=RECEIPT_WITHIN_S)
            finally:
                device.disconnect()
                device.loop_stop()
            assert consumer.connections == 1 and consumer.ready()
    assert disconnects in ([], ["Success"], ["Normal disconnection"])  # only our own DISCONNECT at the end
    assert refused == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": [{"index": None, "reason": f"payload of {len(payload)} bytes exceeds {settings.max_body_bytes}"}],
    }
    assert stored == {"accepted": 1, "duplicates": 0, "rejected": []}
    recorded = await db.fetch(
        "SELECT reason, length(raw) AS size FROM ingest_rejections WHERE device_id = $1", setup.device_id
    )
    assert len(recorded) == 1 and recorded[0]["reason"] == refused["rejected"][0]["reason"]
    assert 0 < recorded[0]["size"] <= 4096
