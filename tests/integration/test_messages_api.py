"""The patient's messages through her app's own API (``GET|POST /api/v1/me/messages``): a token reaches its own
patient's conversation only, pages follow the cursor, a bad body is a 422 naming the field (never a 500), reading
gives a receipt, and a message can never be edited afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from clinic import messages
from telemon.app.services import Services
from tests.support.clinic import auth, clinic_client
from tests.support.factories import add_device, patient_with_device
from tests.test_ui_toolkit import make_clinician, make_team


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


async def _app(db: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A patient (team, patient id) and her app's token."""
    setup = await patient_with_device(db, kind="app")
    return setup.team_id, setup.patient_id, setup.token


async def _from_team(db: asyncpg.Pool, patient_id: uuid.UUID, body: str, clinician_id: uuid.UUID) -> int:
    async with db.acquire() as conn, conn.transaction():
        sent = await messages.send(conn, patient_id, body, actor=f"clinician:{clinician_id}", clinician_id=clinician_id)
    return sent.id


async def _clinician(db: asyncpg.Pool, team_id: uuid.UUID) -> uuid.UUID:
    from tests.test_ui_toolkit import Team

    email = await make_clinician(db, Team(team_id, "t"))
    found: uuid.UUID = await db.fetchval("SELECT id FROM clinicians WHERE email = $1", email)
    return found


async def test_a_token_reaches_its_own_patients_conversation_only(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    _, alice, alice_token = await _app(db)
    team_b, bea, bea_token = await _app(db)
    doctor = await _clinician(db, team_b)
    await _from_team(db, bea, "For Béa only", doctor)

    sent = await api.post("/api/v1/me/messages", json={"body": "  Hello from Alice  "}, headers=auth(alice_token))
    assert sent.status_code == 201, sent.text
    assert sent.json()["body"] == "Hello from Alice" and sent.json()["author"] == "patient"
    mine = (await api.get("/api/v1/me/messages", headers=auth(alice_token))).json()
    assert [m["body"] for m in mine["items"]] == ["Hello from Alice"] and mine["next"] is None
    theirs = (await api.get("/api/v1/me/messages", headers=auth(bea_token))).json()
    assert [m["body"] for m in theirs["items"]] == ["For Béa only"]
    assert await db.fetchval("SELECT count(*) FROM messages WHERE patient_id = $1", bea) == 1
    assert await db.fetchval("SELECT patient_id FROM messages WHERE id = $1", sent.json()["id"]) == alice

    # no token, an unknown token, a meter's token, a revoked app: nothing
    assert (await api.get("/api/v1/me/messages")).status_code == 401
    assert (await api.get("/api/v1/me/messages", headers=auth("tmd_nothing"))).status_code == 401
    meter = await add_device(db, alice, "meter")
    assert (await api.get("/api/v1/me/messages", headers=auth(meter.token))).status_code == 403
    await db.execute("UPDATE devices SET active = false WHERE patient_id = $1", alice)
    assert (await api.post("/api/v1/me/messages", json={"body": "x"}, headers=auth(alice_token))).status_code == 403


async def test_pages_go_back_in_time_and_after_asks_for_what_is_new(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    _, _, token = await _app(db)
    for i in range(7):
        answer = await api.post("/api/v1/me/messages", json={"body": f"m{i}"}, headers=auth(token))
        assert answer.status_code == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": "3"} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/api/v1/me/messages", params=params, headers=auth(token))).json()
        seen += [m["body"] for m in page["items"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"m{i}" for i in reversed(range(7))] and pages == 3
    newest = (await api.get("/api/v1/me/messages", params={"limit": "1"}, headers=auth(token))).json()["items"][0]
    after = await api.get("/api/v1/me/messages", params={"after": str(newest["id"])}, headers=auth(token))
    assert after.json() == {"items": [], "next": None}
    edited = await api.get("/api/v1/me/messages", params={"cursor": "bm90IGEgY3Vyc29y"}, headers=auth(token))
    assert edited.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"body": ""},
        {"body": "   \n "},
        {"body": "x" * 4001},
        {"body": "a\u0000b"},
        {"body": 12},
        {"body": None},
        {},
        {"body": "ok", "extra": 1},
    ],
)
async def test_a_bad_body_is_a_422_naming_the_field(api: httpx.AsyncClient, db: asyncpg.Pool, body: object) -> None:
    _, patient, token = await _app(db)
    answer = await api.post("/api/v1/me/messages", json=body, headers=auth(token))
    assert answer.status_code == 422, answer.text
    places = [e["loc"] for e in answer.json()["detail"]]
    assert ["body", "body"] in places or ["body", "extra"] in places
    assert await db.fetchval("SELECT count(*) FROM messages WHERE patient_id = $1", patient) == 0


