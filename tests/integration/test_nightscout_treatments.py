"""Nightscout treatments as its own tests post them: kept (insulin, carbs, notes, site changes …), normalised,
deduplicated on identifier / created_at + eventType, preBolus carbs, sanitised notes, the echo."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from ingest.nightscout.markup import purify
from telemon.app.services import Services
from tests.support.factories import Setup, patient_with_device
from tests.support.nightscout import nightscout_client, ns_headers


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with nightscout_client(services) as http:
        yield http


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _kept(db: asyncpg.Pool, setup: Setup) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT dedup_key, created_at, event_type, insulin, carbs, glucose_reading_id, doc FROM nightscout_treatments"
        " WHERE patient_id = $1 ORDER BY created_at, id",
        setup.patient_id,
    )


async def _meter_readings(db: asyncpg.Pool, setup: Setup) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT measured_at, value_mgdl, note FROM readings WHERE patient_id = $1 AND kind = 'smbg'"
        " ORDER BY measured_at",
        setup.patient_id,
    )


async def test_meal_bolus_with_prebolus_makes_a_carbs_treatment_and_notes_are_sanitised(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, kind="app")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    bolus = {
        "eventType": "Meal Bolus",
        "created_at": _iso(now),
        "carbs": "30",
        "insulin": "2.00",
        "preBolus": "15",
        "glucose": 100,
        "glucoseType": "Finger",
        "units": "mg/dl",
        "notes": "<IMG SRC=\"javascript:alert('XSS');\">",
    }
    response = await client.post("/ns/api/v1/treatments/", json=bolus, headers=ns_headers(setup))
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 2
    main, carbs = body
    assert main["insulin"] == 2
    assert main["glucose"] == 100
    assert main["preBolus"] == 15
    assert main["notes"] == "<img>"
    assert "carbs" not in main  # moved to the treatment preBolus minutes later
    assert main["utcOffset"] == 0
    assert carbs == {
        "_id": carbs["_id"],
        "created_at": _iso(now + dt.timedelta(minutes=15)),
        "eventType": "Meal Bolus",
        "carbs": 30,
        "notes": "<img>",
    }
    assert main["_id"] != carbs["_id"]

    kept = await _kept(db, setup)
    assert [(r["event_type"], r["insulin"], r["carbs"]) for r in kept] == [
        ("Meal Bolus", 2.0, None),
        ("Meal Bolus", None, 30.0),
    ]
    assert kept[1]["created_at"] - kept[0]["created_at"] == dt.timedelta(minutes=15)
    readings = await _meter_readings(db, setup)
    assert [(r["measured_at"], r["value_mgdl"], r["note"]) for r in readings] == [(now, 100.0, "<img>")]
    assert kept[0]["glucose_reading_id"] is not None

    read = await client.get("/ns/api/v1/treatments.json", headers=ns_headers(setup))
    assert read.json() == [carbs, main]  # newest first, as answered


async def test_zoned_created_at_is_answered_in_utc_with_its_offset(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="app", time_zone="America/Los_Angeles")
    local = dt.datetime.now(dt.timezone(dt.timedelta(hours=-7))).replace(microsecond=0) - dt.timedelta(hours=2)
    sent = {
        "eventType": "Meal Bolus",
        "created_at": local.strftime("%Y-%m-%dT%H:%M:%S.000%z"),  # -0700, as moment's ZZ writes it
        "carbs": "30",
        "insulin": "2.00",
        "glucose": 100,
        "glucoseType": "Finger",
        "units": "mg/dl",
    }
    response = await client.post("/ns/api/v1/treatments", json=sent, headers=ns_headers(setup))
    [answered] = response.json()
    assert answered["created_at"] == _iso(local)
    assert answered["utcOffset"] == -420
    assert (answered["carbs"], answered["insulin"], answered["glucose"]) == (30, 2, 100)
    assert "eventTime" not in answered


async def test_an_array_with_eight_identical_bg_checks_is_three_treatments(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, kind="app")
    now = _iso(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30))
    check = {"eventType": "BG Check", "glucose": 100, "units": "mg/dl", "created_at": now}
    bolus = {
        "eventType": "Meal Bolus",
        "created_at": now,
        "carbs": "30",
        "insulin": "2.00",
        "preBolus": "15",
        "glucose": 100,
        "glucoseType": "Finger",
        "units": "mg/dl",
    }
    response = await client.post(
        "/ns/api/v1/treatments/", json=[dict(check) for _ in range(8)] + [bolus], headers=ns_headers(setup)
    )
    assert response.status_code == 200
    body = response.json()
    assert len(body) == 10  # every document answered (8 checks, the bolus and its carbs)
    assert len({t["_id"] for t in body[:8]}) == 1  # the same treatment
    assert response.headers["x-telemon-accepted"] == "3"
    kept = await _kept(db, setup)
    assert len(kept) == 3
    assert sorted(r["event_type"] for r in kept) == ["BG Check", "Meal Bolus", "Meal Bolus"]
    assert len(await _meter_readings(db, setup)) == 1  # 100 mg/dL at that minute, from the same meter

    again = await client.post("/ns/api/v1/treatments", json=[check], headers=ns_headers(setup))
    assert again.json()[0]["_id"] == body[0]["_id"]
    assert again.headers["x-telemon-accepted"] == "0"
    assert len(await _kept(db, setup)) == 3


async def test_identifier_and_uuid_ids_are_upserted(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    """AndroidAPS sends an ``identifier``, Loop and Trio a UUID as ``_id``: a re-post replaces the treatment."""
    setup = await patient_with_device(db, kind="app")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first: dict[str, Any] = {
        "identifier": "AAPS-1733300000000-k3j4h5g6f",
        "eventType": "Correction Bolus",
        "insulin": 2.5,
        "created_at": _iso(now - dt.timedelta(hours=1)),
        "enteredBy": "AndroidAPS",
    }
    created = (await client.post("/ns/api/v1/treatments", json=first, headers=ns_headers(setup))).json()[0]
    assert created["identifier"] == first["identifier"]
    assert len(created["_id"]) == 24 and int(created["_id"], 16) >= 0
    moved = {**first, "created_at": _iso(now - dt.timedelta(minutes=30)), "insulin": "3"}
    replaced = (await client.post("/ns/api/v1/treatments", json=moved, headers=ns_headers(setup))).json()[0]
    assert replaced["_id"] == created["_id"]
    assert replaced["insulin"] == 3
    kept = await _kept(db, setup)
    assert [(r["insulin"], r["created_at"]) for r in kept] == [(3.0, now - dt.timedelta(minutes=30))]

    uuid_id = "69F15FD2-8075-4DEB-AEA3-4352F455840D"
    override = {
        "_id": uuid_id,
        "eventType": "Temporary Override",
        "created_at": _iso(now - dt.timedelta(minutes=20)),
        "durationType": "indefinite",
        "correctionRange": [90, 110],
        "insulinNeedsScaleFactor": 1.2,
        "reason": "test override",
    }
    answered = (await client.post("/ns/api/v1/treatments", json=override, headers=ns_headers(setup))).json()[0]
    assert answered["identifier"] == uuid_id
    assert answered["_id"] != uuid_id and len(answered["_id"]) == 24
    reposted = {**override, "duration": 60, "reason": "reposted override"}
    reposted.pop("durationType")
    again = (await client.post("/ns/api/v1/treatments", json=reposted, headers=ns_headers(setup))).json()[0]
    assert again["_id"] == answered["_id"]
    overrides = [r for r in await _kept(db, setup) if r["event_type"] == "Temporary Override"]
    assert len(overrides) == 1
    assert overrides[0]["doc"]["duration"] == 60
    assert "durationType" not in overrides[0]["doc"]


async def test_event_types_numbers_and_refusals(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="app")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    before_pregnancy = now - dt.timedelta(days=400)
    sent: list[Any] = [
        {"eventType": "Site Change", "created_at": _iso(now - dt.timedelta(hours=5)), "notes": "left arm"},
        {"eventType": "Sensor Start", "created_at": _iso(now - dt.timedelta(hours=4))},
        {"eventType": "Carb Correction", "carbs": "15", "eventTime": _iso(now - dt.timedelta(hours=3))},
        {"eventType": "Note", "notes": "", "insulin": "", "duration": "abc", "created_at": _iso(now)},
        {"eventType": "Correction Bolus", "insulin": 1, "created_at": _iso(before_pregnancy)},
        {"eventType": "BG Check", "glucose": 80, "created_at": "yesterday"},
        "not a treatment",
    ]
    response = await client.post("/ns/api/v1/treatments", json=sent, headers=ns_headers(setup))
    assert response.status_code == 200
    body = response.json()
    assert [t["eventType"] for t in body] == ["Site Change", "Sensor Start", "Carb Correction", "Note"]
    assert body[2]["carbs"] == 15
    assert body[2]["created_at"] == _iso(now - dt.timedelta(hours=3))
    assert "eventTime" not in body[2]
    assert set(body[3]) == {"_id", "eventType", "created_at", "utcOffset"}  # empty and NaN fields dropped
    assert response.headers["x-telemon-rejected"] == "3"
    reasons = {
        r["item_index"]: r["reason"]
        for r in await db.fetch(
            "SELECT item_index, reason FROM ingest_rejections WHERE device_id = $1", setup.device_id
        )
    }
    assert sorted(reasons) == [4, 5, 6]
    assert "before this pregnancy began" in reasons[4]
    assert reasons[5] == "created_at: 'yesterday' is not an ISO 8601 date"
    assert reasons[6] == "a treatment must be an object, got str"
    assert len(await _kept(db, setup)) == 4


async def test_a_refused_upload_is_an_empty_answer_with_the_reason_recorded(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """Nightscout's status (200) for an upload telemon refuses (readings before the pregnancy): the body is empty,
    the headers and ingest_rejections tell why."""
    setup = await patient_with_device(db, kind="cgm")
    old = int((dt.datetime.now(dt.UTC) - dt.timedelta(days=400)).timestamp() * 1000)
    response = await client.post(
        "/ns/api/v1/entries/", json=[{"type": "sgv", "sgv": 120, "date": old}], headers=ns_headers(setup)
    )
    assert response.status_code == 200
    assert response.json() == []
    assert response.headers["x-telemon-rejected"] == "1"
    reason = await db.fetchval("SELECT reason FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert "before this pregnancy began" in reason


def test_purify_keeps_text_and_harmless_markup() -> None:
    assert purify("after lunch, pasta") == "after lunch, pasta"
    assert purify("<IMG SRC=\"javascript:alert('XSS');\">") == "<img>"
    assert purify("<b>bold</b><script>alert(1)</script>") == "<b>bold</b>"
    assert purify('<a href="https://example.org" onclick="x()">link</a>') == '<a href="https://example.org">link</a>'
    assert purify("BG < 70 & falling") == "BG &lt; 70 &amp; falling"
