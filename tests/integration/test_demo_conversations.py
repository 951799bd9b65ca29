"""The demo's care-loop data: two companion-app patients have written to the team (one answered), and a patient
whose monitoring has ended is archived; each made once."""

from __future__ import annotations

import asyncpg

from clinic import messages
from telemon import teams
from telemon.app import demo
from tests.support.factories import patient_with_device
from tools.simulator.records import DeviceRecord


async def test_two_app_patients_have_a_conversation_made_once(db: asyncpg.Pool) -> None:
    apps = []
    for n in range(3):
        setup = await patient_with_device(db, kind="app")
        apps.append(DeviceRecord(f"SIM-{n}", str(setup.patient_id), setup.device_id, setup.token, "app"))
    async with db.acquire() as conn:
        if not await teams.clinician_exists(conn, demo.EMAIL):
            team_id = await teams.create_team(conn, "demo-conversations")
            await teams.create_clinician(
                conn, email=demo.EMAIL, password=demo.PASSWORD, team_id=team_id, role="diabetologist"
            )
    await demo.conversations(db, apps)
    await demo.conversations(db, apps)  # a second start changes nothing
    first, second, third = [await messages.page(db, app.patient_uuid) for app in apps]
    assert [m.author for m in reversed(first)] == ["patient", "clinician"]
    assert [m.author for m in second] == ["patient"]  # waiting for the team: on the triage
    assert third == []


async def test_the_demo_team_has_an_archived_patient_made_once(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        team_id = await teams.create_team(conn, f"demo-archive-{id(conn)}")
        await demo.archived_patient(conn, team_id)
        await demo.archived_patient(conn, team_id)  # a second start changes nothing
        rows = await conn.fetch(
            "SELECT archived_at, delivery_date FROM patients WHERE team_id = $1 AND external_id = $2",
            team_id,
            demo.ARCHIVED_ID,
        )
    assert len(rows) == 1
    assert rows[0]["archived_at"] is not None and rows[0]["delivery_date"] is not None
