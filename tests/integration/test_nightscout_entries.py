"""Nightscout's entries API as its own clients and tests use it: trailing slashes, the fields an uploader sends
beside the value, the preview, ``/entries/sgv.json``, ``/entries/current``, the ``find`` forms, and the end-to-end
upload of a client that does not follow redirects (OkHttp, as in xDrip+ and AndroidAPS)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import uvicorn

from telemon.app.factory import create_app
from telemon.app.services import Services
from telemon.security import nightscout_secret
from tests.support.factories import Setup, patient_with_device
from tests.support.nightscout import nightscout_client, ns_headers, payload

DUE_2014 = dt.date(2014, 11, 1)  # the example entries date from July 2014: a patient due that autumn was pregnant
DUE_2016 = dt.date(2017, 1, 15)


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with nightscout_client(services) as http:
        yield http


async def _count(db: asyncpg.Pool, setup: Setup) -> int:
    counted: int = await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", setup.patient_id)
    return counted


async def test_every_path_answers_with_or_without_the_trailing_slash(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2014)
    entries = payload("fixture_example_entries.json")
    posted = {}
    for path in ("/ns/api/v1/entries/", "/ns/api/v1/entries", "/ns/api/v1/entries.json"):
        response = await client.post(path, json=entries, headers=ns_headers(setup))
        assert response.status_code == 200, (path, response.status_code)
        posted[path] = response.json()
    assert len({json.dumps(body, sort_keys=True) for body in posted.values()}) == 1  # the same answer
    assert len(posted["/ns/api/v1/entries/"]) == 18
    assert await _count(db, setup) == 18

    treatment = {"eventType": "Note", "notes": "sensor changed", "created_at": "2014-07-19T08:00:00.000Z"}
    for path in ("/ns/api/v1/treatments/", "/ns/api/v1/treatments"):
        response = await client.post(path, json=treatment, headers=ns_headers(setup))
        assert response.status_code == 200, path
    for path in (
        "/ns/api/v1/entries/",
        "/ns/api/v1/treatments/",
        "/ns/api/v1/status/",
        "/ns/api/v1/verifyauth/",
        "/ns/api/v1/entries/sgv/",
        "/ns/api/v1/entries/current/",
    ):
        response = await client.get(path, headers=ns_headers(setup))
        assert response.status_code == 200, (path, response.status_code)
    devicestatus = await client.post("/ns/api/v1/devicestatus/", json={"device": "xDrip"}, headers=ns_headers(setup))
    assert devicestatus.status_code == 200
    empty = await client.post("/ns/api/v1/entries/", json=[], headers=ns_headers(setup))
    assert (empty.status_code, empty.json()) == (200, [])


async def test_sgv_as_a_string_direction_noise_and_the_offset_of_datestring(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """Nightscout's "post an entry" case: sgv sent as "199" comes back as "199", utcOffset is the offset of
    dateString (−07:00 → −420); the raw sensor fields come back on GET."""
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2014)
    entry = {
        "type": "sgv",
        "sgv": "199",
        "dateString": "2014-07-20T00:44:15.000-07:00",
        "date": 1405791855000,  # 2014-07-19T17:44:15Z: disagrees with dateString, which wins as in Nightscout
        "device": "dexcom",
        "direction": "NOT COMPUTABLE",
        "noise": 1,
        "filtered": 170112,
        "unfiltered": 169984,
        "rssi": 178,
    }
    response = await client.post("/ns/api/v1/entries/", json=entry, headers=ns_headers(setup))
    assert response.status_code == 200
    [answered] = response.json()
    assert answered["sgv"] == "199"
    assert answered["utcOffset"] == -420
    assert answered["dateString"] == answered["sysTime"] == "2014-07-20T07:44:15.000Z"
    stored = await db.fetchrow("SELECT measured_at, value_mgdl FROM readings WHERE patient_id = $1", setup.patient_id)
    assert stored["measured_at"] == dt.datetime(2014, 7, 20, 7, 44, 15, tzinfo=dt.UTC)
    assert stored["value_mgdl"] == 199.0

    read = await client.get(
        "/ns/api/v1/entries.json",
        params={"find[dateString][$gte]": "2014-07-20", "count": 100},
        headers=ns_headers(setup),
    )
    [got] = read.json()
    assert got == answered
    for field in ("direction", "noise", "filtered", "unfiltered", "rssi", "device"):
        assert got[field] == entry[field], field


async def test_preview_checks_and_echoes_without_storing(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2014)
    entries = payload("fixture_example_entries.json")
    before = await db.fetchval("SELECT count(*) FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    for path in ("/ns/api/v1/entries/preview", "/ns/api/v1/entries/preview.json", "/ns/api/v1/entries/preview/"):
        response = await client.post(path, json=entries, headers=ns_headers(setup))
        assert response.status_code == 200, path
        body = response.json()
        assert len(body) == 30  # every document, as Nightscout's preview
        assert {e["utcOffset"] for e in body} == {-420}
        assert response.headers["x-telemon-accepted"] == "18"
        assert response.headers["x-telemon-rejected"] == "12"
        assert "Dexcom error code 5" in response.headers["x-telemon-reasons"]
    assert await _count(db, setup) == 0
    after = await db.fetchval("SELECT count(*) FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert after == before
    refused = await client.post("/ns/api/v1/entries/preview.json", json=entries)
    assert refused.status_code == 401


async def test_get_forms_nightscout_clients_use(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2014)
    entries = payload("fixture_example_entries.json")
    assert (await client.post("/ns/api/v1/entries/", json=entries, headers=ns_headers(setup))).status_code == 200
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    meter = {"type": "mbg", "mbg": 132, "date": 1405767600000, "device": "xDrip"}  # 45 s after the last sgv
    assert (await client.post("/ns/api/v1/entries", json=meter, headers=ns_headers(setup))).status_code == 200

    by_date_string = await client.get(
        "/ns/api/v1/entries.json",
        params={"find[dateString][$gte]": "2014-07-19", "count": 30},
        headers=ns_headers(setup),
    )
    assert len(by_date_string.json()) == 19  # 18 sgv + 1 mbg, all on 2014-07-19 in UTC
    window = await client.get(
        "/ns/api/v1/entries/sgv.json",
        params={"find[dateString][$gte]": "2014-07-19", "find[dateString][$lte]": "2014-07-20"},
        headers=ns_headers(setup),
    )
    body = window.json()
    assert len(body) == 10  # the default count
    assert {e["type"] for e in body} == {"sgv"}
    assert [e["date"] for e in body] == sorted((e["date"] for e in body), reverse=True)

    current = await client.get("/ns/api/v1/entries/current.json", headers=ns_headers(setup))
    assert [(e["type"], e["mbg"]) for e in current.json()] == [("mbg", 132)]
    model = await client.get(
        "/ns/api/v1/entries/sgv/.json", params={"count": 5, "find[dateString][$gte]": "2014"}, headers=ns_headers(setup)
    )
    assert len(model.json()) == 5
    meters = await client.get("/ns/api/v1/entries/mbg.json", headers=ns_headers(setup))
    assert [e["mbg"] for e in meters.json()] == [132]

    one = body[3]
    by_id = await client.get(f"/ns/api/v1/entries/{one['_id']}.json", headers=ns_headers(setup))
    assert by_id.json() == [one]
    missing = await client.get(f"/ns/api/v1/entries/{'f' * 24}.json", headers=ns_headers(setup))
    assert missing.json() == []

    high = await client.get(
        "/ns/api/v1/entries/sgv.json", params={"find[sgv][$gte]": 178, "count": 100}, headers=ns_headers(setup)
    )
    assert sorted(int(e["sgv"]) for e in high.json()) == [178, 178, 179]
    iso_bound = await client.get(
        "/ns/api/v1/entries.json",
        params={"find[date][$gte]": "2014-07-19T10:50:00Z", "count": 100},
        headers=ns_headers(setup),
    )
    assert len(iso_bound.json()) == 3  # 10:54:15 and 10:59:15 sgv, and the meter at 11:00
    future = await client.get("/ns/api/v1/entries.json", params={"find[date][$gte]": now_ms}, headers=ns_headers(setup))
    assert future.json() == []
    unknown = await client.get("/ns/api/v1/entries.json", params={"find[foo]": 1}, headers=ns_headers(setup))
    assert unknown.status_code == 400
    assert "find[foo]" in unknown.json()["detail"]


async def _serve(services: Services) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    """The app behind a real HTTP server on a free loopback port, as an uploader reaches it."""
    app = create_app(services=services)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


async def test_end_to_end_upload_of_a_client_that_does_not_follow_redirects(
    services: Services, db: asyncpg.Pool
) -> None:
    """xDrip+ and AndroidAPS upload with OkHttp, which does not follow a 307 on a POST: every form must answer
    directly. The client here follows no redirect either."""
    setup = await patient_with_device(db, kind="cgm", due_date=DUE_2016)
    glucose = payload("openaps_glucose_zoned_merge.json")
    server, task, base = await _serve(services)
    try:
        async with httpx.AsyncClient(base_url=base, follow_redirects=False) as okhttp_like:
            headers = {"api-secret": nightscout_secret(setup.token), "User-Agent": "okhttp/4.12.0"}
            status = await okhttp_like.get("/ns/api/v1/status.json")
            assert status.status_code == 200
            uploaded = await okhttp_like.post("/ns/api/v1/entries/", json=glucose, headers=headers)
            assert uploaded.status_code == 200
            assert [e["sgv"] for e in uploaded.json()] == [e["sgv"] for e in glucose]
            treatment = {
                "eventType": "Meal Bolus",
                "insulin": 4,
                "carbs": 45,
                "created_at": "2016-10-23T12:00:00.000-07:00",
                "enteredBy": "AndroidAPS",
            }
            treated = await okhttp_like.post("/ns/api/v1/treatments/", json=[treatment], headers=headers)
            assert treated.status_code == 200
            assert treated.json()[0]["created_at"] == "2016-10-23T19:00:00.000Z"
            read = await okhttp_like.get("/ns/api/v1/entries/sgv.json", params={"count": 2}, headers=headers)
            assert read.status_code == 200
            assert [e["sgv"] for e in read.json()] == [102, 98]
            for response in (status, uploaded, treated, read):
                assert not response.is_redirect
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert await _count(db, setup) == len(glucose)
    kept = await db.fetchval("SELECT count(*) FROM nightscout_treatments WHERE patient_id = $1", setup.patient_id)
    assert kept == 1
