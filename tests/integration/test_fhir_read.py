"""The FHIR read side end to end, against the real database: the CapabilityStatement, Patient read and search,
and the Observation search with its Bundle paging; what a key of another team, or without the scope, is answered;
the audit rows of each read. Readings come in through the device contract, as a patient's meters send them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from telemon.units import MMOLL_TO_MGDL
from tests.support.clinic import last_audit
from tests.support.factories import Setup, api_key, patient_with_device

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def local_path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


async def send(client: httpx.AsyncClient, setup: Setup, items: list[dict[str, Any]]) -> dict[str, Any]:
    answer = await client.post("/api/v1/readings", json={"readings": items}, headers=auth(setup.token))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def a_patients_week(client: httpx.AsyncClient, db: asyncpg.Pool) -> tuple[Setup, dt.datetime]:
    """A meter patient's readings (mmol/L, one LO, one control solution, a re-sent one), a sensor's (mg/dL), her
    weight, blood pressure and ketones, over the last days."""
    setup = await patient_with_device(db, time_zone="Europe/Paris")
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=3)
    meter = [
        {"measured_at": (start + dt.timedelta(hours=5 * i)).isoformat(), "value": 5.0 + i / 10, "unit": "mmol/L"}
        for i in range(12)
    ]
    meter[2].update(value=1.1, flags=["lo"])
    meter[5].update(flags=["control_solution"])  # not her glucose: never an Observation of hers
    cgm = [
        {
            "measured_at": (start + dt.timedelta(minutes=5 * i, seconds=30)).isoformat(),
            "value": 100 + i,
            "unit": "mg/dL",
            "kind": "cgm",
        }
        for i in range(10)
    ]
    others = [
        {"kind": "weight", "measured_at": (start + dt.timedelta(hours=1)).isoformat(), "value": 72.5, "unit": "kg"},
        {
            "kind": "blood_pressure",
            "measured_at": (start + dt.timedelta(hours=2)).isoformat(),
            "systolic": 128,
            "diastolic": 82,
            "pulse": 77,
            "unit": "mmHg",
        },
        {"kind": "ketone", "measured_at": (start + dt.timedelta(hours=3)).isoformat(), "value": 0.4, "unit": "mmol/L"},
    ]
    receipt = await send(client, setup, [*meter, *cgm, *others, meter[0]])
    assert receipt["accepted"] == 25 and receipt["duplicates"] == 1, receipt
    return setup, start


async def all_pages(
    client: httpx.AsyncClient, key: str, params: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every page of a search, following ``next``: the pages and the resources in order."""
    pages = []
    answer = await client.get("/fhir/Observation", params=params, headers=auth(key))
    while True:
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/fhir+json")
        page = answer.json()
        pages.append(page)
        following = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not following:
            break
        answer = await client.get(local_path(following[0]), headers=auth(key))
    return pages, [e["resource"] for page in pages for e in page.get("entry", [])]


def check_observation(resource: dict[str, Any], patient_id: uuid.UUID) -> None:
    """What every Observation of telemon holds (FHIR R4 required elements, codes, units, references)."""
    assert resource["resourceType"] == "Observation"
    assert resource["id"] and resource["status"] == "final"
    assert resource["subject"] == {"reference": f"Patient/{patient_id}"}
    [kind] = resource["category"]
    assert kind["coding"][0]["system"] == CATEGORY
    assert kind["coding"][0]["code"] in ("laboratory", "vital-signs")
    [code] = resource["code"]["coding"]
    assert code["system"] == LOINC and code["code"]
    assert dt.datetime.fromisoformat(resource["effectiveDateTime"]).tzinfo is not None
    assert resource["device"]["identifier"]["value"]
    quantities = [resource["valueQuantity"]] if "valueQuantity" in resource else []
    quantities += [c["valueQuantity"] for c in resource.get("component", [])]
    for quantity in quantities:
        assert quantity["system"] == UCUM and quantity["code"] and isinstance(quantity["value"], int | float)


async def test_the_capability_statement_says_what_is_read_searched_and_imported(client: httpx.AsyncClient) -> None:
    answer = await client.get("/fhir/metadata")  # no key: a FHIR client reads it first
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/fhir+json")
    statement = answer.json()
    assert statement["resourceType"] == "CapabilityStatement" and statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance" and statement["format"] == ["json"]
    assert statement["implementation"]["url"] == "http://telemon.test/fhir"
    [rest] = statement["rest"]
    resources = {r["type"]: r for r in rest["resource"]}
    assert {i["code"] for i in resources["Patient"]["interaction"]} == {"read", "search-type"}
    assert {i["code"] for i in resources["Observation"]["interaction"]} == {"search-type", "create"}
    assert {p["name"] for p in resources["Observation"]["searchParam"]} >= {"patient", "code", "date", "_count"}
    assert "http://hl7.org/fhir/uv/cgm/StructureDefinition/cgm-summary" in resources["Observation"]["supportedProfile"]
    assert {i["code"] for i in rest["interaction"]} == {"batch", "transaction"}  # the import side
    assert resources["DiagnosticReport"]["interaction"] == [{"code": "search-type"}]  # the PDF report


