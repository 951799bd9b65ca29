"""The pairing sheet of a meter or phone app names the broker devices publish to (its host and port, never the
service account's credentials), with the device's own username, password and topics."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from telemon.app.services import Services
from telemon.settings import Settings
from tests.support.clinic import WRITE, auth, clinic_client, enrol, new_team
from tests.support.factories import api_key


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, mqtt_url="mqtts://telemon:service-secret@broker.example.org:8883")


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


async def test_the_sheet_names_the_broker_and_the_device_topics(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    key = await api_key(db, *WRITE, teams=[await new_team(db)])
    patient = await enrol(api, key)
    path = f"/api/v1/patients/{patient['id']}/devices"
    app = (await api.post(path, json={"kind": "app"}, headers=auth(key))).json()
    device_id = app["device_id"]
    assert app["mqtt"] == {
        "host": "broker.example.org",
        "port": 8883,
        "tls": True,
        "username": device_id,
        "password": app["token"],
        "readings_topic": f"telemon/v1/devices/{device_id}/readings",
        "receipts_topic": f"telemon/v1/devices/{device_id}/receipts",
    }
    assert "service-secret" not in str(app)
    paired = (await api.post("/api/v1/pairing", json={"code": app["pairing_code"]})).json()
    assert paired["mqtt"]["password"] == paired["token"] != app["token"]
    cgm = (await api.post(path, json={"kind": "cgm"}, headers=auth(key))).json()
    assert cgm["mqtt"] is None and cgm["http"] is None and cgm["nightscout"]["api_secret"] == cgm["token"]
