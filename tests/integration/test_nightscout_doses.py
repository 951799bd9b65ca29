"""Insulin doses in Nightscout treatments, as AndroidAPS, xDrip+ and the careportal upload them, end to end over HTTP
and the real database: stored as insulin measurements, deduplicated on re-send, refused with their reason, replaced
when their treatment is, announced to the dashboards and handed to the engine.

The payloads follow the uploaders' own code: AndroidAPS's ``Bolus.toJson`` and temporary basal (NSClient), xDrip+'s
``NightscoutUploader.populateV1APITreatmentEntry`` (``insulinInjections`` a JSON string of ``{"insulin", "units"}``)
and Nightscout's careportal (a Combo Bolus's ``enteredinsulin``)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from ingest.readings import Row, Submission
from ingest.service import IngestService, devices_by_ids
from telemon.app.services import Services
from tests.support.factories import Setup, patient_with_device
from tests.support.nightscout import nightscout_client, ns_headers

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with nightscout_client(services) as http:
        yield http


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _yesterday_at(hour: int, minute: int = 0) -> dt.datetime:
    """A local time of yesterday in Paris (the test patients' zone): always in the past, its meal window known."""
    day = dt.datetime.now(PARIS).date() - dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(hour, minute), PARIS)


def aaps_bolus(at: dt.datetime, units: float, *, kind: str = "NORMAL", valid: bool = True) -> dict[str, Any]:
    """AndroidAPS's bolus (``Bolus.toJson``): every normal bolus is a "Meal Bolus", an SMB a "Correction Bolus"."""
    return {
        "eventType": "Correction Bolus" if kind == "SMB" else "Meal Bolus",
        "insulin": units,
        "created_at": _iso(at),
        "date": _ms(at),
        "type": kind,
        "isValid": valid,
        "isSMB": kind == "SMB",
        "pumpId": _ms(at) // 1000,
        "pumpType": "ACCU_CHEK_INSIGHT",
        "pumpSerial": "33013206",
        "identifier": f"aaps-{uuid.uuid4()}",
        "enteredBy": "AndroidAPS",
    }


def aaps_temp_basal(at: dt.datetime) -> dict[str, Any]:
    return {
        "eventType": "Temp Basal",
        "duration": 30,
        "durationInMilliseconds": 1_800_000,
        "rate": 0.45,
        "absolute": 0.45,
        "type": "NORMAL",
        "isValid": True,
        "created_at": _iso(at),
        "date": _ms(at),
        "pumpId": _ms(at) // 1000 + 1,
        "pumpType": "ACCU_CHEK_INSIGHT",
        "pumpSerial": "33013206",
        "identifier": f"aaps-{uuid.uuid4()}",
        "enteredBy": "AndroidAPS",
    }


def xdrip_treatment(at: dt.datetime, insulin: float, injections: str | None, carbs: float = 0) -> dict[str, Any]:
    """xDrip+'s upsert: ``_id`` made from its uuid, the breakdown by insulin as a JSON string."""
    treatment_uuid = str(uuid.uuid4())
    treatment: dict[str, Any] = {
        "timestamp": _ms(at),
        "eventType": "<none>",
        "enteredBy": "xdrip",
        "notes": None,
        "uuid": treatment_uuid,
        "carbs": carbs,
        "insulin": insulin,
        "created_at": at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sysTime": at.strftime("%Y-%m-%dT%H:%M:%S.000%z"),
        "_id": treatment_uuid.replace("-", "")[:24],
    }
    if injections is not None:
        treatment["insulinInjections"] = injections
    return treatment


async def _doses(db: asyncpg.Pool, setup: Setup) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT measured_at, value, value_raw, insulin, product, slot, source, external_id FROM measurements"
        " WHERE patient_id = $1 AND kind = 'insulin' ORDER BY measured_at, value",
        setup.patient_id,
    )
    return [tuple(r) for r in rows]


async def _reasons(db: asyncpg.Pool, setup: Setup) -> dict[int, str]:
    rows = await db.fetch(
        "SELECT item_index, reason FROM ingest_rejections WHERE device_id = $1 ORDER BY id", setup.device_id
    )
    return {r["item_index"]: r["reason"] for r in rows}


