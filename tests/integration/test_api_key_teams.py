"""API keys belong to care teams: every endpoint a key reaches answers another team's patient or alert exactly as
it answers one that does not exist, and the administration commands create, list and revoke team keys."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from telemon.auth import NO_TEAM
from telemon.security import new_secret, secret_hash
from tests.integration.test_cli import run_json, telemon
from tests.support.factories import api_key, patient_with_device
from tests.test_ui_toolkit import add_alert

FHIR_JSON = {"Content-Type": "application/fhir+json"}


@dataclass(frozen=True)
class Side:
    """One care team with a patient who has a reading and an open alert, and a key of that team only."""

    team_id: uuid.UUID
    patient_id: uuid.UUID
    external_id: str
    alert_id: int
    key: str  # readings:read, readings:write, alerts:read, alerts:write


async def side(client: httpx.AsyncClient, db: asyncpg.Pool) -> Side:
    setup = await patient_with_device(db)
    sent = await client.post(
        "/api/v1/readings",
        json={"readings": [{"measured_at": _iso(_now() - dt.timedelta(hours=1)), "value": 101, "unit": "mg/dL"}]},
        headers={"Authorization": f"Bearer {setup.token}"},
    )
    assert sent.json()["accepted"] == 1
    external_id = await db.fetchval("SELECT external_id FROM patients WHERE id = $1", setup.patient_id)
    alert_id = await add_alert(db, setup.patient_id)
    key = await api_key(db, "readings:read", "readings:write", "alerts:read", "alerts:write", teams=[setup.team_id])
    return Side(setup.team_id, setup.patient_id, external_id, alert_id, key)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _same_answer(stranger: httpx.Response, missing: httpx.Response, stranger_ref: str, missing_ref: str) -> None:
    """The answer about another team's record is the answer about a missing one, but for the reference itself."""
    assert stranger.status_code == missing.status_code
    assert stranger.headers["content-type"] == missing.headers["content-type"]
    assert stranger.text.replace(stranger_ref, "REF") == missing.text.replace(missing_ref, "REF")


def observation(subject: dict[str, Any], value: float = 99) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}]},
        "subject": subject,
        "effectiveDateTime": _iso(_now() - dt.timedelta(minutes=30)),
        "valueQuantity": {"value": value, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
    }


async def fhir_count(db: asyncpg.Pool, patient_id: uuid.UUID) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM readings WHERE patient_id = $1 AND source = 'fhir'", patient_id
    )
    return count


async def test_readings_of_another_team_are_a_missing_patient(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    a, b = await side(client, db), await side(client, db)
    both = await api_key(db, "readings:read", teams=[a.team_id, b.team_id])
    nobody = uuid.uuid4()

    def url(patient: uuid.UUID) -> str:
        return f"/api/v1/patients/{patient}/readings"

    own = await client.get(url(a.patient_id), headers={"X-API-Key": a.key})
    assert own.status_code == 200 and len(own.json()["items"]) == 1
    stranger = await client.get(url(b.patient_id), headers={"X-API-Key": a.key})
    missing = await client.get(url(nobody), headers={"X-API-Key": a.key})
    assert stranger.status_code == 404
    _same_answer(stranger, missing, str(b.patient_id), str(nobody))
    for patient in (a.patient_id, b.patient_id):  # a key of both teams reads both
        answer = await client.get(url(patient), headers={"X-API-Key": both})
        assert answer.status_code == 200 and len(answer.json()["items"]) == 1


async def test_fhir_import_into_another_team_is_a_missing_patient(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    a, b = await side(client, db), await side(client, db)
    headers = {**FHIR_JSON, "Authorization": f"Bearer {a.key}"}
    nobody, unknown_number = uuid.uuid4(), f"MRN-{uuid.uuid4().hex[:10]}"

    own = await client.post(
        "/fhir/Observation", json=observation({"reference": f"Patient/{a.patient_id}"}), headers=headers
    )
    assert own.status_code == 201, own.text
    by_id = await client.post(
        "/fhir/Observation", json=observation({"reference": f"Patient/{b.patient_id}"}), headers=headers
    )
    missing_id = await client.post(
        "/fhir/Observation", json=observation({"reference": f"Patient/{nobody}"}), headers=headers
    )
    assert by_id.status_code == 404 and by_id.json()["resourceType"] == "OperationOutcome"
    _same_answer(by_id, missing_id, str(b.patient_id), str(nobody))
    by_number = await client.post(
        "/fhir/Observation", json=observation({"identifier": {"value": b.external_id}}), headers=headers
    )
    missing_number = await client.post(
        "/fhir/Observation", json=observation({"identifier": {"value": unknown_number}}), headers=headers
    )
    assert by_number.status_code == 404
    _same_answer(by_number, missing_number, b.external_id, unknown_number)

    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": observation({"reference": f"Patient/{a.patient_id}"}, 120), "request": {"method": "POST"}},
            {"resource": observation({"reference": f"Patient/{b.patient_id}"}, 120), "request": {"method": "POST"}},
            {"resource": observation({"reference": f"Patient/{nobody}"}, 120), "request": {"method": "POST"}},
        ],
    }
    batch = await client.post("/fhir", json=bundle, headers=headers)
    assert batch.status_code == 200, batch.text
    own_entry, stranger_entry, missing_entry = (e["response"] for e in batch.json()["entry"])
    assert own_entry["status"] == "201 Created"
    assert stranger_entry["status"] == missing_entry["status"] == "404 Not Found"
    assert str(stranger_entry["outcome"]).replace(str(b.patient_id), "REF") == str(missing_entry["outcome"]).replace(
        str(nobody), "REF"
    )
    transaction = await client.post("/fhir", json={**bundle, "type": "transaction"}, headers=headers)
    assert transaction.status_code == 422
    assert (await fhir_count(db, a.patient_id), await fhir_count(db, b.patient_id)) == (2, 0)


