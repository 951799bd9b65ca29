"""The OpenAPI document describes what the service really does: the ingest bodies it reads raw, the security
schemes of each route, and 4xx answers whose declared schema the real answers (a ``detail`` that is text as well
as one that is a list, FHIR's OperationOutcome, Nightscout's 401) conform to."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import asyncpg
import httpx

from tests.support.factories import api_key, patient_with_device

INGEST_BODIES = {
    ("post", "/api/v1/readings"),
    ("post", "/ns/api/v1/entries"),
    ("post", "/ns/api/v1/treatments"),
    ("post", "/fhir/Observation"),
    ("post", "/fhir"),
}
ERROR_MODELS = {
    "#/components/schemas/Error",
    "#/components/schemas/OperationOutcome",
    "#/components/schemas/NightscoutUnauthorized",
}


def conforms(value: Any, schema: dict[str, Any], document: dict[str, Any]) -> bool:
    """Whether ``value`` satisfies ``schema``, for the keywords the document uses (formats are not checked)."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/components/schemas/")
        return conforms(value, document["components"]["schemas"][name], document)
    if "anyOf" in schema and not any(conforms(value, s, document) for s in schema["anyOf"]):
        return False
    if "oneOf" in schema and sum(conforms(value, s, document) for s in schema["oneOf"]) != 1:
        return False
    if "const" in schema and value != schema["const"]:
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, t) for t in types):
            return False
    if isinstance(value, dict):
        if any(key not in value for key in schema.get("required", ())):
            return False
        properties = schema.get("properties", {})
        if not all(conforms(v, properties[k], document) for k, v in value.items() if k in properties):
            return False
    if isinstance(value, list) and "items" in schema:
        return all(conforms(item, schema["items"], document) for item in value)
    return True


def _is(value: Any, kind: str) -> bool:
    checks = {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }
    return checks[kind]


def declared(document: dict[str, Any], method: str, path: str, status: int) -> tuple[str, dict[str, Any]]:
    content = document["paths"][path][method]["responses"][str(status)]["content"]
    [(media_type, body)] = content.items()
    return media_type, body["schema"]


async def test_every_4xx_refers_to_an_error_model_and_every_guarded_route_names_its_scheme(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()

    schemes = document["components"]["securitySchemes"]
    assert schemes["deviceToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["deviceToken"]["description"],
    }
    assert (schemes["apiKeyHeader"]["in"], schemes["apiKeyHeader"]["name"]) == ("header", "X-API-Key")
    assert schemes["apiKey"]["scheme"] == "bearer"
    assert (schemes["nightscoutSecret"]["in"], schemes["nightscoutSecret"]["name"]) == ("header", "api-secret")
    assert "HTTPValidationError" not in str(document)
    four_xx = 0
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    four_xx += 1
                    [body] = response["content"].values()
                    assert body["schema"]["$ref"] in ERROR_MODELS, (method, path, status)
            guarded = path.startswith(("/api/", "/fhir")) or (path.startswith("/ns/") and "status" not in path)
            if guarded and "verifyauth" not in path and path != "/fhir/metadata":  # FHIR: read before any key
                assert operation["security"], (method, path)
                assert all(name in schemes for option in operation["security"] for name in option)
                assert "401" in operation["responses"], (method, path)
            if (method, path) in INGEST_BODIES:
                assert operation["requestBody"]["required"] is True
    assert four_xx > 40
    error = document["components"]["schemas"]["Error"]
    assert error["examples"]
    assert all(conforms(example, error, document) for example in error["examples"])
    assert not conforms({"detail": 3}, error, document)


async def test_real_4xx_answers_conform_to_their_declared_schema(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    document = (await client.get("/openapi.json")).json()
    setup = await patient_with_device(db)
    reader = {"X-API-Key": await api_key(db, "readings:read", "alerts:read", "alerts:write", teams=[setup.team_id])}
    device = {"Authorization": f"Bearer {setup.token}"}
    hospital = {"Authorization": f"Bearer {await api_key(db, 'readings:write', teams=[setup.team_id])}"}
    readings = f"/api/v1/patients/{setup.patient_id}/readings"
    bad_cursor = base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00", Infinity]').decode()
    cases = [
        ("post", "/api/v1/readings", 422, await client.post("/api/v1/readings", content=b"{", headers=device)),
        ("post", "/api/v1/readings", 401, await client.post("/api/v1/readings", content=b"{}")),
        ("get", "/api/v1/patients/{patient_id}/readings", 422,
         await client.get(readings, params={"from": "2026-01-01T00:00:00"}, headers=reader)),
        ("get", "/api/v1/patients/{patient_id}/readings", 422,
         await client.get(readings, params={"limit": 0}, headers=reader)),
        ("get", "/api/v1/patients/{patient_id}/readings", 400,
         await client.get(readings, params={"cursor": bad_cursor}, headers=reader)),
        ("post", "/api/v1/alerts/{alert_id}/resolve", 422, await client.post(f"/api/v1/alerts/{2**63}/resolve", headers=reader)),
        ("post", "/ns/api/v1/entries", 401, await client.post("/ns/api/v1/entries", json=[])),
        ("post", "/fhir/Observation", 400, await client.post(
            "/fhir/Observation", content=b"[", headers={**hospital, "Content-Type": "application/fhir+json"})),
        ("post", "/fhir", 401, await client.post("/fhir", json={"resourceType": "Bundle", "type": "batch"})),
    ]  # fmt: skip

    for method, path, status, response in cases:
        assert response.status_code == status, (path, response.text)
        media_type, schema = declared(document, method, path, status)
        assert response.headers["content-type"].startswith(media_type), (path, status)
        assert conforms(response.json(), schema, document), (path, status, response.text)
    assert isinstance(cases[2][3].json()["detail"], str) and isinstance(cases[3][3].json()["detail"], list)


async def test_the_declared_ingest_bodies_describe_real_ones(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    now = dt.datetime.now(dt.UTC).isoformat()

    def body_schema(path: str) -> dict[str, Any]:
        schema: dict[str, Any] = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        return schema

    sync = {"device_time": now, "readings": [{"measured_at": now, "value": 5.4, "unit": "mmol/L", "flags": ["manual"]}]}
    entry = {"type": "sgv", "sgv": 120, "date": 1_700_000_000_000}
    assert conforms(sync, body_schema("/api/v1/readings"), document)
    assert not conforms({"device_time": now}, body_schema("/api/v1/readings"), document)
    assert conforms(entry, body_schema("/ns/api/v1/entries"), document)
    assert conforms([entry, entry], body_schema("/ns/api/v1/entries"), document)
    assert conforms(
        {"eventType": "BG Check", "glucose": 98, "created_at": now}, body_schema("/ns/api/v1/treatments"), document
    )
    assert not conforms({"resourceType": "Patient"}, body_schema("/fhir/Observation"), document)
    assert conforms({"resourceType": "Bundle", "type": "batch", "entry": []}, body_schema("/fhir"), document)