async def test_a_patient_is_read_and_found_by_hospital_number_within_the_keys_teams(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    mine = await patient_with_device(db)
    theirs = await patient_with_device(db)
    key = await api_key(db, "patients:read", teams=[mine.team_id])
    external_id = await db.fetchval("SELECT external_id FROM patients WHERE id = $1", mine.patient_id)

    answer = await client.get(f"/fhir/Patient/{mine.patient_id}", headers=auth(key))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/fhir+json")
    patient = answer.json()
    assert patient["resourceType"] == "Patient" and patient["id"] == str(mine.patient_id)
    assert patient["identifier"][0]["value"] == external_id
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "MR"
    assert patient["active"] is True and patient["name"] == [{"text": "Test Patient"}]
    row = await last_audit(db, "patient.read", str(mine.patient_id))
    assert row["actor"].startswith("api_key:") and row["detail"]["via"] == "fhir"

    found = (
        await client.get("/fhir/Patient", params={"identifier": f"urn:oid:1.2.250|{external_id}"}, headers=auth(key))
    ).json()
    assert found["resourceType"] == "Bundle" and found["type"] == "searchset" and found["total"] == 1
    assert found["entry"][0]["resource"]["id"] == str(mine.patient_id)
    assert found["entry"][0]["fullUrl"] == f"http://telemon.test/fhir/Patient/{mine.patient_id}"
    assert found["entry"][0]["search"] == {"mode": "match"}
    searched = await db.fetchrow(
        "SELECT patient_ids FROM audit_log WHERE action = 'patients.read' AND $1 = ANY(patient_ids)", mine.patient_id
    )
    assert searched is not None

    # another team's patient is exactly a missing one: by id, and by her hospital number
    for path in (f"/fhir/Patient/{theirs.patient_id}", f"/fhir/Patient/{uuid.uuid4()}", "/fhir/Patient/not-an-id"):
        missing = await client.get(path, headers=auth(key))
        assert missing.status_code == 404
        outcome = missing.json()
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "not-found"
    their_number = await db.fetchval("SELECT external_id FROM patients WHERE id = $1", theirs.patient_id)
    nobody = (await client.get("/fhir/Patient", params={"identifier": their_number}, headers=auth(key))).json()
    assert nobody["total"] == 0 and not nobody.get("entry")

    # the scope: a key that reads readings only is refused, with an OperationOutcome
    readings_only = await api_key(db, "readings:read", teams=[mine.team_id])
    refused = await client.get(f"/fhir/Patient/{mine.patient_id}", headers=auth(readings_only))
    assert refused.status_code == 403 and refused.json()["issue"][0]["code"] == "forbidden"
    assert (await client.get(f"/fhir/Patient/{mine.patient_id}")).status_code == 401
    unknown = await client.get("/fhir/Patient", params={"name": "x"}, headers=auth(key))
    assert unknown.status_code == 400 and "name" in unknown.json()["issue"][0]["diagnostics"]


async def test_observations_page_through_without_loss_or_duplicate(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup, start = await a_patients_week(client, db)
    key = await api_key(db, "readings:read", teams=[setup.team_id])
    pages, resources = await all_pages(client, key, {"patient": f"Patient/{setup.patient_id}", "_count": 4})
    # 11 meter readings (the control solution left out), 10 sensor readings, weight, blood pressure, ketones
    assert [p["total"] for p in pages] == [24] * 6 and len(resources) == 24
    assert len({r["id"] for r in resources}) == 24
    times = [r["effectiveDateTime"] for r in resources]
    assert times == sorted(times, key=dt.datetime.fromisoformat)
    for resource in resources:
        check_observation(resource, setup.patient_id)
    codes = [r["code"]["coding"][0]["code"] for r in resources]
    assert codes.count("41653-7") == 11 and codes.count("99504-3") == 10
    assert {"29463-7", "85354-9", "53060-9"} <= set(codes)
    # each page: self, next but on the last, previous but on the first
    assert [sorted(link["relation"] for link in p["link"]) for p in pages] == (
        [["next", "self"]] + [["next", "previous", "self"]] * 4 + [["previous", "self"]]
    )
    # previous from the third page gives the second page again
    third = pages[2]
    back = next(link["url"] for link in third["link"] if link["relation"] == "previous")
    again = (await client.get(local_path(back), headers=auth(key))).json()
    assert [e["resource"]["id"] for e in again["entry"]] == [e["resource"]["id"] for e in pages[1]["entry"]]

    meter = [r for r in resources if r["code"]["coding"][0]["code"] == "41653-7"]
    first = meter[0]
    assert first["valueQuantity"] == {
        "value": round(5.0 * MMOLL_TO_MGDL, 1),
        "unit": "mg/dL",
        "system": UCUM,
        "code": "mg/dL",
    }
    assert meter[2]["valueQuantity"]["comparator"] == "<"  # the meter's LO
    assert first["device"]["identifier"]["value"] == setup.device_id
    sensor = next(r for r in resources if r["code"]["coding"][0]["code"] == "99504-3")
    assert sensor["meta"]["profile"] == [
        "http://hl7.org/fhir/uv/cgm/StructureDefinition/cgm-sensor-reading-mass-per-volume"
    ]
    assert sensor["category"][0]["coding"][0]["code"] == "laboratory"
    assert sensor["effectiveDateTime"] == (start + dt.timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    pressure = next(r for r in resources if r["code"]["coding"][0]["code"] == "85354-9")
    assert pressure["category"][0]["coding"][0]["code"] == "vital-signs"
    assert [(c["code"]["coding"][0]["code"], c["valueQuantity"]["value"]) for c in pressure["component"]] == [
        ("8480-6", 128),
        ("8462-4", 82),
        ("8867-4", 77),
    ]
    assert pressure["component"][0]["valueQuantity"]["code"] == "mm[Hg]"
    row = await last_audit(db, "readings.read", str(setup.patient_id))
    assert row["detail"]["via"] == "fhir" and row["detail"]["count"] == 4  # the last page's


async def test_readings_arriving_between_pages_neither_repeat_nor_hide_others(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup, start = await a_patients_week(client, db)
    key = await api_key(db, "readings:read", teams=[setup.team_id])
    params = {"patient": str(setup.patient_id), "code": "41653-7", "_count": 5}
    first = (await client.get("/fhir/Observation", params=params, headers=auth(key))).json()
    assert first["total"] == 11
    # a late sync: one reading older than the page's last, one newer than everything
    await send(
        client,
        setup,
        [
            {"measured_at": (start + dt.timedelta(minutes=1)).isoformat(), "value": 6.6, "unit": "mmol/L"},
            {"measured_at": (start + dt.timedelta(days=2, hours=23)).isoformat(), "value": 7.7, "unit": "mmol/L"},
        ],
    )
    seen = [e["resource"]["id"] for e in first["entry"]]
    url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    while url:
        page = (await client.get(local_path(url), headers=auth(key))).json()
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == 12  # the 11, and the newer one; the older one belongs to a page passed
    stored = {
        str(r["id"])
        for r in await db.fetch(
            "SELECT id FROM readings WHERE patient_id = $1 AND kind = 'smbg' AND NOT 'control_solution' = ANY(flags)",
            setup.patient_id,
        )
    }
    assert set(seen) < stored and len(stored - set(seen)) == 1


async def test_search_by_code_date_category_and_unit(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup, start = await a_patients_week(client, db)
    key = await api_key(db, "readings:read", teams=[setup.team_id])
    patient = f"Patient/{setup.patient_id}"

    async def search(**params: Any) -> dict[str, Any]:
        answer = await client.get("/fhir/Observation", params={"patient": patient, **params}, headers=auth(key))
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    # a moles code answers in mmol/L, with the moles codes; the meter's own mmol/L value, unconverted
    moles = await search(code=f"{LOINC}|14743-9")
    assert moles["total"] == 11
    first = moles["entry"][0]["resource"]
    assert first["code"]["coding"][0]["code"] == "14743-9"
    assert first["valueQuantity"] == {"value": 5.0, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"}
    sensor = await search(code="99504-3", unit="mmol/L")
    assert sensor["total"] == 10
    assert {e["resource"]["code"]["coding"][0]["code"] for e in sensor["entry"]} == {"105272-9"}
    assert sensor["entry"][0]["resource"]["valueQuantity"]["value"] == round(100 / MMOLL_TO_MGDL, 2)
    assert (await search(category="vital-signs"))["total"] == 2
    assert (await search(code="http://snomed.info/sct|41653-7"))["total"] == 0  # another system's code
    # dates: a date is the patient's local day; a dateTime the instant
    window = await search(
        date=[
            f"ge{(start + dt.timedelta(minutes=5)).isoformat()}",
            f"lt{(start + dt.timedelta(minutes=30)).isoformat()}",
        ],
        code="99504-3",
    )
    assert window["total"] == 5
    day = start.astimezone(ZoneInfo("Europe/Paris")).date()  # her first local day, counted by the database
    local_day = await db.fetchval(
        "SELECT count(*) FROM readings WHERE patient_id = $1 AND (measured_at AT TIME ZONE 'Europe/Paris')::date = $2"
        " AND NOT 'control_solution' = ANY(flags)",
        setup.patient_id,
        day,
    )
    measurements = await db.fetchval(
        "SELECT count(*) FROM measurements WHERE patient_id = $1 AND (measured_at AT TIME ZONE 'Europe/Paris')::date = $2",
        setup.patient_id,
        day,
    )
    assert (await search(date=day.isoformat()))["total"] == local_day + measurements
    assert (await search(date=[f"ge{day.isoformat()}", f"le{day.isoformat()}"]))["total"] == local_day + measurements


async def test_observation_search_refusals_are_operation_outcomes(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    mine = await patient_with_device(db)
    theirs = await patient_with_device(db)
    key = await api_key(db, "readings:read", teams=[mine.team_id])

    async def refused(params: dict[str, Any], status: int, key: str = key) -> str:
        answer = await client.get("/fhir/Observation", params=params, headers=auth(key))
        assert answer.status_code == status, answer.text
        outcome = answer.json()
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["severity"] == "error"
        diagnostics: str = outcome["issue"][0]["diagnostics"]
        return diagnostics

    assert "another" not in await refused({"patient": str(theirs.patient_id)}, 404)
    await refused({"patient": str(uuid.uuid4())}, 404)
    assert "patient" in await refused({}, 400)
    assert "patinet" in await refused({"patinet": str(mine.patient_id)}, 400)
    assert "Patient" in await refused({"patient": f"Practitioner/{mine.patient_id}"}, 400)
    await refused({"patient": str(mine.patient_id), "date": "ge2026-13-01"}, 422)
    await refused({"patient": str(mine.patient_id), "date": "ge2026-11-01T08:00"}, 422)  # no offset
    assert "ap" in await refused({"patient": str(mine.patient_id), "date": "ap2026-11-01"}, 400)
    await refused({"patient": str(mine.patient_id), "_count": "0"}, 400)
    await refused({"patient": str(mine.patient_id), "unit": "g/L"}, 400)
    await refused({"patient": str(mine.patient_id), "_cursor": "bm90IGEgY3Vyc29y"}, 400)
    writer = await api_key(db, "readings:write", "patients:read", teams=[mine.team_id])
    assert "readings:read" in await refused({"patient": str(mine.patient_id)}, 403, writer)
    none = await client.get("/fhir/Observation", params={"patient": str(mine.patient_id)}, headers=auth(key))
    assert none.json()["total"] == 0 and none.json()["type"] == "searchset"


async def test_an_observation_is_read_by_the_id_its_import_or_search_gave(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup, _ = await a_patients_week(client, db)
    other = await patient_with_device(db)
    key = await api_key(db, "readings:read", "readings:write", teams=[setup.team_id])
    stranger = await api_key(db, "readings:read", teams=[other.team_id])
    imported = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "2345-7"}]},
        "subject": {"reference": f"Patient/{setup.patient_id}"},
        "effectiveDateTime": (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat(),
        "valueQuantity": {"value": 5.4, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
    }
    created = await client.post(
        "/fhir/Observation", json=imported, headers={**auth(key), "Content-Type": "application/fhir+json"}
    )
    assert created.status_code == 201, created.text
    read = await client.get(local_path(created.headers["location"]), params={"unit": "mmol/L"}, headers=auth(key))
    assert read.status_code == 200, read.text
    resource = read.json()
    check_observation(resource, setup.patient_id)
    assert resource["id"] == created.json()["id"]
    assert resource["valueQuantity"]["value"] == 5.4 and resource["code"]["coding"][0]["code"] == "14743-9"

    _, found = await all_pages(client, key, {"patient": str(setup.patient_id), "category": "vital-signs"})
    for searched in found:
        again = (await client.get(f"/fhir/Observation/{searched['id']}", headers=auth(key))).json()
        assert again == searched
        assert (await client.get(f"/fhir/Observation/{searched['id']}", headers=auth(stranger))).status_code == 404
    for missing in ("999999999999", "m0", "abc", "m-1"):
        answer = await client.get(f"/fhir/Observation/{missing}", headers=auth(key))
        assert answer.status_code == 404 and answer.json()["issue"][0]["code"] == "not-found"
