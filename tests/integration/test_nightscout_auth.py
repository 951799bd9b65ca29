"""Nightscout's authentication forms: the SHA-1 or SHA-512 hex of the secret in ``api-secret`` or ``?secret=``,
the token itself as ``?token=`` or a bearer token, its 401 body, and the growing delay after failed attempts."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from ingest.nightscout.auth import AUTH_FAIL_DELAY_S, FailedAuthDelays
from telemon import devices
from telemon.app.factory import create_app
from telemon.app.services import Services
from telemon.security import nightscout_secret
from tests.support.factories import patient_with_device

UNAUTHORIZED = {"status": 401, "message": "Unauthorized", "description": "Invalid/Missing"}
DELAY = 0.4  # seconds a failure; Nightscout's default is 5 s, which the last test checks is the default here


@pytest.fixture
async def app_and_client(services: Services) -> AsyncIterator[tuple[object, httpx.AsyncClient]]:
    app = create_app(services=services)
    app.state.nightscout_auth_delays = FailedAuthDelays(delay=DELAY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://telemon.test") as http:
        yield app, http


async def test_every_credential_form_nightscout_accepts(
    app_and_client: tuple[object, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = app_and_client
    setup = await patient_with_device(db, kind="cgm")
    sha1 = nightscout_secret(setup.token)
    sha512 = hashlib.sha512(setup.token.encode()).hexdigest()
    forms = {
        "sha1 header": ({"api-secret": sha1}, {}),
        "sha1 header, upper case": ({"api-secret": sha1.upper()}, {}),
        "sha512 header": ({"api-secret": sha512}, {}),
        "sha1 ?secret=": ({}, {"secret": sha1}),
        "sha512 ?secret=": ({}, {"secret": sha512}),
        "?token=": ({}, {"token": setup.token}),
        "bearer": ({"Authorization": f"Bearer {setup.token}"}, {}),
        "token as api-secret": ({"api-secret": setup.token}, {}),
    }
    for name, (headers, params) in forms.items():
        response = await client.get("/ns/api/v1/entries.json", headers=headers, params=params)
        assert response.status_code == 200, name
        verify = await client.get("/ns/api/v1/verifyauth", headers=headers, params=params)
        assert verify.json()["message"]["message"] == "OK", name
    posted = await client.post(
        "/ns/api/v1/entries/", params={"secret": sha512}, json={"type": "sgv", "sgv": 120, "date": _now_ms()}
    )
    assert posted.status_code == 200
    assert len(posted.json()) == 1


async def test_wrong_and_disabled_credentials_get_nightscouts_401(
    app_and_client: tuple[object, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = app_and_client
    setup = await patient_with_device(db, kind="cgm")
    sha1 = nightscout_secret(setup.token)
    wrong = [
        ({}, {}),
        ({"api-secret": nightscout_secret("not the token")}, {}),
        ({"api-secret": "null"}, {}),
        ({}, {"secret": hashlib.sha512(b"not the token").hexdigest()}),
        ({}, {"token": setup.token + "x"}),
        ({"Authorization": "Bearer nope"}, {}),
    ]
    for headers, params in wrong:
        response = await client.post("/ns/api/v1/entries", headers=headers, params=params, json=[])
        assert response.status_code == 401, (headers, params)
        assert response.json() == UNAUTHORIZED
    async with db.acquire() as conn:
        assert await devices.set_active(conn, setup.device_id, False)
    for headers, params in (({"api-secret": sha1}, {}), ({}, {"token": setup.token})):
        disabled = await client.get("/ns/api/v1/entries", headers=headers, params=params)
        assert disabled.status_code == 401
        assert disabled.json() == UNAUTHORIZED


async def test_a_device_added_before_sha512_gets_it_when_it_uses_its_token(
    app_and_client: tuple[object, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    _, client = app_and_client
    setup = await patient_with_device(db, kind="cgm")
    await db.execute("UPDATE devices SET ns_secret512_hash = NULL WHERE id = $1", setup.device_id)  # as migrated
    sha512 = hashlib.sha512(setup.token.encode()).hexdigest()
    assert (await client.get("/ns/api/v1/entries", headers={"api-secret": sha512})).status_code == 401
    assert (await client.get("/ns/api/v1/entries", params={"token": setup.token})).status_code == 200
    assert (await client.get("/ns/api/v1/entries", headers={"api-secret": sha512})).status_code == 200


async def test_failed_attempts_delay_that_address_and_a_success_clears_it(
    app_and_client: tuple[object, httpx.AsyncClient], db: asyncpg.Pool
) -> None:
    """Nightscout's authFailDelay: each failure adds the delay to the address's next requests (cumulative), a
    missing credential is no failure, a valid one clears the delay; another address is not delayed."""
    app, client = app_and_client
    setup = await patient_with_device(db, kind="cgm")
    good = {"api-secret": nightscout_secret(setup.token)}
    started = time.monotonic()
    await client.get("/ns/api/v1/entries", headers=good)
    baseline = time.monotonic() - started  # an undelayed request, measured here

    for _ in range(2):
        assert (await client.get("/ns/api/v1/entries", headers={"api-secret": "0" * 40})).status_code == 401
    started = time.monotonic()
    assert (await client.get("/ns/api/v1/entries", headers=good)).status_code == 200
    delayed = time.monotonic() - started
    assert delayed >= DELAY  # the second failure waited out the first's delay and added its own

    started = time.monotonic()
    assert (await client.get("/ns/api/v1/entries", headers=good)).status_code == 200
    assert time.monotonic() - started < delayed - DELAY / 2 + baseline  # cleared by the success

    assert (await client.get("/ns/api/v1/entries")).status_code == 401  # missing: no failure counted
    other = httpx.ASGITransport(app=app, client=("203.0.113.7", 5000))  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=other, base_url="http://telemon.test") as elsewhere:
        assert (await client.get("/ns/api/v1/entries", headers={"api-secret": "0" * 40})).status_code == 401
        started = time.monotonic()
        assert (await elsewhere.get("/ns/api/v1/entries", headers=good)).status_code == 200
        assert time.monotonic() - started < DELAY / 2 + baseline
    assert FailedAuthDelays().delay == AUTH_FAIL_DELAY_S == 5.0


def _now_ms() -> int:
    return int(time.time() * 1000)
