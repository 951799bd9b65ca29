"""FHIR R4 import of glucose Observations end to end, against the real database."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any, cast

import asyncpg
import httpx

from telemon import patients, teams
from telemon.units import MMOLL_TO_MGDL
from tests.support.factories import Setup, api_key, patient_with_device

FHIR_DATA = Path(__file__).parents[2].parent / "shared" / "data" / "fhir"
FHIR_JSON = {"Content-Type": "application/fhir+json"}
# The examples are dated 2013-04-02: a due date in autumn 2013 puts them inside the pregnancy window.
DUE_2013 = dt.date(2013, 10, 1)
EXAMPLE_INSTANT = dt.datetime(2013, 4, 2, 8, 30, 10, tzinfo=dt.UTC)  # 09:30:10+01:00


def example(name: str, patient_id: uuid.UUID | None = None) -> dict[str, Any]:
    observation: dict[str, Any] = json.loads((FHIR_DATA / f"observation-example-f001-glucose.{name}.json").read_text())
    if patient_id is not None:
        observation["subject"] = {"reference": f"Patient/{patient_id}", "display": "P. van de Heuvel"}
    return observation


def auth(key: str) -> dict[str, str]:
    return {**FHIR_JSON, "Authorization": f"Bearer {key}"}


async def hospital(db: asyncpg.Pool) -> tuple[Setup, str]:
    return await patient_with_device(db, due_date=DUE_2013), await api_key(db, "readings:write")


async def patient_in_new_team(db: asyncpg.Pool, external_id: str) -> uuid.UUID:
    async with db.acquire() as proxy:
        conn = cast(asyncpg.Connection, proxy)
        team_id = await teams.create_team(conn, f"team-{uuid.uuid4().hex[:8]}")
        return await patients.create_patient(
            conn,
            team_id=team_id,
            external_id=external_id,
            display_name="Hospital Patient",
            time_zone="Europe/Amsterdam",
            due_date=DUE_2013,
        )


async def fhir_rows(db: asyncpg.Pool, patient_id: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, value_raw, unit_raw, value_mgdl, measured_at, kind, context, context_inferred, source,"
        " device_id, external_id, note FROM readings WHERE patient_id = $1 AND source = 'fhir' ORDER BY id",
        patient_id,
    )


async def test_observation_is_stored_through_the_pipeline_and_a_resend_is_a_duplicate(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup, key = await hospital(db)
    observation = example("r4", setup.patient_id)

    first = await client.post("/fhir/Observation", json=observation, headers=auth(key))

    assert first.status_code == 201, first.text
    assert first.headers["content-type"].startswith("application/fhir+json")
    rows = await fhir_rows(db, setup.patient_id)
    assert len(rows) == 1
    row = rows[0]
    assert abs(row["value_mgdl"] - 6.3 * MMOLL_TO_MGDL) < 0.001
    assert (row["value_raw"], row["unit_raw"], row["kind"]) == (6.3, "mmol/L", "smbg")
    assert row["measured_at"] == EXAMPLE_INSTANT
    assert row["device_id"] == f"fhir-{setup.patient_id.hex}"
    assert row["external_id"] == "f001"
    assert row["context_inferred"] is True  # 15074-8 says nothing of a meal: the pipeline infers
    body = first.json()
    assert body["resourceType"] == "Observation"
    assert body["id"] == str(row["id"])
    assert body["valueQuantity"] == observation["valueQuantity"]
    assert first.headers["location"] == f"/fhir/Observation/{row['id']}"

    again = await client.post("/fhir/Observation", json=observation, headers=auth(key))

    assert again.status_code == 200, again.text
    assert again.json()["id"] == str(row["id"])
    assert len(await fhir_rows(db, setup.patient_id)) == 1
    audits = await db.fetch(
        "SELECT actor, detail FROM audit_log WHERE patient_id = $1 AND action = 'readings.import' ORDER BY id",
        setup.patient_id,
    )
    assert [(a["detail"]["accepted"], a["detail"]["duplicates"]) for a in audits] == [(1, 0), (0, 1)]
    assert audits[0]["actor"].startswith("api_key:")
    devices = await db.fetch("SELECT id, kind, active FROM devices WHERE patient_id = $1 ORDER BY id", setup.patient_id)
    assert [(d["id"], d["kind"], d["active"]) for d in devices if d["id"].startswith("fhir-")] == [
        (f"fhir-{setup.patient_id.hex}", "app", True)
    ]


async def test_subject_by_identifier_with_a_system(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    external_id = f"MRN-{uuid.uuid4().hex[:10]}"
    patient_id = await patient_in_new_team(db, external_id)
    key = await api_key(db, "readings:write")
    observation = example("ci-build")  # effectiveDateTime; its reference Patient/f001 is no telemon id
    observation["subject"]["identifier"] = {"system": "http://hospital.example/mrn", "value": external_id}
    observation["note"] = [{"text": "ward reading"}]

    response = await client.post(
        "/fhir/Observation", json=observation, headers={"Authorization": f"Bearer {key}"}
    )  # application/json

    assert response.status_code == 201, response.text
    [row] = await fhir_rows(db, patient_id)
    assert row["measured_at"] == EXAMPLE_INSTANT
    assert abs(row["value_mgdl"] - 6.3 * MMOLL_TO_MGDL) < 0.001
    assert row["note"] == "ward reading"


async def test_identifier_of_patients_in_two_teams_is_ambiguous(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    external_id = f"MRN-{uuid.uuid4().hex[:10]}"
    for _ in range(2):
        await patient_in_new_team(db, external_id)
    key = await api_key(db, "readings:write")
    observation = example("r4")
    observation["subject"] = {"identifier": {"value": external_id}}

    response = await client.post("/fhir/Observation", json=observation, headers=auth(key))

    assert response.status_code == 422, response.text
    [found] = response.json()["issue"]
    assert found["code"] == "multiple-matches"
    assert found["expression"] == ["Observation.subject.identifier.value"]
    stored = await db.fetchval(
        "SELECT count(*) FROM readings r JOIN patients p ON p.id = r.patient_id WHERE p.external_id = $1", external_id
    )
    assert stored == 0


async def test_batch_stores_the_good_entry_and_reports_each_bad_one(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup, key = await hospital(db)
    good = example("r4", setup.patient_id)
    bad_unit = example("ci-build", setup.patient_id)
    bad_unit["id"] = "bad-unit"
    bad_unit["valueQuantity"] = {"value": 6.3, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    stranger = uuid.uuid4()
    unknown_patient = example("ci-build", stranger)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": r, "request": {"method": "POST", "url": "Observation"}}
            for r in (good, bad_unit, unknown_patient)
        ],
    }

    response = await client.post("/fhir", json=bundle, headers=auth(key))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["resourceType"], body["type"]) == ("Bundle", "batch-response")
    [created, refused, missing] = [e["response"] for e in body["entry"]]
    [row] = await fhir_rows(db, setup.patient_id)
    assert created == {"status": "201 Created", "location": f"Observation/{row['id']}"}
    assert row["measured_at"] == EXAMPLE_INSTANT
    assert refused["status"] == "422 Unprocessable Entity"
    [unit_issue] = refused["outcome"]["issue"]
    assert (unit_issue["code"], unit_issue["expression"]) == ("code-invalid", ["Observation.valueQuantity.code"])
    assert missing["status"] == "404 Not Found"
    assert missing["outcome"]["issue"][0]["code"] == "not-found"
    assert str(stranger) in missing["outcome"]["issue"][0]["diagnostics"]

    rejected = await db.fetch(
        "SELECT item_index, reason, device_id, patient_id, raw FROM ingest_rejections"
        " WHERE source = 'fhir' AND (patient_id = $1 OR raw LIKE '%' || $2 || '%') ORDER BY item_index",
        setup.patient_id,
        str(stranger),
    )
    assert [(r["item_index"], r["patient_id"]) for r in rejected] == [(1, setup.patient_id), (2, None)]
    assert rejected[0]["device_id"] == f"fhir-{setup.patient_id.hex}"
    assert rejected[0]["reason"].startswith("Observation.valueQuantity.code: '%' is not a glucose unit")
    assert json.loads(rejected[0]["raw"])["id"] == "bad-unit"
    assert rejected[1]["reason"].startswith("Observation.subject.reference: no patient")

    again = await client.post("/fhir", json=bundle, headers=auth(key))
    assert [e["response"]["status"] for e in again.json()["entry"]] == [
        "200 OK",
        "422 Unprocessable Entity",
        "404 Not Found",
    ]
    assert len(await fhir_rows(db, setup.patient_id)) == 1


async def test_transaction_is_all_or_nothing(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup, key = await hospital(db)
    good = example("r4", setup.patient_id)
    withdrawn = example("ci-build", setup.patient_id)
    withdrawn["status"] = "entered-in-error"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": good, "request": {"method": "POST", "url": "Observation"}},
            {"resource": withdrawn, "request": {"method": "POST", "url": "Observation"}},
        ],
    }

    refused = await client.post("/fhir", json=bundle, headers=auth(key))

    assert refused.status_code == 422, refused.text
    outcome = refused.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert [i["expression"] for i in outcome["issue"] if "expression" in i] == [["Bundle.entry[1].resource.status"]]
    assert any(i["code"] == "business-rule" and "entered in error" in i["diagnostics"] for i in outcome["issue"])
    assert await fhir_rows(db, setup.patient_id) == []
    reasons = await db.fetch("SELECT item_index, reason FROM ingest_rejections WHERE patient_id = $1", setup.patient_id)
    assert [r["item_index"] for r in reasons] == [1]

    bundle["entry"] = bundle["entry"][:1]
    accepted = await client.post("/fhir", json=bundle, headers=auth(key))

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["type"] == "transaction-response"
    assert accepted.json()["entry"][0]["response"]["status"] == "201 Created"
    assert len(await fhir_rows(db, setup.patient_id)) == 1


async def test_cgm_and_fasting_codes(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:write")
    when = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)

    def observation(code: str, value: float, minutes: int) -> dict[str, Any]:
        return {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{setup.patient_id}"},
            "effectiveInstant": (when + dt.timedelta(minutes=minutes)).isoformat(),
            "valueQuantity": {"value": value, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"},
        }

    for body in (observation("99504-3", 131, 0), observation("1558-6", 88, 5)):
        response = await client.post("/fhir/Observation", json=body, headers=auth(key))
        assert response.status_code == 201, response.text

    rows = await fhir_rows(db, setup.patient_id)
    assert [(r["kind"], r["value_mgdl"]) for r in rows] == [("cgm", 131.0), ("smbg", 88.0)]
    assert (rows[1]["context"], rows[1]["context_inferred"]) == ("fasting", False)


async def test_refusals_of_a_single_observation(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup, key = await hospital(db)

    not_glucose = example("r4", setup.patient_id)
    not_glucose["code"]["coding"][0]["code"] = "4548-4"  # HbA1c
    early = example("r4", setup.patient_id)
    early["effectivePeriod"]["start"] = "2012-06-01T08:00:00Z"  # before this pregnancy began
    cases = [
        (not_glucose, 422, "code-invalid", "Observation.code.coding"),
        (early, 422, "invalid", "Observation.effectivePeriod.start"),
        (example("r4", uuid.uuid4()), 404, "not-found", "Observation.subject.reference"),
    ]
    for observation, status, code, expression in cases:
        response = await client.post("/fhir/Observation", json=observation, headers=auth(key))
        assert response.status_code == status, response.text
        [found] = response.json()["issue"]
        assert (found["code"], found["expression"]) == (code, [expression])

    assert await fhir_rows(db, setup.patient_id) == []
    reasons = await db.fetch(
        "SELECT item_index, reason FROM ingest_rejections WHERE patient_id = $1 ORDER BY id", setup.patient_id
    )
    assert [r["item_index"] for r in reasons] == [None, None]
    assert "before this pregnancy began" in reasons[1]["reason"]


async def test_bodies_that_are_not_a_resource(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    key = await api_key(db, "readings:write")
    marker = uuid.uuid4().hex

    not_json = await client.post("/fhir/Observation", content=f"{{{marker}", headers=auth(key))
    patient = await client.post("/fhir/Observation", json={"resourceType": "Patient", "id": marker}, headers=auth(key))
    collection = await client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "collection", "id": marker}, headers=auth(key)
    )
    xml = await client.post(
        "/fhir/Observation",
        content=f"<Observation>{marker}</Observation>",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/fhir+xml"},
    )

    too_many = await client.post(
        "/fhir", json={"resourceType": "Bundle", "type": "batch", "entry": [{}] * 10_001}, headers=auth(key)
    )

    assert [r.status_code for r in (not_json, patient, collection, xml, too_many)] == [400, 400, 400, 415, 413]
    for response in (not_json, patient, collection, xml, too_many):
        assert response.json()["resourceType"] == "OperationOutcome"
    assert too_many.json()["issue"][0]["code"] == "too-costly"
    assert collection.json()["issue"][0]["expression"] == ["Bundle.type"]
    recorded = await db.fetchval(
        "SELECT count(*) FROM ingest_rejections WHERE source = 'fhir' AND item_index IS NULL AND raw LIKE $1",
        f"%{marker}%",
    )
    assert recorded == 3  # the 415 is refused before its body is read


async def test_api_key_errors_are_operation_outcomes(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    reader = await api_key(db, "readings:read")
    observation = example("r4", uuid.uuid4())

    missing = await client.post("/fhir/Observation", json=observation, headers=FHIR_JSON)
    unknown = await client.post("/fhir", json={"resourceType": "Bundle", "type": "batch"}, headers=auth("tmk_nope"))
    lacking = await client.post("/fhir/Observation", json=observation, headers=auth(reader))

    assert (missing.status_code, unknown.status_code, lacking.status_code) == (401, 401, 403)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.headers["content-type"].startswith("application/fhir+json")
    for response, code in ((missing, "login"), (unknown, "login"), (lacking, "forbidden")):
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["severity"] == "error"
        assert body["issue"][0]["code"] == code
    assert "readings:write" in lacking.json()["issue"][0]["diagnostics"]
