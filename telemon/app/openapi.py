"""What ``/openapi.json`` says that FastAPI cannot find by itself.

The ingest routes read their body as raw bytes (parsing it with the fast decoder and refusing it item by item
is the hot path), so FastAPI sees no body model and describes none; their bodies are given here. Errors are
answered as ``{"detail": <text or list>}`` (the framework's validation errors are a list, the service's own
reasons a text), while FastAPI's default schema says a list only: every JSON 4xx is declared here as ``Error``,
whose ``detail`` may be either; FHIR routes answer an ``OperationOutcome``, Nightscout's 401 its own body. And
the security schemes, which FastAPI only lists for its own security classes: each route's scheme is found from
the authentication dependency it uses.

The document is completed once, the first time it is asked for, from the routes themselves: a route added later
with one of these dependencies is described without a change here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from ingest.measurements import (
    BLOOD_KETONE_MMOLL,
    DIASTOLIC_MMHG,
    INSULIN_UNITS,
    INSULINS,
    PRODUCT_LIMIT,
    PULSE_PER_MIN,
    SLOTS,
    SYSTOLIC_MMHG,
    URINE_KETONES,
    WEIGHT_KG,
    WEIGHT_UNITS,
)
from ingest.readings import CONTEXTS, FLAGS, KINDS, MEALS

ERROR = "#/components/schemas/Error"
OPERATION_OUTCOME = "#/components/schemas/OperationOutcome"
NIGHTSCOUT_UNAUTHORIZED = "#/components/schemas/NightscoutUnauthorized"
FHIR_MEDIA_TYPES = ("application/fhir+json", "application/json")

# The authentication dependencies, by qualified name, and what each means in the document.
DEVICE = "ingest.http.device"
NIGHTSCOUT = "ingest.nightscout.auth.uploader"
APP = "telemon.auth.app_device"  # the companion app's device token: the patient's own API
API_KEY = "telemon.auth.api_key.<locals>.dependency"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "deviceToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "A device's token (``Authorization: Bearer tmd_...``), given once when the device is paired.",
    },
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A care team's API key (``Authorization: Bearer <key>``); it reads and writes the patients of"
        " its teams only, within its scopes.",
    },
    "apiKeyHeader": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "The same API key, in the X-API-Key header.",
    },
    "nightscoutSecret": {
        "type": "apiKey",
        "in": "header",
        "name": "api-secret",
        "description": "Nightscout uploaders' secret: the SHA-1 hex of the device token.",
    },
}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    DEVICE: [{"deviceToken": []}],
    APP: [{"deviceToken": []}],
    API_KEY: [{"apiKey": []}, {"apiKeyHeader": []}],
    NIGHTSCOUT: [{"nightscoutSecret": []}],
}
AUTH_ERRORS = {
    DEVICE: {401: "missing or unknown device token", 403: "the device is disabled"},
    APP: {401: "missing or unknown device token", 403: "the app was revoked, or the token is not an app's"},
    API_KEY: {
        401: "missing, unknown or revoked API key",
        403: "the API key lacks the scope, or belongs to no care team",
    },
    NIGHTSCOUT: {401: "missing or wrong api-secret, or a disabled device"},
}

_READING: dict[str, Any] = {
    "type": "object",
    "description": "One reading. Each is validated on its own: a refused reading is named in the receipt with its"
    " index and reason, and never fails the others.",
    "required": ["measured_at", "unit"],
    "properties": {
        "measured_at": {
            "type": "string",
            "format": "date-time",
            "description": "ISO 8601; without an offset, the patient's local time.",
        },
        "value": {
            "type": ["number", "null"],
            "description": "Finite; null only with the flag lo or hi (the meter's LO / HI).",
        },
        "unit": {"type": "string", "examples": ["mg/dL", "mmol/L", "g/L"], "description": "mg/dL, mmol/L or g/L."},
        "kind": {"type": "string", "enum": list(KINDS)},
        "context": {"type": "string", "enum": list(CONTEXTS), "description": "Inferred from the time when absent."},
        "meal": {"type": "string", "enum": list(MEALS)},
        "minutes_after_meal": {"type": "integer", "minimum": 0, "maximum": 600},
        "flags": {"type": "array", "items": {"type": "string", "enum": list(FLAGS)}},
        "id": {
            "type": ["string", "integer"],
            "maxLength": 128,
            "description": "The device's own id of the reading. Text without NUL characters or lone surrogates.",
        },
        "note": {
            "type": "string",
            "description": "Kept up to 1,000 characters. Text without NUL characters or lone surrogates.",
        },
    },
}
_NUMBER_OR_TEXT = {"type": ["number", "string"]}
_OBSERVATION: dict[str, Any] = {
    "type": "object",
    "description": "A FHIR R4 Observation of glucose.",
    "required": ["resourceType", "status", "code", "subject", "valueQuantity"],
    "properties": {
        "resourceType": {"const": "Observation"},
        "status": {"type": "string", "enum": ["final", "amended", "corrected", "preliminary"]},
        "code": {
            "type": "object",
            "properties": {
                "coding": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"system": {"const": "http://loinc.org"}, "code": {"type": "string"}},
                    },
                }
            },
        },
        "subject": {
            "type": "object",
            "properties": {
                "reference": {"type": "string", "examples": ["Patient/<telemon patient id>"]},
                "identifier": {"type": "object", "properties": {"value": {"type": "string"}}},
            },
        },
        "effectiveDateTime": {"type": "string", "format": "date-time"},
        "effectiveInstant": {"type": "string", "format": "date-time"},
        "effectivePeriod": {"type": "object", "properties": {"start": {"type": "string", "format": "date-time"}}},
        "valueQuantity": {
            "type": "object",
            "properties": {
                "value": {"type": "number"},
                "unit": {"type": "string"},
                "system": {"const": "http://unitsofmeasure.org"},
                "code": {"type": "string", "enum": ["mg/dL", "mmol/L", "g/L"]},
                "comparator": {"type": "string", "enum": ["<", "<=", ">", ">="]},
            },
        },
        "id": {"type": "string"},
        "note": {"type": "array", "items": {"type": "object", "properties": {"text": {"type": "string"}}}},
    },
}
_NIGHTSCOUT_ENTRY: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["sgv", "mbg"]},
        "sgv": {**_NUMBER_OR_TEXT, "description": "mg/dL; below 39, a Dexcom error code (refused)."},
        "mbg": {**_NUMBER_OR_TEXT, "description": "mg/dL"},
        "date": {"type": "number", "description": "Epoch milliseconds."},
        "dateString": {"type": "string", "format": "date-time"},
        "_id": {"type": ["string", "integer"]},
        "direction": {"type": "string"},
    },
}
_NIGHTSCOUT_TREATMENT: dict[str, Any] = {
    "type": "object",
    "description": "Kept only when it carries glucose; the others are answered and not kept.",
    "properties": {
        "eventType": {"type": "string", "examples": ["BG Check"]},
        "glucose": _NUMBER_OR_TEXT,
        "units": {"type": "string", "enum": ["mg/dl", "mmol"]},
        "created_at": {"type": "string", "format": "date-time"},
        "date": {"type": "number", "description": "Epoch milliseconds, when created_at is absent."},
        "notes": {"type": "string"},
        "_id": {"type": ["string", "integer"]},
    },
}


def _one_or_many(ref: str) -> dict[str, Any]:
    return {"oneOf": [{"$ref": ref}, {"type": "array", "items": {"$ref": ref}}]}


# The other item kinds a sync may carry (ingest.measurements holds their ranges and the sources of them).
_MEASURED_AT = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601; without an offset, the patient's local time.",
}
_ITEM_TEXTS: dict[str, Any] = {
    "id": {"type": ["string", "integer"], "maxLength": 128, "description": "The device's own id of the item."},
    "note": {"type": "string", "description": "Kept up to 1,000 characters."},
}
_INSULIN_DOSE: dict[str, Any] = {
    "type": "object",
    "description": f"An insulin dose: units above 0 and at most {INSULIN_UNITS[1]:g}.",
    "required": ["kind", "measured_at", "units"],
    "anyOf": [{"required": ["insulin"]}, {"required": ["product"]}],
    "properties": {
        "kind": {"const": "insulin"},
        "measured_at": _MEASURED_AT,
        "units": {"type": "number", "exclusiveMinimum": INSULIN_UNITS[0], "maximum": INSULIN_UNITS[1]},
        "unit": {"type": "string", "enum": ["U", "IU", "units"]},
        "insulin": {"type": "string", "enum": list(INSULINS)},
        "product": {"type": "string", "maxLength": PRODUCT_LIMIT, "examples": ["NPH", "Levemir", "NovoRapid"]},
        "slot": {"type": "string", "enum": list(SLOTS)},
        **_ITEM_TEXTS,
    },
}
_KETONE: dict[str, Any] = {
    "type": "object",
    "description": "Ketones: blood β-hydroxybutyrate (value in mmol/L) or urine (a strip's reading), not both.",
    "required": ["kind", "measured_at"],
    "oneOf": [{"required": ["value", "unit"]}, {"required": ["urine"]}],
    "properties": {
        "kind": {"const": "ketone"},
        "measured_at": _MEASURED_AT,
        "value": {"type": "number", "minimum": BLOOD_KETONE_MMOLL[0], "maximum": BLOOD_KETONE_MMOLL[1]},
        "unit": {"type": "string", "enum": ["mmol/L"]},
        "urine": {"type": "string", "enum": list(URINE_KETONES)},
        **_ITEM_TEXTS,
    },
}
_WEIGHT: dict[str, Any] = {
    "type": "object",
    "description": f"Body weight: {WEIGHT_KG[0]:g}–{WEIGHT_KG[1]:g} kg.",
    "required": ["kind", "measured_at", "value", "unit"],
    "properties": {
        "kind": {"const": "weight"},
        "measured_at": _MEASURED_AT,
        "value": {"type": "number"},
        "unit": {"type": "string", "enum": list(WEIGHT_UNITS)},
        **_ITEM_TEXTS,
    },
}
_BLOOD_PRESSURE: dict[str, Any] = {
    "type": "object",
    "description": "Blood pressure in mmHg, the diastolic below the systolic; the pulse per minute, optional.",
    "required": ["kind", "measured_at", "systolic", "diastolic"],
    "properties": {
        "kind": {"const": "blood_pressure"},
        "measured_at": _MEASURED_AT,
        "systolic": {"type": "number", "minimum": SYSTOLIC_MMHG[0], "maximum": SYSTOLIC_MMHG[1]},
        "diastolic": {"type": "number", "minimum": DIASTOLIC_MMHG[0], "maximum": DIASTOLIC_MMHG[1]},
        "pulse": {"type": "number", "minimum": PULSE_PER_MIN[0], "maximum": PULSE_PER_MIN[1]},
        "unit": {"type": "string", "enum": ["mmHg"]},
        **_ITEM_TEXTS,
    },
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "description": "A refused request. ``detail`` is the reason as text, or a list of the places at fault.",
        "required": ["detail"],
        "properties": {
            "detail": {
                "anyOf": [{"type": "string"}, {"type": "array", "items": {"$ref": "#/components/schemas/ErrorItem"}}]
            }
        },
        "examples": [
            {"detail": "cursor: not a cursor this API returned"},
            {
                "detail": [
                    {"loc": ["body", 12], "line": 1, "column": 13, "msg": "Expecting value", "type": "json_invalid"}
                ]
            },
        ],
    },
    "ErrorItem": {
        "type": "object",
        "required": ["msg"],
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "msg": {"type": "string"},
            "type": {"type": "string"},
            "line": {"type": "integer"},
            "column": {"type": "integer"},
        },
    },
    "OperationOutcome": {
        "type": "object",
        "required": ["resourceType", "issue"],
        "properties": {
            "resourceType": {"const": "OperationOutcome"},
            "issue": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["severity", "code"],
                    "properties": {
                        "severity": {"type": "string"},
                        "code": {"type": "string"},
                        "diagnostics": {"type": "string"},
                        "expression": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
        },
    },
    "NightscoutUnauthorized": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {"status": {"const": 401}, "message": {"type": "string"}, "description": {"type": "string"}},
    },
    "Reading": _READING,
    "ReadingsSync": {
        "type": "object",
        "required": ["readings"],
        "properties": {
            "device_time": {
                "type": "string",
                "format": "date-time",
                "description": "The device's clock when it sent: corrects its readings' times when it is off.",
            },
            "readings": {
                "type": "array",
                "items": {
                    "anyOf": [
                        {"$ref": f"#/components/schemas/{name}"}
                        for name in ("Reading", "InsulinDose", "Ketone", "Weight", "BloodPressure")
                    ]
                },
            },
        },
    },
    "InsulinDose": _INSULIN_DOSE,
    "Ketone": _KETONE,
    "Weight": _WEIGHT,
    "BloodPressure": _BLOOD_PRESSURE,
    "NightscoutEntry": _NIGHTSCOUT_ENTRY,
    "NightscoutTreatment": _NIGHTSCOUT_TREATMENT,
    "Observation": _OBSERVATION,
    "Bundle": {
        "type": "object",
        "required": ["resourceType", "type"],
        "properties": {
            "resourceType": {"const": "Bundle"},
            "type": {"type": "string", "enum": ["batch", "transaction"]},
            "entry": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "resource": {"$ref": "#/components/schemas/Observation"},
                        "request": {
                            "type": "object",
                            "properties": {"method": {"const": "POST"}, "url": {"const": "Observation"}},
                        },
                    },
                },
            },
        },
    },
}


def _json_body(schema: dict[str, Any], media_types: tuple[str, ...] = ("application/json",)) -> dict[str, Any]:
    return {"required": True, "content": {m: {"schema": schema} for m in media_types}}


# The bodies of the routes that read theirs raw, by (method, path).
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/api/v1/readings"): _json_body({"$ref": "#/components/schemas/ReadingsSync"}),
    ("post", "/ns/api/v1/entries"): _json_body(_one_or_many("#/components/schemas/NightscoutEntry")),
    ("post", "/ns/api/v1/treatments"): _json_body(_one_or_many("#/components/schemas/NightscoutTreatment")),
    ("post", "/ns/api/v1/devicestatus"): _json_body({"type": ["object", "array"]}),
    ("post", "/fhir/Observation"): _json_body({"$ref": "#/components/schemas/Observation"}, FHIR_MEDIA_TYPES),
    ("post", "/fhir"): _json_body({"$ref": "#/components/schemas/Bundle"}, FHIR_MEDIA_TYPES),
}
# Refusals the routes answer besides the framework's and the authentication's.
ERRORS: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/api/v1/readings"): {400: "body is not valid gzip", 415: "content-encoding other than gzip"},
    ("get", "/api/v1/patients/{patient_id}/readings"): {
        400: "a cursor this API did not return",
        404: "no such patient among the key's care teams",
        422: "a parameter out of range, or a time without an offset",
    },
    ("get", "/api/v1/alerts"): {400: "a cursor this API did not return"},
    ("post", "/api/v1/alerts/{alert_id}/acknowledge"): {404: "no such alert", 409: "the alert is not open"},
    ("post", "/api/v1/alerts/{alert_id}/snooze"): {404: "no such alert", 409: "the alert is resolved"},
    ("post", "/api/v1/alerts/{alert_id}/resolve"): {404: "no such alert", 409: "the alert is resolved"},
    ("post", "/ns/api/v1/entries"): {400: "body is not valid gzip", 415: "content-encoding other than gzip"},
    ("post", "/ns/api/v1/treatments"): {400: "body is not valid gzip", 415: "content-encoding other than gzip"},
    ("get", "/ns/api/v1/entries"): {400: "find[date] out of range"},
    ("post", "/ns/api/v1/devicestatus"): {413: "body too large", 422: "body is not JSON"},
}


def describe(app: FastAPI) -> None:
    """Complete ``app``'s OpenAPI document (generated on first request, then cached) as the module says."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(generate(), app.routes)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(document: dict[str, Any], routes: list[Any]) -> None:
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(SCHEMAS)
    components["securitySchemes"] = SECURITY_SCHEMES
    auth_of = {
        (method.lower(), route.path_format): _auth(getattr(route, "dependant", None))
        for route in iter_route_contexts(routes)
        for method in route.methods or ()
    }
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            key = (method, path)
            if key in BODIES:
                operation["requestBody"] = BODIES[key]
            responses = operation["responses"]
            auth = auth_of.get(key)
            if auth is not None:
                operation["security"] = SECURITY[auth]
                for status, description in AUTH_ERRORS[auth].items():
                    responses.setdefault(str(status), {"description": description})
            for status, description in ERRORS.get(key, {}).items():
                responses.setdefault(str(status), {"description": description})
            for status, response in responses.items():
                if status.startswith("4"):
                    response["content"] = _error_content(path, status)
                    if response.get("description") == "Validation Error":
                        response["description"] = "a parameter or the body is refused; detail says which and why"
    _drop_unused(components["schemas"], document)


