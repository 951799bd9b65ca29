"""The postpartum glucose test through the hospital API: refused before the delivery (409), recorded and classified
after it (DESIGN §5's example), listed newest first, audited; another team's patient is 404 exactly as a missing
one; bad values are 422s naming every field, and nothing is stored."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from telemon import patients
from telemon.app import demo
from telemon.app.services import Services
from tests.support.clinic import auth, clinic_client, enrol, last_audit, new_team
from tests.support.factories import api_key
from tests.test_ui_toolkit import add_alert

PARIS = ZoneInfo("Europe/Paris")
EXAMPLE = {"test": "ogtt_75g", "fasting": 5.2, "two_hour": 8.9, "hba1c_percent": None, "unit": "mmol/L"}


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


async def _patient(api: httpx.AsyncClient, db: asyncpg.Pool, **changes: Any) -> tuple[str, str]:
    key = await api_key(db, "patients:read", "patients:write", teams=[await new_team(db)])
    return key, (await enrol(api, key, **changes))["id"]


async def _deliver(db: asyncpg.Pool, patient_id: str, days_ago: int = 45) -> dt.date:
    day = dt.datetime.now(PARIS).date() - dt.timedelta(days=days_ago)
    async with db.acquire() as conn:
        await patients.record_delivery(conn, uuid.UUID(patient_id), day, actor="cli")
    return day


async def _count(db: asyncpg.Pool, patient_id: str) -> int:
    found: int = await db.fetchval("SELECT count(*) FROM postpartum_tests WHERE patient_id = $1", uuid.UUID(patient_id))
    return found


async def test_refused_before_the_delivery_then_recorded_and_classified(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    key, patient = await _patient(api, db, profile="NICE")
    url = f"/api/v1/patients/{patient}/postpartum-test"
    before = await api.post(url, json=EXAMPLE, headers=auth(key))
    assert before.status_code == 409
    assert "no delivery recorded" in before.json()["detail"]
    assert await _count(db, patient) == 0

    delivered = await _deliver(db, patient)
    answer = await api.post(url, json=EXAMPLE, headers=auth(key))
    assert answer.status_code == 201, answer.text
    test = answer.json()
    assert test["classification"] == "impaired_glucose_tolerance"
    assert test["findings"] == ["impaired_glucose_tolerance"]
    assert test["follow_up"] == ["prevention_programme", "retest_annual"]
    assert (test["fasting"], test["two_hour"], test["unit"]) == (5.2, 8.9, "mmol/L")
    assert (test["fasting_mgdl"], test["two_hour_mgdl"]) == (93.681068, 160.338751)
    assert test["profile"] == "NICE" and test["source"].startswith("NICE NG3")
    assert test["date"] == dt.datetime.now(PARIS).date().isoformat()
    assert test["recorded_by"].startswith("api_key:")
    row = await last_audit(db, "postpartum.test", patient)
    assert row["detail"]["classification"] == "impaired_glucose_tolerance"
    assert row["detail"]["test_id"] == test["id"]

    # an HbA1c on the day after the delivery, recorded later: the newest by date is the current one
    hba1c = {"test": "hba1c", "hba1c_mmol_mol": 49, "date": (delivered + dt.timedelta(days=1)).isoformat()}
    second = await api.post(url, json=hba1c, headers=auth(key))
    assert second.status_code == 201, second.text
    assert second.json()["classification"] == "diabetes"
    assert second.json()["follow_up"] == ["confirm_diagnosis", "refer_diabetes_care"]
    assert second.json()["unit"] is None and second.json()["hba1c_mmol_mol"] == 49
    listed = await api.get(f"/api/v1/patients/{patient}/postpartum-tests", headers=auth(key))
    assert listed.status_code == 200
    assert [t["id"] for t in listed.json()["items"]] == [test["id"], second.json()["id"]]
    assert listed.json()["next"] is None
    assert (await last_audit(db, "postpartum.read", patient))["actor"].startswith("api_key:")


async def test_another_teams_patient_is_not_found_like_a_missing_one(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    _, patient = await _patient(api, db)
    await _deliver(db, patient)
    stranger = await api_key(db, "patients:read", "patients:write", teams=[await new_team(db)])
    for method, path, body in (
        ("POST", "postpartum-test", EXAMPLE),
        ("GET", "postpartum-tests", None),
    ):
        foreign = await api.request(method, f"/api/v1/patients/{patient}/{path}", json=body, headers=auth(stranger))
        assert foreign.status_code == 404
        missing_id = str(uuid.uuid4())
        missing = await api.request(method, f"/api/v1/patients/{missing_id}/{path}", json=body, headers=auth(stranger))
        assert missing.status_code == 404
        assert foreign.json()["detail"].replace(patient, "<id>") == missing.json()["detail"].replace(missing_id, "<id>")
    assert await _count(db, patient) == 0


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"test": "ogtt_75g", "fasting": 0.3, "two_hour": 8.9, "unit": "mmol/L"}, {"fasting"}),
        ({"test": "ogtt_75g", "fasting": 5.2, "two_hour": 890, "unit": "mmol/L"}, {"two_hour"}),
        ({"test": "ogtt_75g", "fasting": 5.2, "unit": "mmol/L"}, {"two_hour"}),
        ({"test": "fasting_glucose", "fasting": 95}, {"unit"}),
        ({"test": "fasting_glucose", "fasting": 5.21234, "unit": "mmol/L"}, {"fasting"}),
        ({"test": "hba1c", "hba1c_percent": 48}, {"hba1c_percent"}),
        ({"test": "hba1c", "hba1c_percent": 6.1, "hba1c_mmol_mol": 43}, {"hba1c_mmol_mol"}),
        ({"test": "hba1c", "hba1c_percent": 6.1, "fasting": 5.0, "unit": "mmol/L"}, {"fasting"}),
        ({"test": "fasting_glucose", "fasting": 5.2, "unit": "mmol/L", "date": "2001-01-01"}, {"date"}),
        ({"test": "ogtt_75g", "fasting": 0, "two_hour": -1, "unit": "g/L", "date": "2999-01-01"},
         {"fasting", "two_hour", "date"}),
        ({"test": "ogtt_75g", "fasting": "5.2", "two_hour": 8.9, "unit": "mmol/L"}, {"fasting"}),
        ({"test": "ogtt_75g", "fasting": True, "two_hour": 8.9, "unit": "mmol/L"}, {"fasting"}),
        ({"test": "ogtt_75g", "fasting": 5.2, "two_hour": 8.9, "unit": "mmol/l"}, {"unit"}),
        ({"test": "oral", "fasting": 5.2, "unit": "mmol/L"}, {"test"}),
        ({"test": "fasting_glucose", "fasting": 5.2, "unit": "mmol/L", "note": "x"}, {"note"}),
        ({"test": "fasting_glucose", "fasting": 5.2, "unit": "mmol/L", "date": "20/11/2026"}, {"date"}),
    ],
)  # fmt: skip
async def test_bad_values_are_refused_naming_each_field(
    api: httpx.AsyncClient, db: asyncpg.Pool, body: dict[str, Any], fields: set[str]
) -> None:
    key, patient = await _patient(api, db)
    await _deliver(db, patient)
    answer = await api.post(f"/api/v1/patients/{patient}/postpartum-test", json=body, headers=auth(key))
    assert answer.status_code == 422, answer.text
    refused = {tuple(e["loc"])[1] for e in answer.json()["detail"]}
    assert refused == fields, answer.json()
    assert all(e["msg"] for e in answer.json()["detail"])
    assert await _count(db, patient) == 0


async def test_not_a_number_is_a_422_never_a_500(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    key, patient = await _patient(api, db)
    await _deliver(db, patient)
    raw = b'{"test": "fasting_glucose", "fasting": NaN, "unit": "mmol/L"}'
    answer = await api.post(
        f"/api/v1/patients/{patient}/postpartum-test",
        content=raw,
        headers={**auth(key), "Content-Type": "application/json"},
    )
    assert answer.status_code == 422


async def test_an_archived_patient_is_read_only(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    key, patient = await _patient(api, db, profile="ADA")
    await _deliver(db, patient)
    url = f"/api/v1/patients/{patient}/postpartum-test"
    assert (await api.post(url, json=EXAMPLE, headers=auth(key))).status_code == 201
    assert (await api.post(f"/api/v1/patients/{patient}/archive", headers=auth(key))).status_code == 200
    again = await api.post(url, json=EXAMPLE, headers=auth(key))
    assert again.status_code == 409 and "archived" in again.json()["detail"]
    listed = await api.get(f"/api/v1/patients/{patient}/postpartum-tests", headers=auth(key))
    assert [t["classification"] for t in listed.json()["items"]] == ["impaired_glucose_tolerance"]


async def test_a_recorded_test_cannot_be_changed(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    key, patient = await _patient(api, db)
    await _deliver(db, patient)
    assert (await api.post(f"/api/v1/patients/{patient}/postpartum-test", json=EXAMPLE, headers=auth(key))).is_success
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute(
            "UPDATE postpartum_tests SET classification = 'normal' WHERE patient_id = $1", uuid.UUID(patient)
        )
    with pytest.raises(asyncpg.CheckViolationError):
        await db.execute("DELETE FROM postpartum_tests WHERE patient_id = $1", uuid.UUID(patient))


async def test_the_demos_archived_patient_has_her_postpartum_test(db: asyncpg.Pool) -> None:
    team = await new_team(db)
    async with db.acquire() as conn:
        await demo.archived_patient(conn, team)
        await demo.archived_patient(conn, team)  # made once
    rows = await db.fetch(
        "SELECT t.classification, t.tested_on > p.delivery_date AS after_birth, p.archived_at IS NOT NULL AS archived"
        " FROM postpartum_tests t JOIN patients p ON p.id = t.patient_id WHERE p.team_id = $1",
        team,
    )
    assert [tuple(r) for r in rows] == [("impaired_glucose_tolerance", True, True)]


async def test_a_recorded_test_resolves_the_reminder_that_it_was_due(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    key, patient = await _patient(api, db)
    await _deliver(db, patient)
    patient_id = uuid.UUID(patient)
    reminder = await add_alert(db, patient_id, rule="postpartum_test_due", severity="info")
    other = await add_alert(db, patient_id)  # anything else stays as it is
    answer = await api.post(f"/api/v1/patients/{patient}/postpartum-test", json=EXAMPLE, headers=auth(key))
    assert answer.status_code == 201
    rows = {
        r["id"]: (r["status"], r["resolved_by"], r["resolved_reason"])
        for r in await db.fetch("SELECT id, status, resolved_by, resolved_reason FROM alerts WHERE patient_id = $1",
                                patient_id)
    }  # fmt: skip
    assert rows[reminder] == ("resolved", "system", "postpartum_test")
    assert rows[other][0] == "open"
    assert (await last_audit(db, "postpartum.test", patient))["detail"]["alerts_resolved"] == [reminder]
