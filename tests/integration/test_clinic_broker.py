"""A device rotated or revoked through the clinic's API is what the broker's password file says once it is
written again (``telemon broker-passwords``): a real Mosquitto, run from the shipped configuration and ACL with a
file made from ``telemon.devices.broker_accounts``, accepts the new token only and refuses a revoked device."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import httpx
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from telemon import devices
from telemon.app.services import Services
from telemon.broker_logins import BrokerLogins
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


async def _until(check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await asyncio.to_thread(check):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.2)


async def test_the_service_keeps_the_broker_logins_without_anyone_writing_the_file(
    api: httpx.AsyncClient, db: asyncpg.Pool, tmp_path: Path
) -> None:
    """With ``TELEMON_BROKER_PASSWORD_FILE`` and ``TELEMON_BROKER_RELOAD``, pairing, rotating and revoking through
    the API are what a real Mosquitto accepts within seconds: no one runs ``telemon broker-passwords``."""
    passwd = tmp_path / "passwd"
    passwd.write_text(render_password_file([(SERVICE_USER, mosquitto_password_hash(SERVICE_PASSWORD))]))
    config = shipped_config(tmp_path, passwd)
    key = await api_key(db, *WRITE, teams=[await new_team(db)])
    patient = await enrol(api, key)
    path = f"/api/v1/patients/{patient['id']}/devices"
    with start_mosquitto(config, tmp_path) as (_host, port):
        reload = ("pkill", "-HUP", "-f", str(tmp_path / "mosquitto.conf"))
        logins = BrokerLogins(db, passwd, service_login=(SERVICE_USER, SERVICE_PASSWORD), reload=reload)
        await logins.start()
        try:
            meter = (await api.post(path, json={"kind": "meter"}, headers=auth(key))).json()
            await _until(lambda: accepted(port, meter["device_id"], meter["token"]), "a new device logs in")
            assert accepted(port, SERVICE_USER, SERVICE_PASSWORD)  # the service's own login is kept
            # a device connected with the token about to be rotated: the broker ends its connection on reload
            connected = paho.Client(CallbackAPIVersion.VERSION2, client_id=meter["device_id"])
            connected.username_pw_set(meter["device_id"], meter["token"])
            connected.connect("127.0.0.1", port)
            connected.loop_start()
            try:
                await _until(connected.is_connected, "the device connects")
                rotated = (await api.post(f"{path}/{meter['device_id']}/rotate", headers=auth(key))).json()
                await _until(lambda: not accepted(port, meter["device_id"], meter["token"]), "the old token")
                await _until(lambda: not connected.is_connected(), "the old token's connection is ended")
            finally:
                connected.loop_stop()
            assert accepted(port, meter["device_id"], rotated["token"])

            assert (await api.delete(f"{path}/{meter['device_id']}", headers=auth(key))).status_code == 200
            await _until(lambda: not accepted(port, meter["device_id"], rotated["token"]), "a revoked device")
        finally:
            await logins.stop()
    assert logins.rewrites >= 4  # start, pairing, rotation, revocation (other tests' devices may add more)
    assert passwd.stat().st_mode & 0o777 == 0o644  # the mode the file was given is kept
