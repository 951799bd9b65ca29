"""The treatment plan: versions written by the core's record functions and by the hospital API, their checks, and
the record's treatment kept equal to the plan in force."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest

from telemon import treatment
from telemon.app.services import Services
from telemon.patients import FieldError
from tests.support.clinic import auth, clinic_client, enrol, new_team
from tests.support.factories import api_key

NPH = {"treatment": "insulin", "basal": {"product": "NPH", "units": 10, "time": "22:00"}, "note": "fasting high"}


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


async def _patient(api: httpx.AsyncClient, db: asyncpg.Pool) -> tuple[str, str]:
    key = await api_key(db, "patients:read", "patients:write", teams=[await new_team(db)])
    return key, (await enrol(api, key))["id"]


async def test_versions_follow_each_other_and_the_record_follows_the_newest(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    _, patient = await _patient(api, db)
    patient_id = uuid.UUID(patient)
    async with db.acquire() as conn:
        assert await treatment.current_plan(conn, patient_id) is None
        first = await treatment.new_version(
            conn, patient_id, treatment.Plan("metformin", metformin_mg=1000, metformin_times=("08:00", "20:00")),
            actor="clinician:test",
        )  # fmt: skip
        second = await treatment.new_version(
            conn,
            patient_id,
            treatment.Plan(
                "insulin",
                basal=treatment.Basal("NPH", 10, "22:00"),
                prandial_product="NovoRapid",
                prandial={"dinner": 6, "breakfast": 4.5},
                note="fasting above target on 3 of 5 days",
            ),
            actor="clinician:test",
        )
        assert (first.version, second.version) == (1, 2)
        current = await treatment.current_plan(conn, patient_id)
        assert current == second
        assert current.basal == treatment.Basal("NPH", 10.0, "22:00")
        assert list(current.prandial) == ["breakfast", "dinner"]
        assert [p.version for p in await treatment.history(conn, patient_id)] == [2, 1]
        assert await conn.fetchval("SELECT treatment FROM patients WHERE id = $1", patient_id) == "insulin"
        actions = await conn.fetch(
            "SELECT action, actor FROM audit_log WHERE patient_id = $1 AND action = 'treatment.plan'", patient_id
        )
        assert len(actions) == 2
        # a version is history: the database refuses to change it
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE treatment_plans SET note = 'x' WHERE patient_id = $1", patient_id)


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        (treatment.Plan("insulin", basal=treatment.Basal("NPH", 10.3, "22:00")), "basal.units"),
        (treatment.Plan("insulin", basal=treatment.Basal("NPH", 0, "22:00")), "basal.units"),
        (treatment.Plan("insulin", basal=treatment.Basal("NPH", 100.5, "22:00")), "basal.units"),
        (treatment.Plan("insulin", basal=treatment.Basal("NPH", 10, "24:00")), "basal.time"),
        (treatment.Plan("insulin", basal=treatment.Basal("NPH", 10, "8:00")), "basal.time"),
        (treatment.Plan("insulin", basal=treatment.Basal("x" * 41, 10, "22:00")), "basal.product"),
        (treatment.Plan("insulin", prandial={"lunch": 0.25}), "prandial.lunch"),
        (treatment.Plan("insulin"), "basal"),
        (treatment.Plan("metformin", metformin_mg=200), "metformin_mg"),
        (treatment.Plan("metformin", metformin_mg=3500), "metformin_mg"),
        (treatment.Plan("metformin"), "metformin_mg"),
        (treatment.Plan("metformin", metformin_mg=500, metformin_times=("noon",)), "metformin_times"),
        (treatment.Plan("diet", metformin_mg=500), "metformin_mg"),
        (treatment.Plan("diet", basal=treatment.Basal("NPH", 10, "22:00")), "treatment"),
        (treatment.Plan("pills"), "treatment"),
        (treatment.Plan("diet", note="a\x00b"), "note"),
    ],
)
def test_checks_name_the_field(plan: treatment.Plan, field: str) -> None:
    with pytest.raises(FieldError) as refused:
        treatment.check_plan(plan)
    assert refused.value.field == field
    assert str(refused.value).startswith(field)


def test_a_product_outside_the_list_is_free_text_and_half_units_pass() -> None:
    checked = treatment.check_plan(treatment.Plan("insulin", basal=treatment.Basal(" Toujeo ", 12.5, "07:30")))
    assert checked.basal == treatment.Basal("Toujeo", 12.5, "07:30")


async def test_put_answers_the_new_version_and_get_the_history(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    key, patient_id = await _patient(api, db)
    empty = await api.get(f"/api/v1/patients/{patient_id}/treatment", headers=auth(key))
    assert empty.status_code == 200
    assert empty.json() == {"treatment": "diet", "current": None, "history": []}

    put = await api.put(f"/api/v1/patients/{patient_id}/treatment", json=NPH, headers=auth(key))
    assert put.status_code == 200, put.text
    version = put.json()
    assert version["version"] == 1
    assert version["basal"] == {"product": "NPH", "units": 10.0, "time": "22:00"}
    assert version["prandial"] is None and version["metformin_mg"] is None
    assert version["created_by"].startswith("api_key:")
    body = {**NPH, "prandial": {"breakfast": 4, "lunch": 4, "dinner": 6}, "metformin_mg": None, "note": "meals"}
    assert (await api.put(f"/api/v1/patients/{patient_id}/treatment", json=body, headers=auth(key))).status_code == 200

    read = (await api.get(f"/api/v1/patients/{patient_id}/treatment", headers=auth(key))).json()
    assert read["treatment"] == "insulin"
    assert read["current"]["version"] == 2
    assert read["current"]["prandial"] == {"breakfast": 4.0, "lunch": 4.0, "dinner": 6.0}
    assert [v["note"] for v in read["history"]] == ["meals", "fasting high"]
    patient = (await api.get(f"/api/v1/patients/{patient_id}", headers=auth(key))).json()
    assert patient["treatment"] == "insulin"
    reads = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE patient_id = $1 AND action = 'treatment.read'", uuid.UUID(patient_id)
    )
    assert reads == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"basal": {"product": "NPH", "units": 10.25, "time": "22:00"}}, "basal.units"),
        ({"basal": {"product": "NPH", "units": 10, "time": "25:00"}}, "basal.time"),
        ({"basal": {"product": "N" * 41, "units": 10, "time": "22:00"}}, "product"),
        ({"prandial": {"lunch": 250}}, "prandial.lunch"),
        ({"treatment": "metformin", "basal": None, "metformin_mg": 5000}, "metformin_mg"),
        ({"treatment": "tablets"}, "treatment"),
        ({"dose": 3}, "dose"),
        ({"note": "\ud800"}, "note"),
        ({"basal": {"product": "NPH", "units": 1e308, "time": "22:00"}}, "basal.units"),
    ],
)
async def test_refusals_are_422_naming_the_field(
    api: httpx.AsyncClient, db: asyncpg.Pool, change: dict[str, Any], field: str
) -> None:
    key, patient_id = await _patient(api, db)
    body = json.dumps({**NPH, **change})  # ASCII JSON: a lone surrogate goes as its escape, as a client may send it
    headers = {**auth(key), "Content-Type": "application/json"}
    answer = await api.put(f"/api/v1/patients/{patient_id}/treatment", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    assert any(field in ".".join(str(p) for p in error["loc"]) for error in answer.json()["detail"]), answer.text
    assert (await api.get(f"/api/v1/patients/{patient_id}/treatment", headers=auth(key))).json()["history"] == []


async def test_an_archived_patient_is_read_only(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    key, patient_id = await _patient(api, db)
    assert (await api.post(f"/api/v1/patients/{patient_id}/archive", headers=auth(key))).status_code == 200
    answer = await api.put(f"/api/v1/patients/{patient_id}/treatment", json=NPH, headers=auth(key))
    assert answer.status_code == 409


async def test_once_a_plan_exists_the_treatment_changes_only_with_the_plan(
    api: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """PATCH of the record's treatment alone would leave the plan in force saying another thing: refused (409),
    the same treatment is accepted; without a plan the word is all there is and may change."""
    key, patient_id = await _patient(api, db)
    url = f"/api/v1/patients/{patient_id}"
    assert (await api.patch(url, json={"treatment": "metformin"}, headers=auth(key))).status_code == 200
    assert (await api.put(f"{url}/treatment", json=NPH, headers=auth(key))).status_code == 200
    refused = await api.patch(url, json={"treatment": "diet"}, headers=auth(key))
    assert refused.status_code == 409
    assert "plan in force (insulin)" in refused.json()["detail"]
    assert (await api.patch(url, json={"treatment": "insulin"}, headers=auth(key))).status_code == 200
    assert (await api.get(url, headers=auth(key))).json()["treatment"] == "insulin"