async def test_a_lone_surrogate_or_a_broken_body_is_refused_without_a_500(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    _, _, token = await _app(db)
    headers = auth(token) | {"content-type": "application/json"}
    surrogate = await api.post("/api/v1/me/messages", content=b'{"body": "a\\ud800b"}', headers=headers)
    assert surrogate.status_code == 422 and surrogate.json()["detail"][0]["loc"] == ["body", "body"]
    assert "\\ud800" not in surrogate.text
    broken = await api.post("/api/v1/me/messages", content=b'{"body": ', headers=headers)
    assert broken.status_code == 422
    deep = await api.post("/api/v1/me/messages", content=b"[" * 100_000 + b"]" * 100_000, headers=headers)
    assert deep.status_code == 422
    exactly = await api.post("/api/v1/me/messages", json={"body": "é" * 4000}, headers=auth(token))
    assert exactly.status_code == 201


async def test_reading_gives_receipts_both_ways_and_a_message_cannot_be_edited(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    team, patient, token = await _app(db)
    doctor = await _clinician(db, team)
    from_team = await _from_team(db, patient, "Please measure after lunch", doctor)
    first = (await api.get("/api/v1/me/messages", headers=auth(token))).json()["items"]
    assert first[0]["read_at"] is None and first[0]["author"] == "team" and first[0]["author_name"]
    row = await db.fetchrow("SELECT read_at, read_by FROM messages WHERE id = $1", from_team)
    assert row["read_at"] is not None and row["read_by"].startswith("device:")
    again = (await api.get("/api/v1/me/messages", headers=auth(token))).json()["items"]
    assert again[0]["read_at"] is not None  # no longer new
    read = await db.fetchrow(
        "SELECT actor, detail FROM audit_log WHERE action = 'message.read' AND patient_id = $1", patient
    )
    assert read["detail"]["message_ids"] == [from_team]

    reply = (await api.post("/api/v1/me/messages", json={"body": "Done"}, headers=auth(token))).json()
    async with db.acquire() as conn, conn.transaction():
        assert await messages.mark_read(
            conn, patient, author="patient", up_to=reply["id"], reader=f"clinician:{doctor}"
        ) == [reply["id"]]
    mine = (await api.get("/api/v1/me/messages", headers=auth(token))).json()["items"]
    assert mine[0]["id"] == reply["id"] and mine[0]["read_at"] is not None

    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE messages SET body = 'changed' WHERE id = $1", reply["id"])
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("UPDATE messages SET read_at = now() - interval '1 day' WHERE id = $1", reply["id"])
    sent = await db.fetchrow(
        "SELECT actor, detail FROM audit_log WHERE action = 'message.send' AND patient_id = $1 ORDER BY id DESC",
        patient,
    )
    assert sent["actor"].startswith("device:") and sent["detail"]["message_id"] == reply["id"]


async def test_a_new_message_is_announced_after_the_commit(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    _, patient, token = await _app(db)
    heard: list[dict[str, object]] = []

    def hear(*args: object) -> None:
        heard.append(json.loads(str(args[3])))

    async with db.acquire() as conn:
        await conn.add_listener("telemon_messages", hear)
        sent = (await api.post("/api/v1/me/messages", json={"body": "hi"}, headers=auth(token))).json()
        for _ in range(100):
            if heard:
                break
            await conn.execute("SELECT 1")
        await conn.remove_listener("telemon_messages", hear)
        assert {"patient_id": str(patient), "id": sent["id"], "author": "patient"} in heard


async def test_new_teams_start_with_templates_in_both_languages(db: asyncpg.Pool) -> None:
    team = await make_team(db)
    found = await messages.templates(db, team.id, "fr")
    assert len(found) >= 3 and all(t.body_fr and t.body_en for t in found)
    assert "Merci d'appeler le service" in [t.title_fr for t in found]


async def test_the_teams_messages_are_pushed_to_her_app_and_to_no_one_else(
    services: Services, db: asyncpg.Pool
) -> None:
    """``/api/v1/me/events`` on a real server: a message from her team arrives as an event at once (ids only),
    another patient's conversation never does, and a meter's token or no token opens nothing."""
    from tests.integration.test_ui_live import api_process

    team_id, patient_id, token = await _app(db)
    _other_team, other_patient, _other_token = await _app(db)
    clinician = await _clinician(db, team_id)
    meter = await add_device(db, patient_id, kind="meter")
    events: list[tuple[str, dict[str, object]]] = []

    async with api_process(services) as base, httpx.AsyncClient() as http:
        assert (await http.get(f"{base}/api/v1/me/events")).status_code == 401
        assert (await http.get(f"{base}/api/v1/me/events", headers=auth(meter.token))).status_code == 403

        async def read() -> None:
            async with http.stream("GET", f"{base}/api/v1/me/events", headers=auth(token), timeout=None) as answer:
                assert answer.headers["content-type"].startswith("text/event-stream")
                kind = None
                async for line in answer.aiter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: ") and kind:
                        events.append((kind, json.loads(line[6:])))

        async def seen(match: object) -> None:
            for _ in range(500):
                if any(match(kind, data) for kind, data in events):  # type: ignore[operator]
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"not seen in {events}")

        reader = asyncio.create_task(read())
        try:
            await seen(lambda kind, _data: kind == "hello")
            await _from_team(db, other_patient, "for someone else", await _clinician(db, _other_team))
            sent = await _from_team(db, patient_id, "Bonjour, pensez à mesurer après le dîner", clinician)
            await seen(lambda kind, data: kind == "message" and data.get("id") == sent)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
    messages_seen = [data for kind, data in events if kind == "message"]
    assert messages_seen == [{"id": sent, "author": "team"}]  # not the other patient's, and never the words
