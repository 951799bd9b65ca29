"""The clinic's hospital API against a real PostgreSQL: enrolment once per hospital number, the list, reading and
changing a record, the archive, devices (pair, list, rotate, revoke) and the pairing-code exchange, each change
audited as the key that made it."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from telemon import devices
from telemon.app.services import Services
from tests.support.clinic import WRITE, auth, clinic_client, enrol, enrolment, last_audit, new_team, reading
from tests.support.factories import api_key
from tests.test_ui_toolkit import add_alert


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


async def test_enrolment_is_idempotent_on_the_hospital_number(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    body = enrolment(diagnosis_date=dt.date.today().isoformat())
    first = await api.post("/api/v1/patients", json=body, headers=auth(key))
    assert first.status_code == 201
    patient = first.json()
    assert patient["team_id"] == str(team)
    assert (patient["external_id"], patient["name"], patient["timezone"]) == (
        body["external_id"],
        "Camille Martin",
        "Europe/Paris",
    )
    assert patient["archived"] is False and patient["delivery_date"] is None

    again = await api.post("/api/v1/patients", json=body, headers=auth(key))
    assert again.status_code == 200
    assert again.json() == patient
    # a repeat that says less (defaults left out) is the same enrolment
    fewer = {k: body[k] for k in ("external_id", "name", "timezone", "due_date")}
    assert (await api.post("/api/v1/patients", json=fewer, headers=auth(key))).json()["id"] == patient["id"]

    conflicting = await api.post("/api/v1/patients", json={**body, "profile": "NICE"}, headers=auth(key))
    assert conflicting.status_code == 409
    assert patient["id"] in conflicting.json()["detail"] and "profile" in conflicting.json()["detail"]
    assert await db.fetchval("SELECT count(*) FROM patients WHERE team_id = $1", team) == 1

    created = await last_audit(db, "patient.create", patient["id"])
    key_row = await db.fetchrow("SELECT id, label FROM api_keys WHERE key_hash = sha256($1::text::bytea)", key)
    assert created["actor"] == f"api_key:{key_row['id']}"
    assert created["detail"]["api_key"] == key_row["label"]


async def test_two_identical_enrolments_at_once_make_one_patient(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    body = enrolment()
    answers = await asyncio.gather(*(api.post("/api/v1/patients", json=body, headers=auth(key)) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len({a.json()["id"] for a in answers}) == 1


async def test_a_key_of_several_teams_names_the_team(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    one, two, stranger = await new_team(db), await new_team(db), await new_team(db)
    key = await api_key(db, *WRITE, teams=[one, two])
    unnamed = await api.post("/api/v1/patients", json=enrolment(), headers=auth(key))
    assert unnamed.status_code == 422 and unnamed.json()["detail"][0]["loc"] == ["body", "team_id"]
    foreign = await api.post("/api/v1/patients", json=enrolment(team_id=str(stranger)), headers=auth(key))
    assert foreign.status_code == 422 and foreign.json()["detail"][0]["loc"] == ["body", "team_id"]
    named = await enrol(api, key, team_id=str(two))
    assert named["team_id"] == str(two)


async def test_list_filters_by_archive_and_change_and_pages(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    other_key = await api_key(db, *WRITE, teams=[await new_team(db)])
    await enrol(api, other_key)  # another team's patient never shows
    made = [await enrol(api, key) for _ in range(3)]
    archived = (await api.post(f"/api/v1/patients/{made[0]['id']}/archive", headers=auth(key))).json()

    async def ids(**params: Any) -> list[str]:
        answer = await api.get("/api/v1/patients", params=params, headers=auth(key))
        assert answer.status_code == 200, answer.text
        return [p["id"] for p in answer.json()["items"]]

    everyone = await ids()
    assert sorted(everyone) == sorted(p["id"] for p in made)
    assert everyone[-1] == made[0]["id"]  # by last change: the archive came last
    assert await ids(status="archived") == [made[0]["id"]]
    assert sorted(await ids(status="active")) == sorted(p["id"] for p in made[1:])
    assert await ids(updated_since=archived["updated_at"]) == [made[0]["id"]]

    pages: list[str] = []
    cursor: str | None = None
    while True:
        page = (await api.get("/api/v1/patients", params={"limit": 1, **({"cursor": cursor} if cursor else {})},
                              headers=auth(key))).json()  # fmt: skip
        pages.extend(p["id"] for p in page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    assert pages == everyone
    read = await last_audit(db, "patients.read")
    assert read["detail"]["count"] == 1  # the last page


async def test_read_and_change_a_patient(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    patient = await enrol(api, key)
    other = await enrol(api, key)
    path = f"/api/v1/patients/{patient['id']}"
    assert (await api.get(path, headers=auth(key))).json() == patient
    assert (await last_audit(db, "patient.read", patient["id"]))["patient_id"] == uuid.UUID(patient["id"])

    due = (dt.date.today() + dt.timedelta(days=100)).isoformat()
    changed = await api.patch(
        path, json={"name": "Camille Durand", "due_date": due, "readings_per_day": 6}, headers=auth(key)
    )
    assert changed.status_code == 200, changed.text
    after = changed.json()
    assert (after["name"], after["due_date"], after["readings_per_day"]) == ("Camille Durand", due, 6)
    assert after["profile"] == patient["profile"] and after["updated_at"] > patient["updated_at"]
    audit = await last_audit(db, "patient.update", patient["id"])
    assert audit["detail"]["display_name"] == ["Camille Martin", "Camille Durand"]
    assert audit["detail"]["readings_per_day"] == [4, 6]

    taken = await api.patch(path, json={"external_id": other["external_id"]}, headers=auth(key))
    assert taken.status_code == 409 and other["external_id"] in taken.json()["detail"]
    nulled = await api.patch(path, json={"name": None}, headers=auth(key))
    assert nulled.status_code == 422 and nulled.json()["detail"][0]["loc"] == ["body", "name"]
    cleared = await api.patch(path, json={"diagnosis_date": None}, headers=auth(key))
    assert cleared.status_code == 200 and cleared.json()["diagnosis_date"] is None


async def test_archive_ends_monitoring_and_unarchive_is_audited(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    patient = await enrol(api, key)
    path = f"/api/v1/patients/{patient['id']}"
    device = (await api.post(f"{path}/devices", json={"kind": "meter"}, headers=auth(key))).json()
    alert_id = await add_alert(db, uuid.UUID(patient["id"]))

    archived = await api.post(f"{path}/archive", headers=auth(key))
    assert archived.status_code == 200
    assert archived.json()["archived"] is True and archived.json()["archived_by"].startswith("api_key:")
    alert = await db.fetchrow("SELECT status, resolved_reason FROM alerts WHERE id = $1", alert_id)
    assert (alert["status"], alert["resolved_reason"]) == ("resolved", "archived")
    refused = await api.post("/api/v1/readings", json=reading(), headers=auth(device["token"]))
    assert refused.status_code == 403  # her devices were revoked with the archive
    audit = await last_audit(db, "patient.archive", patient["id"])
    assert audit["detail"]["devices_revoked"] == [device["device_id"]]
    assert audit["detail"]["alerts_resolved"] == [alert_id]

    # read-only, still readable; archiving again changes nothing
    assert (await api.patch(path, json={"name": "X"}, headers=auth(key))).status_code == 409
    assert (await api.post(f"{path}/devices", json={"kind": "app"}, headers=auth(key))).status_code == 409
    assert (await api.get(path, headers=auth(key))).json()["archived"] is True
    again = await api.post(f"{path}/archive", headers=auth(key))
    assert again.json()["archived_at"] == archived.json()["archived_at"]

    restored = await api.post(f"{path}/unarchive", headers=auth(key))
    assert restored.status_code == 200 and restored.json()["archived"] is False
    assert restored.json()["archived_at"] is None
    assert (await last_audit(db, "patient.unarchive", patient["id"]))["actor"].startswith("api_key:")
    assert (await api.patch(path, json={"name": "Camille D."}, headers=auth(key))).status_code == 200


async def test_devices_pair_list_rotate_revoke(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    patient = await enrol(api, key)
    path = f"/api/v1/patients/{patient['id']}/devices"

    made = await api.post(path, json={"kind": "meter", "label": "Accu-Chek Guide"}, headers=auth(key))
    assert made.status_code == 201, made.text
    meter = made.json()
    assert meter["token"].startswith("tmd_") and meter["label"] == "Accu-Chek Guide"
    assert meter["http"] == {
        "readings_url": "https://telemon.test/api/v1/readings",
        "authorization": f"Bearer {meter['token']}",
    }
    assert meter["nightscout"] is None
    assert len(meter["pairing_code"]) == 14 and meter["pairing_code"][4] == "-"
    sent = await api.post("/api/v1/readings", json=reading(), headers=auth(meter["token"]))
    assert sent.status_code == 200 and sent.json()["accepted"] == 1

    cgm = (await api.post(path, json={"kind": "cgm"}, headers=auth(key))).json()
    assert cgm["http"] is None and cgm["mqtt"] is None
    assert cgm["nightscout"]["url"] == "https://telemon.test/ns"
    assert cgm["nightscout"]["api_secret"] == cgm["token"]
    assert cgm["nightscout"]["xdrip_url"] == f"https://{cgm['token']}@telemon.test/ns/api/v1/"
    secret = hashlib.sha1(cgm["token"].encode()).hexdigest()  # noqa: S324 - Nightscout's protocol
    assert (await api.get("/ns/api/v1/verifyauth", headers={"api-secret": secret})).status_code == 200

    listed = await api.get(path, headers=auth(key))
    assert listed.status_code == 200
    by_id = {d["device_id"]: d for d in listed.json()["items"]}
    assert by_id[meter["device_id"]]["readings_7d"] == 1 and by_id[meter["device_id"]]["last_seen_at"]
    assert by_id[cgm["device_id"]]["readings_7d"] == 0 and by_id[cgm["device_id"]]["active"] is True
    assert listed.json()["next"] is None

    rotated = await api.post(f"{path}/{meter['device_id']}/rotate", headers=auth(key))
    assert rotated.status_code == 200
    new_token = rotated.json()["token"]
    assert new_token != meter["token"]
    assert (await api.post("/api/v1/readings", json=reading(), headers=auth(meter["token"]))).status_code == 401
    assert (await api.post("/api/v1/readings", json=reading(30), headers=auth(new_token))).status_code == 200
    assert (await last_audit(db, "device.rotate", patient["id"]))["detail"]["device_id"] == meter["device_id"]
    # the broker's password file is written from the stored hash: the new token's, and no other
    async with db.acquire() as conn:
        accounts = dict(await devices.broker_accounts(conn))
    assert broker_accepts(accounts[meter["device_id"]], new_token)
    assert not broker_accepts(accounts[meter["device_id"]], meter["token"])

    revoked = await api.delete(f"{path}/{meter['device_id']}", headers=auth(key))
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False and revoked.json()["revoked_at"]
    assert revoked.json()["readings_7d"] == 2
    assert (await api.post("/api/v1/readings", json=reading(20), headers=auth(new_token))).status_code == 403
    async with db.acquire() as conn:
        assert meter["device_id"] not in dict(await devices.broker_accounts(conn))
    assert (await last_audit(db, "device.revoke", patient["id"]))["detail"]["device_id"] == meter["device_id"]
    # revoking again changes nothing; a revoked device cannot be rotated
    assert (await api.delete(f"{path}/{meter['device_id']}", headers=auth(key))).json()["active"] is False
    assert (await api.post(f"{path}/{meter['device_id']}/rotate", headers=auth(key))).status_code == 409
    # another patient's device is not this patient's
    other = await enrol(api, key)
    assert (
        await api.delete(f"/api/v1/patients/{other['id']}/devices/{cgm['device_id']}", headers=auth(key))
    ).status_code == 404


def broker_accepts(stored: str, password: str) -> bool:
    """Mosquitto's check of a ``$7$`` password-file hash."""
    _, _, iterations, salt, digest = stored.split("$")
    mine = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return base64.b64encode(mine).decode() == digest