async def test_androidaps_boluses_are_doses_and_its_priming_and_temp_basals_are_not(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, kind="app")
    breakfast = _yesterday_at(7, 40)
    upload = [
        aaps_bolus(breakfast, 4.5),
        {  # AndroidAPS sends a meal's carbs apart from its bolus
            "eventType": "Carb Correction",
            "carbs": 45,
            "created_at": _iso(breakfast),
            "date": _ms(breakfast),
            "isValid": True,
            "identifier": f"aaps-{uuid.uuid4()}",
            "enteredBy": "AndroidAPS",
        },
        aaps_bolus(breakfast + dt.timedelta(minutes=35), 0.3, kind="SMB"),
        aaps_bolus(breakfast - dt.timedelta(hours=1), 0.7, kind="PRIMING"),
        aaps_temp_basal(breakfast + dt.timedelta(minutes=50)),
    ]

    response = await client.post("/ns/api/v1/treatments", json=upload, headers=ns_headers(setup))

    assert response.status_code == 200, response.text
    assert len(response.json()) == 5  # every treatment is kept, as Nightscout keeps it
    assert response.headers["x-telemon-rejected"] == "0"
    at = breakfast.astimezone(dt.UTC)
    assert await _doses(db, setup) == [
        # a "Meal Bolus" of AndroidAPS without carbs of its own says no meal: no slot
        (at, 4.5, 4.5, "rapid", None, None, "nightscout", upload[0]["identifier"]),
        (at + dt.timedelta(minutes=35), 0.3, 0.3, "rapid", None, None, "nightscout", upload[2]["identifier"]),
    ]

    again = await client.post("/ns/api/v1/treatments", json=upload, headers=ns_headers(setup))
    assert again.status_code == 200
    assert [t["_id"] for t in again.json()] == [t["_id"] for t in response.json()]
    assert again.headers["x-telemon-accepted"] == "0"
    assert len(await _doses(db, setup)) == 2  # a re-sent upload adds nothing


async def test_xdrip_injections_by_product_and_the_meal_they_cover(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="app")
    breakfast, dinner, night = _yesterday_at(8, 5), _yesterday_at(19, 50), _yesterday_at(23, 30)
    upload = [
        # multiple injections: rapid for the meal and the morning basal, in one treatment with the meal's carbs
        xdrip_treatment(
            breakfast, 18, '[{"insulin":"NovoRapid","units":6.0},{"insulin":"Levemir","units":12.0}]', carbs=40
        ),
        xdrip_treatment(dinner, 7, "[]", carbs=60),  # one insulin set up: no breakdown, the total is a bolus
        xdrip_treatment(night, 14, '[{"insulin":"Insulatard","units":14.0}]'),
        xdrip_treatment(dinner + dt.timedelta(minutes=5), 2, '[{"insulin":"MyPen","units":2.0}]'),
    ]

    response = await client.post("/ns/api/v1/treatments", json=upload, headers=ns_headers(setup))

    assert response.status_code == 200, response.text
    assert len(response.json()) == 4
    utc = dt.UTC
    assert await _doses(db, setup) == [
        (breakfast.astimezone(utc), 6.0, 6.0, "rapid", "NovoRapid", "breakfast", "nightscout", upload[0]["_id"]),
        (breakfast.astimezone(utc), 12.0, 12.0, "basal", "Levemir", None, "nightscout", upload[0]["_id"]),
        (dinner.astimezone(utc), 7.0, 7.0, "rapid", None, "dinner", "nightscout", upload[1]["_id"]),
        # a product telemon does not know is kept by its name alone
        (dinner.astimezone(utc) + dt.timedelta(minutes=5), 2.0, 2.0, None, "MyPen", None, "nightscout",
         upload[3]["_id"]),
        (night.astimezone(utc), 14.0, 14.0, "basal", "Insulatard", None, "nightscout", upload[2]["_id"]),
    ]  # fmt: skip

    again = await client.post("/ns/api/v1/treatments", json=upload[:2], headers=ns_headers(setup))
    assert again.status_code == 200
    assert len(await _doses(db, setup)) == 5


async def test_a_mixed_upload_keeps_the_good_doses_and_refuses_the_bad_with_their_reasons(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, kind="app")
    lunch = _yesterday_at(12, 30)
    upload: list[Any] = [
        {"eventType": "Meal Bolus", "insulin": "5", "carbs": 50, "created_at": _iso(lunch), "enteredBy": "careportal"},
        {"eventType": "Correction Bolus", "insulin": -2, "created_at": _iso(lunch + dt.timedelta(minutes=1))},
        {"eventType": "Bolus", "insulin": 500, "created_at": _iso(lunch + dt.timedelta(minutes=2))},
        {"eventType": "Bolus", "insulin": "two", "created_at": _iso(lunch + dt.timedelta(minutes=3))},
        {  # the careportal's Combo Bolus: insulin is the immediate part, enteredinsulin the whole bolus
            "eventType": "Combo Bolus",
            "insulin": 3,
            "enteredinsulin": "5",
            "splitNow": 60,
            "splitExt": 40,
            "relative": 1,
            "duration": 120,
            "carbs": 70,
            "created_at": _iso(lunch + dt.timedelta(minutes=4)),
        },
        {"eventType": "Snack Bolus", "insulin": 1.5, "carbs": 15, "created_at": _iso(lunch + dt.timedelta(hours=3))},
        {"eventType": "Note", "insulin": "", "notes": "pen changed", "created_at": _iso(lunch)},
        {  # a dose and a meter reading in one treatment: both kept
            "eventType": "Meal Bolus",
            "insulin": 4,
            "carbs": 30,
            "glucose": 6.1,
            "units": "mmol",
            "glucoseType": "Finger",
            "created_at": _iso(lunch + dt.timedelta(hours=7)),
        },
    ]

    response = await client.post("/ns/api/v1/treatments", json=upload, headers=ns_headers(setup))

    assert response.status_code == 200, response.text
    assert [t["eventType"] for t in response.json()] == [
        "Meal Bolus", "Combo Bolus", "Snack Bolus", "Note", "Meal Bolus"
    ]  # fmt: skip
    assert response.headers["x-telemon-rejected"] == "3"
    reasons = await _reasons(db, setup)
    assert reasons == {
        1: "insulin: -2 U is outside the plausible range (above 0 to 160 U)",
        2: "insulin: 500 U is outside the plausible range (above 0 to 160 U)",
        3: "insulin: 'two' is not a number of units",
    }
    utc = dt.UTC
    assert [(d[0], d[1], d[3], d[5]) for d in await _doses(db, setup)] == [
        (lunch.astimezone(utc), 5.0, "rapid", "lunch"),
        (lunch.astimezone(utc) + dt.timedelta(minutes=4), 5.0, "rapid", "lunch"),  # the whole combo bolus
        (lunch.astimezone(utc) + dt.timedelta(hours=3), 1.5, "rapid", None),  # a snack is no slot
        (lunch.astimezone(utc) + dt.timedelta(hours=7), 4.0, "rapid", "dinner"),
    ]
    assert await db.fetchval(
        "SELECT count(*) FROM readings WHERE patient_id = $1 AND kind = 'smbg'", setup.patient_id
    ) == 1  # fmt: skip

    again = await client.post("/ns/api/v1/treatments", json=upload, headers=ns_headers(setup))
    assert again.headers["x-telemon-rejected"] == "3"
    assert len(await _doses(db, setup)) == 4