async def test_alert_list_shows_only_the_keys_teams(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    a, b = await side(client, db), await side(client, db)
    both = await api_key(db, "alerts:read", teams=[a.team_id, b.team_id])
    nobody = uuid.uuid4()

    async def listed(key: str, **params: str) -> httpx.Response:
        answer = await client.get("/api/v1/alerts", params={"limit": "500", **params}, headers={"X-API-Key": key})
        assert answer.status_code == 200, answer.text
        return answer

    everything = (await listed(a.key)).json()["items"]
    assert a.alert_id in [x["id"] for x in everything]
    assert {x["patient_id"] for x in everything} == {str(a.patient_id)}  # this team's only, not b's
    of_both = {x["id"] for x in (await listed(both)).json()["items"]}
    assert {a.alert_id, b.alert_id} <= of_both
    # another team's patient as a filter: the same empty list as a patient that does not exist
    stranger = await listed(a.key, patient_id=str(b.patient_id))
    missing = await listed(a.key, patient_id=str(nobody))
    assert stranger.json() == missing.json() == {"items": [], "next": None}


@pytest.mark.parametrize("action", ["acknowledge", "snooze", "resolve"])
async def test_acting_on_another_teams_alert_is_a_missing_alert(
    client: httpx.AsyncClient, db: asyncpg.Pool, action: str
) -> None:
    a, b = await side(client, db), await side(client, db)
    body = {"until": _iso(_now() + dt.timedelta(hours=2))} if action == "snooze" else None
    missing_id = await db.fetchval("SELECT COALESCE(max(id), 0) + 1000000 FROM alerts")

    async def act(alert_id: int) -> httpx.Response:
        return await client.post(f"/api/v1/alerts/{alert_id}/{action}", json=body, headers={"X-API-Key": a.key})

    stranger, missing = await act(b.alert_id), await act(missing_id)
    assert stranger.status_code == 404
    _same_answer(stranger, missing, str(b.alert_id), str(missing_id))
    row = await db.fetchrow("SELECT status, snoozed_until FROM alerts WHERE id = $1", b.alert_id)
    assert (row["status"], row["snoozed_until"]) == ("open", None)  # untouched
    assert not await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = $1 AND patient_id = $2", f"alert.{action}", b.patient_id
    )
    own = await act(a.alert_id)
    assert own.status_code == 200 and own.json()["patient_id"] == str(a.patient_id)


