"""The patient's own API (``/api/v1/me``, ``/api/v1/me/readings``) and the companion app's shell, against a real
PostgreSQL: a token reaches its own patient only, a revoked token and a meter's token are refused, her readings
come back judged against her own targets, page by page, and the readings the app sends are stored once."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from clinician_ui import glycaemia
from telemon import devices
from telemon.app.services import Services
from tests.support.clinic import clinic_client
from tests.support.factories import add_device, patient_with_device


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def phone_reading(minutes_ago: int, value: float, **fields: Any) -> dict[str, Any]:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=minutes_ago)
    return {
        "id": f"app-{uuid.uuid4()}",
        "measured_at": at.isoformat().replace("+00:00", "Z"),
        "kind": "smbg",
        "unit": "g/L",
        "value": value,
        "flags": ["manual"],
        **fields,
    }


async def test_me_gives_her_name_language_unit_and_her_own_targets(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    her = await patient_with_device(db, kind="app", profile="FR")
    await db.execute(
        "UPDATE patients SET target_overrides = '{\"fasting\": 92}', language = 'en' WHERE id = $1", her.patient_id
    )
    answer = await api.get("/api/v1/me", headers=bearer(her.token))
    assert answer.status_code == 200, answer.text
    me = answer.json()
    expected = glycaemia.targets_for("FR", "diet", {"fasting": 92})
    assert (me["name"], me["language"], me["unit"], me["device_id"]) == ("Test Patient", "en", "g/L", her.device_id)
    assert me["targets_mgdl"]["fasting"] == 92 == expected.fasting
    assert me["targets_mgdl"]["two_hours"] == expected.post_2h
    assert me["targets_mgdl"]["one_hour"] == (None if expected.post_1h != expected.post_1h else expected.post_1h)
    assert me["hypo_below_mgdl"] == expected.hypo

    changed = await api.patch("/api/v1/me", json={"language": "fr"}, headers=bearer(her.token))
    assert changed.status_code == 200 and changed.json()["language"] == "fr"
    assert await db.fetchval("SELECT language FROM patients WHERE id = $1", her.patient_id) == "fr"
    assert (await api.patch("/api/v1/me", json={"language": "de"}, headers=bearer(her.token))).status_code == 422


async def test_a_token_reaches_its_own_patient_only(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    a = await patient_with_device(db, kind="app")
    b = await patient_with_device(db, kind="app")
    await db.execute("UPDATE patients SET display_name = 'Patient B' WHERE id = $1", b.patient_id)
    for who, value in ((a, 0.85), (b, 1.45)):
        sent = await api.post(
            "/api/v1/readings",
            json={"readings": [phone_reading(30, value, context="fasting")]},
            headers=bearer(who.token),
        )
        assert sent.json()["accepted"] == 1, sent.text

    mine = (await api.get("/api/v1/me/readings", headers=bearer(a.token))).json()
    assert [r["value_mgdl"] for r in mine["items"]] == [85.0]
    assert {r["device_id"] for r in mine["items"]} == {a.device_id}
    assert (await api.get("/api/v1/me", headers=bearer(a.token))).json()["name"] == "Test Patient"
    theirs = (await api.get("/api/v1/me/readings", headers=bearer(b.token))).json()
    assert [r["value_mgdl"] for r in theirs["items"]] == [145.0]
    assert (await api.get("/api/v1/me", headers=bearer(b.token))).json()["name"] == "Patient B"

    # a meter's token is typed into a meter by the team: it is not the patient's key to her record
    meter = await add_device(db, a.patient_id, kind="meter")
    assert (await api.get("/api/v1/me", headers=bearer(meter.token))).status_code == 403
    assert (await api.get("/api/v1/me", headers=bearer("not-a-token"))).status_code == 401
    assert (await api.get("/api/v1/me/readings")).status_code == 401


async def test_a_revoked_token_is_refused(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    her = await patient_with_device(db, kind="app")
    assert (await api.get("/api/v1/me", headers=bearer(her.token))).status_code == 200
    async with db.acquire() as conn:
        assert await devices.revoke_device(conn, her.device_id, actor="test") is not None
    for path in ("/api/v1/me", "/api/v1/me/readings"):
        answer = await api.get(path, headers=bearer(her.token))
        assert answer.status_code == 403 and "revoked" in answer.json()["detail"]
    sent = await api.post("/api/v1/readings", json={"readings": [phone_reading(5, 0.9)]}, headers=bearer(her.token))
    assert sent.status_code == 403


async def test_her_readings_come_judged_page_by_page_and_a_resend_is_a_duplicate(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    her = await patient_with_device(db, kind="app", profile="FR")
    meter = await add_device(db, her.patient_id, kind="meter")
    readings = [
        phone_reading(300, 0.82, context="fasting"),  # in target (< 0.95 g/L)
        phone_reading(240, 1.02, context="fasting"),  # above
        phone_reading(180, 1.10, context="after_meal", meal="breakfast", minutes_after_meal=120),  # in (< 1.20)
        phone_reading(120, 0.50, context="after_meal", meal="lunch", minutes_after_meal=120),  # hypo
        {**phone_reading(60, 0, context="fasting", flags=["manual", "hi"]), "value": None},  # HI, no number: above
    ]
    first = await api.post("/api/v1/readings", json={"readings": readings}, headers=bearer(her.token))
    assert first.json() == {"accepted": 5, "duplicates": 0, "rejected": []}
    again = await api.post("/api/v1/readings", json={"readings": readings}, headers=bearer(her.token))
    assert again.json() == {"accepted": 0, "duplicates": 5, "rejected": []}
    from_meter = await api.post(
        "/api/v1/readings",
        json={"readings": [{**phone_reading(30, 0.90, context="fasting"), "id": "meter-1"}]},
        headers=bearer(meter.token),
    )
    assert from_meter.json()["accepted"] == 1

    items: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/api/v1/me/readings", params=params, headers=bearer(her.token))).json()
        pages += 1
        items += page["items"]
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == 3 and len(items) == 6
    assert [r["client_id"] for r in items] == [r["id"] for r in readings] + ["meter-1"]
    assert [r["status"] for r in items] == ["in", "above", "in", "hypo", "above", "in"]
    assert [r["slot"] for r in items] == ["fasting", "fasting", "breakfast", "lunch", "fasting", "fasting"]
    assert items[-1]["device_kind"] == "meter" and items[0]["device_kind"] == "app"
    assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", her.patient_id) == 6

    edited = await api.get("/api/v1/me/readings", params={"cursor": "eyJ4Ijox"}, headers=bearer(her.token))
    assert edited.status_code == 400
    bounded = await api.get(
        "/api/v1/me/readings",
        params={"from": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=90)).isoformat()},
        headers=bearer(her.token),
    )
    assert [r["client_id"] for r in bounded.json()["items"]] == [readings[-1]["id"], "meter-1"]
    assert (
        await api.get("/api/v1/me/readings", params={"from": "yesterday"}, headers=bearer(her.token))
    ).status_code == 422


async def test_the_shell_manifest_and_worker_are_served(api: httpx.AsyncClient) -> None:
    shell = await api.get("/app", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert shell.status_code == 200
    assert "script-src 'self'" in shell.headers["content-security-policy"]
    assert '<html lang="en">' in shell.text and "/app/manifest.webmanifest" in shell.text
    assert '<html lang="fr">' in (await api.get("/app", headers={"Accept-Language": "fr-FR"})).text
    manifest = await api.get("/app/manifest.webmanifest")
    assert manifest.json()["start_url"] == "/app" and len(manifest.json()["icons"]) == 3
    for icon in manifest.json()["icons"]:
        assert (await api.get(icon["src"])).status_code == 200
    worker = await api.get("/app/sw.js")
    assert worker.headers["service-worker-allowed"] == "/app" and "caches.open" in worker.text