def _error_content(path: str, status: str) -> dict[str, Any]:
    if path.startswith("/fhir"):
        return {"application/fhir+json": {"schema": {"$ref": OPERATION_OUTCOME}}}
    if path.startswith("/ns/") and status == "401":
        return {"application/json": {"schema": {"$ref": NIGHTSCOUT_UNAUTHORIZED}}}
    return {"application/json": {"schema": {"$ref": ERROR}}}


def _auth(route: Dependant | None) -> str | None:
    """The authentication dependency of a route (its ``dependant``), among those the document knows."""
    if route is None:
        return None
    for dependant in _dependants(route):
        call = dependant.call
        name = f"{getattr(call, '__module__', '')}.{getattr(call, '__qualname__', '')}"
        if name in SECURITY:
            return name
    return None


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    for sub in dependant.dependencies:
        yield sub
        yield from _dependants(sub)


def _drop_unused(schemas: dict[str, Any], document: dict[str, Any]) -> None:
    """FastAPI's list-only validation error schemas, once no response refers to them any more."""
    text = repr(document["paths"]) + repr({k: v for k, v in schemas.items() if k not in _DEFAULTS})
    if not any(f"#/components/schemas/{name}'" in text for name in _DEFAULTS):
        for name in _DEFAULTS:
            schemas.pop(name, None)


_DEFAULTS = ("HTTPValidationError", "ValidationError")
