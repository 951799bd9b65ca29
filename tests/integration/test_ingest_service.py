"""The ingest service's one-statement store, against the real database: several messages in one batch, keys sent
twice in the batch or stored before, rejections of both kinds, the dashboards' NOTIFY and the devices' last sync."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import asyncpg

from ingest.readings import RejectedItem, Submission
from ingest.service import IngestService, Refusal, devices_by_ids
from tests.support.factories import patient_with_device


def _reading(start: dt.datetime, minutes: int, value: float) -> dict[str, Any]:
    at = (start + dt.timedelta(minutes=minutes)).isoformat()
    return {"measured_at": at, "value": value, "unit": "mg/dL", "context": "fasting"}


async def test_a_batch_of_messages_is_answered_per_message_and_announced(db: asyncpg.Pool, database_url: str) -> None:
    first, second = await patient_with_device(db), await patient_with_device(db)
    devices = await devices_by_ids(db, [first.device_id, second.device_id])
    service = IngestService(db)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    a, b, c, d = (_reading(start, m, v) for m, v in ((0, 95), (60, 101), (120, 88), (180, 130)))
    stored_before = await service.receive_all([Submission(devices[second.device_id], "mqtt", {"readings": [d]})])
    assert stored_before[0].accepted == 1
    await db.execute("UPDATE devices SET last_seen_at = NULL WHERE id = ANY($1::text[])", list(devices))

    listener = await asyncpg.connect(database_url)
    announced: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("telemon_readings", lambda *args: announced.put_nowait(args[3]))
    try:
        batch = [
            Submission(devices[first.device_id], "mqtt", {"readings": [a, b]}),
            Submission(devices[first.device_id], "mqtt", {"readings": [b, c]}),  # b again, in the same batch
            Submission(devices[second.device_id], "mqtt", {"readings": [d, {"value": "high"}]}),  # d is stored
        ]
        stranger = f"unknown-{first.device_id}"
        unknown = Refusal("mqtt", stranger, RejectedItem(None, f"device {stranger} is unknown", "{}"))
        answers = await service.receive_all(batch, [unknown])
        payloads = [json.loads(await asyncio.wait_for(announced.get(), 5))]
        await asyncio.sleep(0.3)  # anything else announced meanwhile
        while not announced.empty():
            payloads.append(json.loads(announced.get_nowait()))
    finally:
        await listener.close()

    assert [(x.accepted, x.duplicates) for x in answers] == [(2, 0), (1, 1), (0, 1)]
    assert [r["index"] for r in answers[2].rejected] == [1]
    announced_ids = [p for payload in payloads for p in payload["patient_ids"]]
    assert str(first.patient_id) in announced_ids
    assert str(second.patient_id) not in announced_ids  # its only reading was stored before
    assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", first.patient_id) == 3
    reasons = await db.fetch(
        "SELECT device_id, item_index FROM ingest_rejections WHERE device_id = ANY($1::text[])",
        [stranger, first.device_id, second.device_id],
    )
    assert {(r["device_id"], r["item_index"]) for r in reasons} == {(stranger, None), (second.device_id, 1)}
    seen = await db.fetch("SELECT last_seen_at FROM devices WHERE id = ANY($1::text[])", list(devices))
    assert len(seen) == 2 and all(r["last_seen_at"] is not None for r in seen)


async def test_a_batch_of_rejections_only_is_recorded(db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    device = (await devices_by_ids(db, [setup.device_id]))[setup.device_id]
    service = IngestService(db)
    answers = await service.receive_all([Submission(device, "http", {"readings": [{"value": 1e9, "unit": "mg/dL"}]})])
    assert (answers[0].accepted, answers[0].duplicates, len(answers[0].rejected)) == (0, 0, 1)
    assert await db.fetchval("SELECT count(*) FROM ingest_rejections WHERE device_id = $1", setup.device_id) == 1
    assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", setup.patient_id) == 0