async def test_a_treatment_sent_again_with_another_dose_replaces_its_dose(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """AndroidAPS and xDrip+ re-send a treatment they changed with the same identity: Nightscout replaces it, and
    telemon replaces its dose (audited); a bolus the user deleted (``isValid`` false) leaves no dose."""
    setup = await patient_with_device(db, kind="app")
    at = _yesterday_at(13, 10)
    bolus = aaps_bolus(at, 4.0)
    other = aaps_bolus(at + dt.timedelta(hours=6), 5.0)
    await client.post("/ns/api/v1/treatments", json=[bolus, other], headers=ns_headers(setup))
    assert [d[1] for d in await _doses(db, setup)] == [4.0, 5.0]

    corrected = {**bolus, "insulin": 3.5}
    response = await client.post("/ns/api/v1/treatments", json=corrected, headers=ns_headers(setup))
    assert response.status_code == 200
    assert [d[1] for d in await _doses(db, setup)] == [3.5, 5.0]

    deleted = {**other, "isValid": False}
    await client.post("/ns/api/v1/treatments", json=deleted, headers=ns_headers(setup))
    assert [d[1] for d in await _doses(db, setup)] == [3.5]

    audited = await db.fetch(
        "SELECT actor, detail FROM audit_log WHERE patient_id = $1 AND action = 'measurements.replace' ORDER BY id",
        setup.patient_id,
    )
    assert [(r["actor"], r["detail"]["units"], r["detail"]["identity"]) for r in audited] == [
        (f"device:{setup.device_id}", 4.0, bolus["identifier"]),
        (f"device:{setup.device_id}", 5.0, other["identifier"]),
    ]
    treatments = await db.fetch(
        "SELECT insulin FROM nightscout_treatments WHERE patient_id = $1 ORDER BY created_at", setup.patient_id
    )
    assert [r["insulin"] for r in treatments] == [3.5, 5.0]  # the treatments themselves are kept, as Nightscout does


async def test_a_sync_of_doses_only_is_announced_and_reaches_the_engine(db: asyncpg.Pool, database_url: str) -> None:
    """Measurements NOTIFY the readings channel in the statement that stores them, and the engine's callback gets
    their patient, as for glucose readings."""
    setup = await patient_with_device(db, kind="app")
    device = (await devices_by_ids(db, [setup.device_id]))[setup.device_id]
    service = IngestService(db)
    handed: list[tuple[set[uuid.UUID], list[Row]]] = []

    async def engine(patients: set[uuid.UUID], rows: list[Row]) -> None:
        handed.append((patients, rows))

    service.on_commit(engine)
    at = _iso(dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    dose = {"kind": "insulin", "measured_at": at, "units": 10, "insulin": "basal", "product": "NPH"}
    listener = await asyncpg.connect(database_url)
    announced: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("telemon_readings", lambda *args: announced.put_nowait(args[3]))
    try:
        [receipt] = await service.receive_all([Submission(device, "mqtt", {"readings": [dose]})])
        payload = json.loads(await asyncio.wait_for(announced.get(), 5))
        [again] = await service.receive_all([Submission(device, "mqtt", {"readings": [dose]})])
        await asyncio.sleep(0.3)
        assert announced.empty()  # a duplicate announces nothing
    finally:
        await listener.close()
    assert (receipt.accepted, again.duplicates) == (1, 1)
    assert payload == {"patient_ids": [str(setup.patient_id)]}
    assert handed == [({setup.patient_id}, [])]
