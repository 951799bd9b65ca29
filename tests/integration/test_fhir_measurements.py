"""FHIR R4 import of ketone, body-weight and blood-pressure Observations end to end over HTTP and the real database:
each stored as a measurement through the pipeline (same validation and dedup as the device contract), refused per
entry with an OperationOutcome naming the element, the good entries of the same Bundle stored."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx

from tests.support.factories import Setup, api_key, patient_with_device

FHIR_JSON = {"Content-Type": "application/fhir+json"}
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def auth(key: str) -> dict[str, str]:
    return {**FHIR_JSON, "Authorization": f"Bearer {key}"}


def concept(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def quantity(value: float, code: str, unit: str | None = None) -> dict[str, Any]:
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code}


def observation(setup: Setup, at: dt.datetime, code: dict[str, Any], category: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{uuid.uuid4().hex[:12]}",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": category,
                    }
                ]
            }
        ],
        "code": code,
        "subject": {"reference": f"Patient/{setup.patient_id}"},
        "effectiveDateTime": at.isoformat(),
        **value,
    }


def blood_ketone(setup: Setup, at: dt.datetime, value: float) -> dict[str, Any]:
    code = concept("53060-9", "3-Hydroxybutyrate [Moles/volume] in Serum or Plasma")
    return observation(setup, at, code, "laboratory", valueQuantity=quantity(value, "mmol/L"))


def urine_ketone(setup: Setup, at: dt.datetime, **value: Any) -> dict[str, Any]:
    return observation(setup, at, concept("2514-8", "Ketones [Presence] in Urine by Test strip"), "laboratory", **value)


def weight(setup: Setup, at: dt.datetime, value: float, code: str) -> dict[str, Any]:
    return observation(setup, at, concept("29463-7", "Body weight"), "vital-signs", valueQuantity=quantity(value, code))


def component(code: str, display: str, value: float, unit: str) -> dict[str, Any]:
    return {"code": concept(code, display), "valueQuantity": quantity(value, unit)}


def blood_pressure(setup: Setup, at: dt.datetime, *components: dict[str, Any]) -> dict[str, Any]:
    """The FHIR vital-signs blood pressure profile: a panel whose components are the values."""
    found = observation(setup, at, concept("85354-9", "Blood pressure panel with all children optional"), "vital-signs")
    found["component"] = list(components)
    return found


SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
HEART_RATE = ("8867-4", "Heart rate")
PLUS_PLUS = {"system": "http://snomed.info/sct", "code": "260348001", "display": "Present ++ out of ++++"}


def batch(*resources: dict[str, Any], kind: str = "batch") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"resource": r, "request": {"method": "POST", "url": "Observation"}} for r in resources],
    }


async def measurements(db: asyncpg.Pool, setup: Setup) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT kind, value, value_raw, unit_raw, urine, systolic, diastolic, pulse, source, external_id, device_id"
        " FROM measurements WHERE patient_id = $1 ORDER BY measured_at, kind",
        setup.patient_id,
    )
    return [tuple(r) for r in rows]


async def test_a_batch_of_every_kind_stores_the_good_entries_and_refuses_each_bad_one(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:write")
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=6)
    minute = dt.timedelta(minutes=1)
    good = [
        blood_ketone(setup, at, 0.8),
        urine_ketone(setup, at + minute, valueCodeableConcept={"coding": [PLUS_PLUS]}),
        urine_ketone(setup, at + 2 * minute, valueCodeableConcept={"text": "trace"}),  # as telemon exports it
        weight(setup, at + 3 * minute, 72500, "g"),
        weight(setup, at + 4 * minute, 160, "[lb_av]"),
        blood_pressure(
            setup,
            at + 5 * minute,
            component(*SYSTOLIC, 142, "mm[Hg]"),
            component(*DIASTOLIC, 91, "mm[Hg]"),
            component(*HEART_RATE, 80, "/min"),
        ),
    ]
    too_high = blood_ketone(setup, at + 6 * minute, 30.5)
    no_diastolic = blood_pressure(setup, at + 7 * minute, component(*SYSTOLIC, 150, "mm[Hg]"))
    pulse_alone = observation(setup, at + 8 * minute, concept(*HEART_RATE), "vital-signs")
    pulse_alone["valueQuantity"] = quantity(72, "/min")
    unreadable_strip = urine_ketone(setup, at + 9 * minute, valueString="positive")
    stone = weight(setup, at + 10 * minute, 11, "[stn_av]")
    bundle = batch(*good, too_high, no_diastolic, pulse_alone, unreadable_strip, stone)

    response = await client.post("/fhir", json=bundle, headers=auth(key))

    assert response.status_code == 200, response.text
    answers = [e["response"] for e in response.json()["entry"]]
    assert [a["status"] for a in answers] == ["201 Created"] * 6 + ["422 Unprocessable Entity"] * 5
    stored = await measurements(db, setup)
    device = f"fhir-{setup.patient_id.hex}"
    assert [s[:8] for s in stored] == [
        ("ketone", 0.8, 0.8, "mmol/L", None, None, None, None),
        ("ketone", None, None, None, "++", None, None, None),
        ("ketone", None, None, None, "trace", None, None, None),
        ("weight", 72.5, 72500.0, "g", None, None, None, None),
        ("weight", 160 * 0.45359237, 160.0, "lb", None, None, None, None),
        ("blood_pressure", None, None, "mmHg", None, 142.0, 91.0, 80.0),
    ]
    assert all(s[8:] == ("fhir", r["id"], device) for s, r in zip(stored, good, strict=True))
    ids = await db.fetch("SELECT id FROM measurements WHERE patient_id = $1 ORDER BY measured_at", setup.patient_id)
    assert [a["location"] for a in answers[:6]] == [f"Observation/m{r['id']}" for r in ids]

    issues = [(a["outcome"]["issue"][0]["code"], a["outcome"]["issue"][0]["expression"]) for a in answers[6:]]
    assert issues == [
        ("invalid", ["Observation.valueQuantity.value"]),
        ("required", ["Observation.component"]),
        ("not-supported", ["Observation.code.coding"]),
        ("code-invalid", ["Observation.valueString"]),
        ("code-invalid", ["Observation.valueQuantity.code"]),
    ]
    assert "30.5 mmol/L is outside the plausible range" in answers[6]["outcome"]["issue"][0]["diagnostics"]
    rejected = await db.fetch(
        "SELECT item_index, reason FROM ingest_rejections WHERE patient_id = $1 ORDER BY item_index", setup.patient_id
    )
    assert [r["item_index"] for r in rejected] == [6, 7, 8, 9, 10]
    assert rejected[0]["reason"].startswith("Observation.valueQuantity.value: 30.5 mmol/L is outside")

    again = await client.post("/fhir", json=bundle, headers=auth(key))
    assert [e["response"]["status"] for e in again.json()["entry"]] == ["200 OK"] * 6 + ["422 Unprocessable Entity"] * 5
    assert len(await measurements(db, setup)) == 6


async def test_a_single_blood_pressure_is_created_then_a_duplicate(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:write")
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
    body = blood_pressure(setup, at, component(*SYSTOLIC, 165, "mm[Hg]"), component(*DIASTOLIC, 112, "mm[Hg]"))

    first = await client.post("/fhir/Observation", json=body, headers=auth(key))
    second = await client.post("/fhir/Observation", json=body, headers=auth(key))

    assert (first.status_code, second.status_code) == (201, 200), first.text
    measurement_id = await db.fetchval("SELECT id FROM measurements WHERE patient_id = $1", setup.patient_id)
    assert first.headers["location"] == f"/fhir/Observation/m{measurement_id}"
    assert first.json()["id"] == second.json()["id"] == f"m{measurement_id}"
    audited = await db.fetch(
        "SELECT detail FROM audit_log WHERE patient_id = $1 AND action = 'readings.import' ORDER BY id",
        setup.patient_id,
    )
    assert [(a["detail"]["accepted"], a["detail"]["duplicates"]) for a in audited] == [(1, 0), (0, 1)]


async def test_a_transaction_with_a_bad_measurement_stores_nothing(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    key = await api_key(db, "readings:write")
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)
    date_only = weight(setup, at, 70, "kg")
    date_only["effectiveDateTime"] = at.date().isoformat()
    bundle = batch(blood_ketone(setup, at, 0.3), date_only, kind="transaction")

    refused = await client.post("/fhir", json=bundle, headers=auth(key))

    assert refused.status_code == 422, refused.text
    expressions = [i.get("expression") for i in refused.json()["issue"]]
    assert ["Bundle.entry[1].resource.effectiveDateTime"] in expressions
    assert await measurements(db, setup) == []
