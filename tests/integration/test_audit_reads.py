"""Every read of patient data leaves one audit row per request naming who read which patients: the triage list,
the all-patients list, the alerts API with or without a patient, the dashboard's event stream and the patient
page's live refresh."""

from __future__ import annotations

import json
import uuid

import asyncpg
import httpx

from telemon.app.services import Services
from telemon.security import secret_hash
from tests.integration.test_ui_live import Stream, api_process, login_at
from tests.support.factories import api_key
from tests.test_ui_toolkit import add_alert, browser, login, make_clinician, make_patient, make_team


async def actor_of(db: asyncpg.Pool, email: str) -> str:
    return f"clinician:{await db.fetchval('SELECT id FROM clinicians WHERE email = $1', email)}"


async def reads(db: asyncpg.Pool, actor: str, action: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT patient_id, patient_ids, detail FROM audit_log WHERE actor = $1 AND action = $2 ORDER BY id",
        actor,
        action,
    )


async def test_triage_and_all_patients_lists_name_their_patients_once_per_request(
    services: Services, db: asyncpg.Pool
) -> None:
    team, other = await make_team(db), await make_team(db)
    email = await make_clinician(db, team)
    first, _ = await make_patient(db, team, "First")
    second, _ = await make_patient(db, team, "Second")
    quiet, _ = await make_patient(db, team, "No alert")
    stranger, _ = await make_patient(db, other, "Other team")
    for patient in (first, second, stranger):
        await add_alert(db, patient)
    actor = await actor_of(db, email)
    async with browser(services) as http:
        await login(http, email)
        for _ in range(2):  # two polls: two rows, not one per patient per poll
            assert (await http.get("/")).status_code == 200
        assert (await http.get("/patients")).status_code == 200

    triage = await reads(db, actor, "triage.read")
    assert len(triage) == 2
    for row in triage:
        assert row["patient_id"] is None and set(row["patient_ids"]) == {first, second}
        assert row["detail"] == {"page": 1}
    [listing] = await reads(db, actor, "patients.list")
    assert set(listing["patient_ids"]) == {first, second, quiet}  # the list shows every patient of the team
    assert stranger not in listing["patient_ids"]


async def test_alert_list_without_a_patient_names_the_patients_shown(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    first, _ = await make_patient(db, team, "First")
    second, _ = await make_patient(db, team, "Second")
    await add_alert(db, first)
    await add_alert(db, first, rule="hyper_fasting", severity="warning")
    await add_alert(db, second)
    key = await api_key(db, "alerts:read", teams=[team.id])
    key_id = await db.fetchval("SELECT id FROM api_keys WHERE key_hash = $1", secret_hash(key))
    actor = f"api_key:{key_id}"

    listed = await client.get("/api/v1/alerts", headers={"X-API-Key": key})
    assert len(listed.json()["items"]) == 3
    one = await client.get("/api/v1/alerts", params={"patient_id": str(second)}, headers={"X-API-Key": key})
    assert len(one.json()["items"]) == 1

    rows = await reads(db, actor, "alerts.read")
    assert len(rows) == 2
    assert rows[0]["patient_id"] is None and sorted(rows[0]["patient_ids"]) == sorted({first, second})
    assert rows[0]["detail"] == {"count": 3}
    assert rows[1]["patient_id"] == second and rows[1]["patient_ids"] == [second]


async def test_patient_page_live_refresh_is_audited_apart_from_a_visit(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team)
    actor = await actor_of(db, email)
    async with browser(services) as http:
        await login(http, email)
        assert (await http.get(f"/patients/{patient}")).status_code == 200
        for _ in range(3):
            refreshed = await http.get(f"/patients/{patient}", headers={"X-Telemon-Live": "1"})
            assert refreshed.status_code == 200

    assert [r["patient_id"] for r in await reads(db, actor, "patient.view")] == [patient]
    assert [r["patient_id"] for r in await reads(db, actor, "patient.refresh")] == [patient] * 3


async def test_event_stream_names_each_patient_once_when_it_first_sends_their_data(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    first, _ = await make_patient(db, team, "First")
    second, _ = await make_patient(db, team, "Second")
    third, _ = await make_patient(db, team, "Third")
    actor = await actor_of(db, email)

    async def readings_of(*patients: uuid.UUID) -> None:
        await db.execute(
            "SELECT pg_notify('telemon_readings', $1)", json.dumps({"patient_ids": [str(p) for p in patients]})
        )

    async with api_process(services) as base, httpx.AsyncClient() as http:
        await login_at(http, base, email)
        async with Stream(http, base) as stream:
            [opened] = await reads(db, actor, "events.open")
            assert opened["patient_ids"] == [] and opened["detail"]["team_ids"] == [str(team.id)]

            def sent(patient: uuid.UUID, times: int) -> bool:
                return [d for k, d in stream.events if k == "reading"].count({"patient_id": str(patient)}) >= times

            await readings_of(first, second)  # one notification, both events at once: one row naming both
            await stream.wait_for(lambda kind, data: sent(second, 1))
            await readings_of(first, second)  # already named in this stream: no row
            await stream.wait_for(lambda kind, data: sent(second, 2))
            await readings_of(third)
            await stream.wait_for(lambda kind, data: sent(third, 1))

    rows = await reads(db, actor, "events.read")
    assert [sorted(r["patient_ids"]) for r in rows] == [sorted([first, second]), [third]]
    assert {r["detail"]["stream"] for r in rows} == {opened["detail"]["stream"]}