async def test_a_key_of_no_team_is_refused_with_what_to_do(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    """A key made before keys belonged to teams (no team row) is refused, never given every team."""
    a = await side(client, db)
    legacy = new_secret("tmk_")
    await db.execute(
        "INSERT INTO api_keys (id, label, key_hash, scopes) VALUES ($1, 'before teams', $2, $3)",
        uuid.uuid4(),
        secret_hash(legacy),
        ["readings:read", "readings:write", "alerts:read", "alerts:write"],
    )
    headers = {"X-API-Key": legacy}
    answers = [
        await client.get(f"/api/v1/patients/{a.patient_id}/readings", headers=headers),
        await client.get("/api/v1/alerts", headers=headers),
        await client.post(f"/api/v1/alerts/{a.alert_id}/acknowledge", headers=headers),
    ]
    for answer in answers:
        assert answer.status_code == 403
        assert answer.json() == {"detail": NO_TEAM}
    fhir = await client.post(
        "/fhir/Observation",
        json=observation({"reference": f"Patient/{a.patient_id}"}),
        headers={**FHIR_JSON, "Authorization": f"Bearer {legacy}"},
    )
    assert fhir.status_code == 403 and fhir.json()["resourceType"] == "OperationOutcome"
    assert "telemon create-api-key --team" in fhir.text
    assert await fhir_count(db, a.patient_id) == 0
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", a.alert_id) == "open"


@pytest.mark.slow
async def test_create_list_and_revoke_team_keys_from_the_command_line(
    database_url: str, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    a, b = await side(client, db), await side(client, db)
    team_a = await db.fetchval("SELECT name FROM care_teams WHERE id = $1", a.team_id)
    label = f"DPI {uuid.uuid4().hex[:6]}"
    created = run_json(
        database_url,
        *("create-api-key", "--team", team_a, "--team", str(b.team_id), "--label", label),
        *("--scopes", "readings:read"),
    )
    key_id = uuid.UUID(created["id"])
    assert await db.fetchval("SELECT scopes FROM api_keys WHERE id = $1", key_id) == ["readings:read"]
    stored = await db.fetch("SELECT team_id FROM api_key_teams WHERE api_key_id = $1", key_id)
    assert {r["team_id"] for r in stored} == {a.team_id, b.team_id}
    for patient in (a.patient_id, b.patient_id):
        answer = await client.get(f"/api/v1/patients/{patient}/readings", headers={"X-API-Key": created["key"]})
        assert answer.status_code == 200

    listed = run_json(database_url, "list-api-keys", "--team", str(a.team_id))
    [mine] = [k for k in listed["api_keys"] if k["id"] == created["id"]]
    assert {t["id"] for t in mine["teams"]} == {str(a.team_id), str(b.team_id)}
    assert (mine["label"], mine["scopes"], mine["active"]) == (label, ["readings:read"], True)
    assert mine["created_at"] and mine["last_used_at"]  # it was just used
    assert all(str(a.team_id) in {t["id"] for t in k["teams"]} for k in listed["api_keys"])  # that team's only
    text = telemon(database_url, "list-api-keys")
    assert text.returncode == 0 and created["id"] in text.stdout and label in text.stdout
    everything = run_json(database_url, "list-api-keys")
    assert len(everything["api_keys"]) >= len(listed["api_keys"]) + 1  # b's own key is not a's
    for output in (text.stdout, str(everything)):  # never the key
        assert created["key"] not in output and secret_hash(created["key"]).hex() not in output

    revoked = run_json(database_url, "revoke-api-key", "--id", created["id"])
    assert (revoked["active"], revoked["already_revoked"]) == (False, False) and revoked["revoked_at"]
    refused = await client.get(f"/api/v1/patients/{a.patient_id}/readings", headers={"X-API-Key": created["key"]})
    assert refused.status_code == 401
    again = run_json(database_url, "revoke-api-key", "--id", created["id"])
    assert again["already_revoked"] is True and again["revoked_at"] == revoked["revoked_at"]
    audited = await db.fetch(
        "SELECT action FROM audit_log WHERE actor = 'cli' AND detail->>'api_key_id' = $1 ORDER BY id", created["id"]
    )
    assert [r["action"] for r in audited] == ["api_key.create", "api_key.revoke"]  # once, not per call
    [after] = [k for k in run_json(database_url, "list-api-keys")["api_keys"] if k["id"] == created["id"]]
    assert after["active"] is False and after["revoked_at"] == revoked["revoked_at"]

    unknown = telemon(database_url, "revoke-api-key", "--id", str(uuid.uuid4()))
    assert unknown.returncode == 2 and unknown.stderr.startswith("telemon: --id: no API key ")
    no_team = telemon(
        database_url, "create-api-key", "--team", "no-such-team", "--label", "x", "--scopes", "alerts:read"
    )
    assert (no_team.returncode, no_team.stderr) == (2, "telemon: --team: no care team with id or name 'no-such-team'\n")
    without = telemon(database_url, "create-api-key", "--label", "x", "--scopes", "alerts:read")
    assert without.returncode == 2 and "--team" in without.stderr