async def test_pairing_code_gives_the_app_its_token_once(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    patient = await enrol(api, key)
    app = (await api.post(f"/api/v1/patients/{patient['id']}/devices", json={"kind": "app"}, headers=auth(key))).json()

    typed = app["pairing_code"].lower().replace("-", " ")  # as a person types it
    paired = await api.post("/api/v1/pairing", json={"code": typed})
    assert paired.status_code == 200, paired.text
    answer = paired.json()
    assert answer["device_id"] == app["device_id"] and answer["kind"] == "app"
    assert answer["http"]["readings_url"] == "https://telemon.test/api/v1/readings"
    assert (await api.post("/api/v1/readings", json=reading(), headers=auth(answer["token"]))).status_code == 200
    # the device has one credential: the token of the sheet stops working
    assert (await api.post("/api/v1/readings", json=reading(5), headers=auth(app["token"]))).status_code == 401
    audit = await last_audit(db, "device.pair", patient["id"])
    assert audit["actor"] == f"device:{app['device_id']}"

    reused = await api.post("/api/v1/pairing", json={"code": app["pairing_code"]})
    assert reused.status_code == 401
    assert (await api.post("/api/v1/readings", json=reading(3), headers=auth(answer["token"]))).status_code == 200

    # a new code for the device; an expired one is refused even with the right secret
    fresh = await api.post(
        f"/api/v1/patients/{patient['id']}/devices/{app['device_id']}/pairing-code", headers=auth(key)
    )
    assert fresh.status_code == 201
    await db.execute(
        "UPDATE pairing_codes SET expires_at = now() - interval '1 second' WHERE device_id = $1 AND closed_at IS NULL",
        app["device_id"],
    )
    assert (await api.post("/api/v1/pairing", json={"code": fresh.json()["pairing_code"]})).status_code == 401


async def test_pairing_codes_cannot_be_brute_forced(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    patient = await enrol(api, key)
    app = (await api.post(f"/api/v1/patients/{patient['id']}/devices", json={"kind": "app"}, headers=auth(key))).json()
    code = app["pairing_code"]

    # five wrong secrets for the code's selector lock it: the right code is refused afterwards
    for attempt in range(devices.PAIRING_MAX_FAILURES):
        wrong = code[:5] + ("2222-2222" if attempt % 2 else "3333-3333")
        assert (await api.post("/api/v1/pairing", json={"code": wrong})).status_code == 401
    locked = await api.post("/api/v1/pairing", json={"code": code})
    assert locked.status_code == 401
    assert (await last_audit(db, "device.pairing_refused", patient["id"]))["detail"]["refused"] == "locked"
    # its token was never replaced
    assert (await api.post("/api/v1/readings", json=reading(), headers=auth(app["token"]))).status_code == 200

    # the address has now 6 failures of the 10 its window allows; guessing on is refused with a wait
    statuses = [(await api.post("/api/v1/pairing", json={"code": "ZZZZ-ZZZZ-ZZZZ"})).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    waited = await api.post("/api/v1/pairing", json={"code": "ZZZZ-ZZZZ-ZZZZ"})
    assert waited.status_code == 429 and 1 <= int(waited.headers["retry-after"]) <= 15 * 60
    # even a right code waits: the limit is per address, whatever the code
    fresh = await api.post(
        f"/api/v1/patients/{patient['id']}/devices/{app['device_id']}/pairing-code", headers=auth(key)
    )
    assert (await api.post("/api/v1/pairing", json={"code": fresh.json()["pairing_code"]})).status_code == 429


async def test_a_code_is_used_once_when_two_exchanges_race(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    patient = await enrol(api, key)
    app = (await api.post(f"/api/v1/patients/{patient['id']}/devices", json={"kind": "app"}, headers=auth(key))).json()
    answers = await asyncio.gather(*(api.post("/api/v1/pairing", json={"code": app["pairing_code"]}) for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 401, 401]


async def test_the_openapi_document_describes_the_clinic(api: httpx.AsyncClient) -> None:
    document = (await api.get("/openapi.json")).json()
    paths = {
        p: ops for p, ops in document["paths"].items() if p.startswith("/api/v1/patients") or p == "/api/v1/pairing"
    }
    schemas = document["components"]["schemas"]
    enrol_op = paths["/api/v1/patients"]["post"]
    assert enrol_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/PatientIn")
    assert set(enrol_op["responses"]) >= {"200", "201", "401", "403", "409", "422"}
    assert {"external_id", "name", "timezone", "due_date", "profile", "treatment", "readings_per_day"} <= set(
        schemas["PatientIn"]["properties"]
    )
    assert paths["/api/v1/patients/{patient_id}/devices"]["post"]["responses"]["201"]["content"]["application/json"][
        "schema"
    ]["$ref"].endswith("/NewDeviceOut")
    pairing = paths["/api/v1/pairing"]["post"]
    assert pairing["security"] == [{}]  # no key: the code is the credential
    assert {"200", "401", "422", "429"} <= set(pairing["responses"])
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert operation["security"], (method, path)
            assert "401" in operation["responses"] and "422" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    assert response["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/Error"
                if status.startswith("2"):  # a JSON answer (FHIR's too) has its schema; a PDF or a CSV has none
                    [(media_type, body)] = response["content"].items()
                    assert body.get("schema") or not media_type.endswith("json"), (method, path, status)
    assert "HTTPValidationError" not in str(document)
