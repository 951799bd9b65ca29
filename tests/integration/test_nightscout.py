"""The Nightscout-compatible API end to end against the real database, with Nightscout's own test fixtures."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from telemon import devices
from telemon.app.services import Services
from telemon.security import nightscout_secret
from tests.support.factories import Setup, patient_with_device
from tests.support.nightscout import nightscout_client, ns_headers, payload

UNAUTHORIZED = {"status": 401, "message": "Unauthorized", "description": "Invalid/Missing"}
# The fixtures date from 2014 (example entries) and 2016 (OpenAPS): patients due a few months later were pregnant.
DUE_2014 = dt.date(2014, 11, 1)
DUE_2016 = dt.date(2017, 1, 15)


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with nightscout_client(services) as http:
        yield http


def _utc(epoch_ms: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=epoch_ms)


async def _readings(db: asyncpg.Pool, setup: Setup) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT kind, measured_at, device_time, value_raw, unit_raw, value_mgdl, flags, source, external_id, note"
        " FROM readings WHERE patient_id = $1 ORDER BY measured_at",
        setup.patient_id,
    )


async def _rejections(db: asyncpg.Pool, setup: Setup) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT patient_id, source, item_index, reason, raw FROM ingest_rejections WHERE device_id = $1 ORDER BY id",
        setup.device_id,
    )


async def test_missing_wrong_or_disabled_secret_is_nightscouts_401(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2014)
    entries = payload("fixture_example_entries.json")

    missing = await client.post("/ns/api/v1/entries", json=entries)
    wrong = await client.post("/ns/api/v1/entries", json=entries, headers={"api-secret": nightscout_secret("nope")})
    wrong_query = await client.get(f"/ns/api/v1/entries.json?token={setup.token}x")
    for response in (missing, wrong, wrong_query):
        assert response.status_code == 401
        assert response.json() == UNAUTHORIZED

    async with db.acquire() as conn:
        assert await devices.set_active(conn, setup.device_id, False)
    disabled = await client.post("/ns/api/v1/entries", json=entries, headers=ns_headers(setup))
    assert disabled.status_code == 401
    assert disabled.json() == UNAUTHORIZED
    read = await client.get("/ns/api/v1/entries", headers=ns_headers(setup))
    assert read.status_code == 401

    assert await _readings(db, setup) == []
    assert await _rejections(db, setup) == []
    verify = await client.get("/ns/api/v1/verifyauth", headers=ns_headers(setup))
    assert verify.status_code == 200
    assert verify.json()["message"]["message"] == "UNAUTHORIZED"


async def test_example_entries_store_18_and_refuse_12_dexcom_error_codes(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2014)
    entries = payload("fixture_example_entries.json")
    assert len(entries) == 30

    response = await client.post("/ns/api/v1/entries", json=entries, headers=ns_headers(setup))
    assert response.status_code == 200, response.text
    assert response.headers["x-telemon-accepted"] == "18"
    assert response.headers["x-telemon-rejected"] == "12"
    body = response.json()
    good = [e for e in entries if int(e["sgv"]) > 39]
    assert len(good) == 18
    # as sent (sgv "178" stays a string, as Nightscout stores it), dateString in UTC with its utcOffset
    assert [(e["type"], e["sgv"], e["date"]) for e in body] == [("sgv", e["sgv"], e["date"]) for e in good]
    first = body[0]
    assert first["dateString"] == first["sysTime"] == "2014-07-19T10:59:15.000Z"  # 03:59:15-07:00
    assert first["utcOffset"] == -420
    assert (first["device"], first["direction"]) == ("dexcom", "Flat")
    assert len(first["_id"]) == 24
    assert len({e["_id"] for e in body}) == 18

    rows = await _readings(db, setup)
    assert len(rows) == 18
    expected = sorted((_utc(e["date"]), float(e["sgv"])) for e in good)
    assert [(r["measured_at"], r["value_mgdl"]) for r in rows] == expected
    assert rows[0]["measured_at"] == dt.datetime(2014, 7, 19, 9, 34, 15, tzinfo=dt.UTC)  # 02:34:15-07:00
    assert rows[0]["measured_at"] == rows[0]["device_time"]
    assert {(r["kind"], r["unit_raw"], r["source"]) for r in rows} == {("cgm", "mg/dL", "nightscout")}

    refused = await _rejections(db, setup)
    assert [r["item_index"] for r in refused] == list(range(12))
    assert {r["reason"] for r in refused} == {
        "sgv: 5 is Dexcom error code 5 (SENSOR_NOT_CALIBRATED, direction NOT COMPUTABLE), not a glucose value"
    }
    assert {r["source"] for r in refused} == {"nightscout"}
    assert {r["patient_id"] for r in refused} == {setup.patient_id}
    assert json.loads(refused[0]["raw"]) == entries[0]

    again = await client.post("/ns/api/v1/entries.json", json=entries, headers=ns_headers(setup))
    assert again.status_code == 200
    assert again.headers["x-telemon-accepted"] == "0"
    assert again.headers["x-telemon-duplicates"] == "18"
    assert again.json() == body  # the same stored entries, with the same ids
    assert len(await _readings(db, setup)) == 18


async def test_get_entries_newest_first_with_count_and_date_bounds(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2014)
    entries = payload("fixture_example_entries.json")
    assert (await client.post("/ns/api/v1/entries", json=entries, headers=ns_headers(setup))).status_code == 200

    default = await client.get("/ns/api/v1/entries.json", headers=ns_headers(setup))
    assert default.status_code == 200
    assert len(default.json()) == 10

    latest = (await client.get("/ns/api/v1/entries", params={"count": 3}, headers=ns_headers(setup))).json()
    assert [(e["sgv"], e["date"]) for e in latest] == [
        ("178", 1405767555000),
        ("179", 1405767255000),
        ("178", 1405766955000),
    ]
    assert latest[0] == {
        "_id": latest[0]["_id"],
        "type": "sgv",
        "sgv": "178",
        "date": 1405767555000,
        "dateString": "2014-07-19T10:59:15.000Z",
        "sysTime": "2014-07-19T10:59:15.000Z",
        "utcOffset": -420,
        "device": "dexcom",
        "direction": "Flat",
    }

    since = await client.get(
        "/ns/api/v1/entries.json", params={"count": 100, "find[date][$gte]": 1405766055000}, headers=ns_headers(setup)
    )
    assert [e["sgv"] for e in since.json()] == [
        "178",
        "179",
        "178",
        "177",
        "176",
        "176",
    ]  # from 03:34:15-07:00 on, inclusive

    window = await client.get(
        "/ns/api/v1/entries.json",
        params={"count": 100, "find[date][$gt]": 1405766055000, "find[date][$lte]": 1405766955000},
        headers=ns_headers(setup),
    )
    assert [e["date"] for e in window.json()] == [1405766955000, 1405766655000, 1405766355000]

    meters = await client.get("/ns/api/v1/entries", params={"find[type]": "mbg"}, headers=ns_headers(setup))
    assert meters.json() == []
    audited = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE actor = $1 AND action = 'readings.read' AND patient_id = $2",
        f"device:{setup.device_id}",
        setup.patient_id,
    )
    assert audited == 5


async def test_openaps_entries_and_calibration_record(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2016)
    glucose = payload("openaps_glucose_zoned_merge.json")
    calibration = payload("openaps_cal_zoned.json")

    response = await client.post("/ns/api/v1/entries", json=glucose + calibration, headers=ns_headers(setup))
    assert response.status_code == 200, response.text
    assert [e["sgv"] for e in response.json()] == [102, 98, 91, 87]
    rows = await _readings(db, setup)
    assert [(r["measured_at"], r["value_raw"]) for r in rows] == sorted(
        (_utc(e["date"]), float(e["sgv"])) for e in glucose
    )
    assert rows[-1]["measured_at"] == dt.datetime(2016, 10, 23, 18, 33, 36, tzinfo=dt.UTC)  # 11:33:36-07:00
    refused = await _rejections(db, setup)
    assert [(r["item_index"], r["reason"]) for r in refused] == [
        (4, "type: 'cal' is not kept; telemon stores sgv (CGM) and mbg (meter) entries")
    ]


async def test_mbg_numeric_string_single_object_and_the_pipelines_own_refusals(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, kind="app")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    date_ms = int(now.timestamp() * 1000)

    single = await client.post(
        "/ns/api/v1/entries",
        json={"type": "mbg", "mbg": "123", "date": date_ms, "device": "xDrip-BluetoothWixel", "_id": "meter-1"},
        headers=ns_headers(setup),
    )
    assert single.status_code == 200, single.text
    assert single.json() == [
        {
            "_id": "meter-1",
            "type": "mbg",
            "mbg": "123",
            "date": date_ms,
            "sysTime": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "utcOffset": 0,
            "device": "xDrip-BluetoothWixel",
        }
    ]

    batch = [
        {"type": "sgv", "sgv": 39, "dateString": (now - dt.timedelta(minutes=5)).isoformat()},  # Dexcom LOW
        {"type": "sgv", "sgv": "high", "date": date_ms - 600_000},  # not a number: the pipeline refuses it
        {"type": "sgv", "sgv": 140, "date": date_ms + 3_600_000},  # an hour ahead: the pipeline refuses it
        {"type": "sgv", "sgv": 140},  # no date
        "not an entry",
    ]
    response = await client.post("/ns/api/v1/entries", json=batch, headers=ns_headers(setup))
    assert response.status_code == 200
    assert [e["sgv"] for e in response.json()] == [39]
    rows = await _readings(db, setup)
    assert [(r["kind"], r["value_mgdl"], r["flags"], r["external_id"]) for r in rows] == [
        ("cgm", 39.0, ["lo"], None),
        ("smbg", 123.0, [], "meter-1"),
    ]
    reasons = {r["item_index"]: r["reason"] for r in await _rejections(db, setup)}
    assert sorted(reasons) == [1, 2, 3, 4]
    assert reasons[1] == "value: expected a number, got str"
    assert "is in the future" in reasons[2]
    assert reasons[3] == "date: required (epoch milliseconds), or dateString (ISO 8601)"
    assert reasons[4] == "an entry must be an object, got str"


async def test_treatments_bg_checks_are_also_meter_readings(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="app")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    treatments: list[dict[str, Any]] = [
        {
            "eventType": "BG Check",
            "glucose": 142,
            "glucoseType": "Finger",
            "units": "mg/dl",
            "created_at": (now - dt.timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
            "notes": "after lunch, pasta",
            "enteredBy": "xdrip",
        },
        {"eventType": "Meal Bolus", "insulin": 4.5, "carbs": 40, "created_at": now.isoformat()},
        {
            "eventType": "Note",
            "glucose": "5.6",
            "units": "mmol",
            "created_at": (now - dt.timedelta(hours=1)).isoformat(),
        },
        {"eventType": "BG Check", "glucose": 142, "units": "furlongs", "created_at": now.isoformat()},
    ]
    response = await client.post("/ns/api/v1/treatments", json=treatments, headers=ns_headers(setup))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [t["eventType"] for t in body] == ["BG Check", "Meal Bolus", "Note"]
    assert body[1] == {
        **treatments[1],
        "_id": body[1]["_id"],
        "created_at": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "utcOffset": 0,
    }
    assert body[2]["glucose"] == 5.6
    assert len(body[0]["_id"]) == 24
    assert body[0]["notes"] == "after lunch, pasta"

    rows = await _readings(db, setup)
    assert [(r["kind"], r["value_raw"], r["unit_raw"], r["note"], r["source"]) for r in rows] == [
        ("smbg", 142.0, "mg/dl", "after lunch, pasta", "nightscout"),
        ("smbg", 5.6, "mmol", None, "nightscout"),
    ]
    assert abs(rows[1]["value_mgdl"] - 5.6 * 18.01559) < 0.01
    assert rows[0]["measured_at"] == now - dt.timedelta(hours=2)
    refused = await _rejections(db, setup)
    assert [(r["item_index"], r["reason"]) for r in refused] == [
        (3, "unit: 'furlongs' is not one of mg/dL, mmol/L, g/L")
    ]

    again = await client.post("/ns/api/v1/treatments.json", json=treatments[0], headers=ns_headers(setup))
    assert again.json() == [body[0]]
    assert len(await _readings(db, setup)) == 2


async def test_status_is_readable_without_a_secret(client: httpx.AsyncClient) -> None:
    before = dt.datetime.now(dt.UTC)
    for path in ("/ns/api/v1/status.json", "/ns/api/v1/status"):
        response = await client.get(path)
        assert response.status_code == 200
        status = response.json()
        assert status["status"] == "ok"
        assert status["name"] == "telemon"
        assert status["apiEnabled"] is True
        assert status["careportalEnabled"] is False
        assert status["settings"] == {"units": "mg/dl"}
        server_time = dt.datetime.fromisoformat(status["serverTime"].replace("Z", "+00:00"))
        assert abs(server_time - before) < dt.timedelta(seconds=30)
        assert status["serverTimeEpoch"] == int(server_time.timestamp() * 1000)


async def test_verifyauth_with_a_valid_secret(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="cgm")
    response = await client.get("/ns/api/v1/verifyauth", headers=ns_headers(setup))
    assert response.status_code == 200
    assert response.json() == {
        "status": 200,
        "message": {
            "canRead": True,
            "canWrite": True,
            "isAdmin": False,
            "message": "OK",
            "rolefound": "FOUND",
            "permissions": "ROLE",
        },
    }


async def test_gzip_body_and_refused_bodies_are_recorded(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2014)
    entries = payload("fixture_example_entries.json")
    headers = {**ns_headers(setup), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = await client.post(
        "/ns/api/v1/entries", content=gzip.compress(json.dumps(entries).encode()), headers=headers
    )
    assert response.status_code == 200, response.text
    assert len(response.json()) == 18
    assert len(await _readings(db, setup)) == 18

    not_json = await client.post("/ns/api/v1/entries", content=b"{sgv: 120", headers=ns_headers(setup))
    assert not_json.status_code == 422
    not_a_document = await client.post("/ns/api/v1/treatments", json=120, headers=ns_headers(setup))
    assert not_a_document.status_code == 422
    refused = [r for r in await _rejections(db, setup) if r["item_index"] is None]
    assert [r["raw"] for r in refused] == ["{sgv: 120", "120"]
    assert all(r["reason"].startswith("HTTP 422: ") and r["source"] == "nightscout" for r in refused)


async def test_devicestatus_is_answered_and_not_kept(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="cgm")
    status = {"device": "xDrip-DexcomG6", "uploader": {"battery": 87}, "created_at": "2024-03-01T10:00:00Z"}
    response = await client.post("/ns/api/v1/devicestatus", json=status, headers=ns_headers(setup))
    assert response.status_code == 200
    assert response.json() == [status]
    assert await _readings(db, setup) == []
    assert await _rejections(db, setup) == []
    assert (await client.post("/ns/api/v1/devicestatus", json=status)).json() == UNAUTHORIZED
