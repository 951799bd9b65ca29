"""A device rotated or revoked through the clinic's API is what the broker's password file says once it is
written again (``telemon broker-passwords``): a real Mosquitto, run from the shipped configuration and ACL with a
file made from ``telemon.devices.broker_accounts``, accepts the new token only and refuses a revoked device."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from telemon import devices
from telemon.app.services import Services
from telemon.broker_passwords import mosquitto_password_hash, render_password_file
from tests.integration.test_broker_acl import SERVICE_PASSWORD, SERVICE_USER, Client
from tests.support.clinic import WRITE, auth, clinic_client, enrol, new_team
from tests.support.factories import api_key
from tests.support.mosquitto import shipped_config, start_mosquitto


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


def accepted(port: int, username: str, password: str) -> bool:
    client = Client(port, username, password)
    reason = client.connect()
    if not reason.is_failure:
        client.close()
    return not reason.is_failure


async def test_the_broker_file_follows_rotation_and_revocation(
    api: httpx.AsyncClient, db: asyncpg.Pool, tmp_path: Path
) -> None:
    key = await api_key(db, *WRITE, teams=[await new_team(db)])
    patient = await enrol(api, key)
    path = f"/api/v1/patients/{patient['id']}/devices"
    meter = (await api.post(path, json={"kind": "meter"}, headers=auth(key))).json()
    app = (await api.post(path, json={"kind": "app"}, headers=auth(key))).json()
    assert meter["mqtt"] is None  # this API-only process knows no broker; the sheet says so rather than guess
    rotated = (await api.post(f"{path}/{meter['device_id']}/rotate", headers=auth(key))).json()
    assert (await api.delete(f"{path}/{app['device_id']}", headers=auth(key))).status_code == 200

    async with db.acquire() as conn:
        accounts = dict(await devices.broker_accounts(conn))
    assert app["device_id"] not in accounts
    entries = [
        (SERVICE_USER, mosquitto_password_hash(SERVICE_PASSWORD)),
        (meter["device_id"], accounts[meter["device_id"]]),
    ]
    passwd = tmp_path / "passwd"
    passwd.write_text(render_password_file(entries))
    with start_mosquitto(shipped_config(tmp_path, passwd), tmp_path) as (_host, port):
        assert await asyncio.to_thread(accepted, port, meter["device_id"], rotated["token"])
        assert not await asyncio.to_thread(accepted, port, meter["device_id"], meter["token"])
        assert not await asyncio.to_thread(accepted, port, app["device_id"], app["token"])
