"""The FHIR import routes: ``POST /fhir/Observation`` (one Observation) and ``POST /fhir`` (a ``batch`` or
``transaction`` Bundle), their bodies read and refused as FHIR says, their answers built from the import's
outcome."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request, Response

from ingest.body import BodyError, json_safe, parse_json, read_body
from ingest.fhir.imports import SOURCE, Entry, import_entries
from ingest.fhir.outcome import FhirBodyError, Refused
from ingest.http import service
from ingest.readings import brief, raw_text
from ingest.schemas import FhirBundleResponse, FhirObservation
from ingest.service import IngestService
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.fhir_json import (
    MEDIA_TYPES,
    REASON_PHRASES,
    FhirJSONResponse,
    FhirRoute,
    diagnostics,
    fhir_response,
    issue,
    operation_outcome,
)

# (the routes answer with ``fhir_response``; the class says the media type of their answers in /openapi.json)
router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute, default_response_class=FhirJSONResponse)


async def read_resource(request: Request, ingest: IngestService, resource_type: str) -> dict[str, Any]:
    """The body as a resource of ``resource_type``; a refused body is recorded and answered with an
    OperationOutcome (415 media type, 413 too large, 400 not JSON or not that resource)."""
    settings = request.app.state.services.settings
    try:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type and media_type not in MEDIA_TYPES:
            raise FhirBodyError(
                415, "not-supported", f"content-type {media_type[:60]!r}: send {' or '.join(MEDIA_TYPES)}"
            )
        body = await read_body(request, settings.max_body_bytes)
        try:
            payload = parse_json(body)
        except BodyError as exc:
            raise FhirBodyError(400, "structure", f"body is not JSON: {diagnostics(exc.detail)}", body) from None
        if not isinstance(payload, dict) or payload.get("resourceType") != resource_type:
            got = payload.get("resourceType") if isinstance(payload, dict) else type(payload).__name__
            raise FhirBodyError(
                400, "invalid", f"expected a {resource_type} resource, got {brief(got, 40)}", body, "resourceType"
            )
    except BodyError as exc:
        await ingest.reject(SOURCE, None, f"HTTP {exc.status_code}: {diagnostics(exc.detail)}", exc.raw)
        raise
    return payload


HospitalKey = Annotated[ApiKey, Depends(api_key("readings:write"))]
Pool = Annotated[asyncpg.Pool, Depends(pool)]
Ingest = Annotated[IngestService, Depends(service)]
REQUEST_BODY = {"requestBody": {"required": True, "content": {m: {"schema": {"type": "object"}} for m in MEDIA_TYPES}}}
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key (OperationOutcome)"},
    403: {"description": "the API key lacks readings:write (OperationOutcome)"},
    413: {"description": "body too large, or too many entries (OperationOutcome)"},
    415: {"description": "not application/fhir+json or application/json (OperationOutcome)"},
}


@router.post(
    "/Observation",
    summary="Import one Observation (glucose, ketones, body weight, blood pressure)",
    openapi_extra=REQUEST_BODY,
    responses={
        201: {"model": FhirObservation, "description": "stored; the Observation with the reading's id, and a Location"},
        200: {"model": FhirObservation, "description": "already stored (duplicate); the Observation with its id"},
        400: {"description": "not an Observation (OperationOutcome)"},
        404: {"description": "unknown patient, or one of a care team the key does not belong to (OperationOutcome)"},
        422: {"description": "refused by the rules (OperationOutcome)"},
        **ERRORS,
    },
)
async def post_observation(request: Request, key: HospitalKey, db: Pool, ingest: Ingest) -> Response:
    """One Observation: a glucose LOINC code with a valueQuantity in mg/dL, mmol/L or g/L (UCUM); or ketones
    (53060-9 in mmol/L, 2514-8 a strip's reading), a body weight (29463-7 in kg, g or [lb_av]) or a blood pressure
    panel (85354-9: components 8480-6 and 8462-4 in mm[Hg], 8867-4 in /min); a time (effectiveDateTime,
    effectiveInstant or effectivePeriod.start), status final, amended, corrected or preliminary, and a subject
    (Patient/<telemon id>, or an identifier holding the patient's hospital number). A measurement's id is
    ``m<id>``."""
    observation = await read_resource(request, ingest, "Observation")
    entry = Entry(0, observation, None)
    await import_entries(
        db, ingest, [entry], atomic=True, actor=f"api_key:{key.id}", bundle=None, team_ids=key.team_ids
    )
    if entry.refusal is not None:
        return fhir_response(operation_outcome([entry.refusal.issue()]), entry.refusal.status)
    echoed = {"resourceType": "Observation", **json_safe(observation)}
    headers = {}
    if entry.reading_id is not None:
        echoed["id"] = str(entry.reading_id)
        headers["Location"] = f"{request.scope.get('root_path', '')}/fhir/Observation/{entry.reading_id}"
    return fhir_response(echoed, entry.status, headers)


@router.post(
    "",
    summary="Import a batch or transaction Bundle of Observations",
    openapi_extra=REQUEST_BODY,
    responses={
        200: {"model": FhirBundleResponse, "description": "a batch-response or transaction-response Bundle"},
        400: {"description": "not a batch or transaction Bundle, or a malformed entry in a transaction"},
        422: {"description": "a transaction with a refused entry: nothing stored (OperationOutcome)"},
        **ERRORS,
    },
)
async def post_bundle(request: Request, key: HospitalKey, db: Pool, ingest: Ingest) -> Response:
    """A Bundle of type batch (each entry on its own: a bad entry never fails the good ones) or transaction
    (all or nothing, as FHIR requires) whose entries POST Observations (see ``POST /fhir/Observation``)."""
    bundle = await read_resource(request, ingest, "Bundle")
    settings = request.app.state.services.settings
    try:
        kind = bundle.get("type")
        if kind not in ("batch", "transaction"):
            raise FhirBodyError(
                400,
                "not-supported",
                f"Bundle.type {brief(kind, 30)}: expected batch or transaction",
                raw_text(bundle).encode(),
                "Bundle.type",
            )
        items = bundle.get("entry") or []
        if not isinstance(items, list):
            raise FhirBodyError(
                400, "structure", "Bundle.entry: expected an array", raw_text(bundle).encode(), "Bundle.entry"
            )
        if len(items) > settings.max_batch_readings:
            raise FhirBodyError(
                413,
                "too-costly",
                f"{len(items)} entries in one Bundle; at most {settings.max_batch_readings}",
                b"",
                "Bundle.entry",
            )
    except BodyError as exc:
        await ingest.reject(SOURCE, None, f"HTTP {exc.status_code}: {diagnostics(exc.detail)}", exc.raw)
        raise
    entries = [_bundle_entry(position, item) for position, item in enumerate(items)]
    atomic = kind == "transaction"
    stored = await import_entries(
        db, ingest, entries, atomic=atomic, actor=f"api_key:{key.id}", bundle=kind, team_ids=key.team_ids
    )
    if not stored:
        refusals = [(e.position, e.refusal) for e in entries if e.refusal is not None]
        status = 400 if any(r.status == 400 for _, r in refusals) else 422
        lead = issue(
            "processing",
            f"transaction refused: {len(refusals)} of {len(entries)} entries cannot be"
            " stored, so none was (send a batch Bundle to store the others)",
        )
        return fhir_response(operation_outcome([lead, *(r.issue(p) for p, r in refusals)]), status)
    return fhir_response(
        {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": f"{kind}-response",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "entry": [{"response": _entry_response(e)} for e in entries],
        },
        200,
    )


def _bundle_entry(position: int, item: Any) -> Entry:
    where = f"Bundle.entry[{position}]"
    if not isinstance(item, dict):
        return Entry(position, item, position, Refused(400, "structure", "a Bundle entry must be an object", where))
    entry = Entry(position, item.get("resource"), position)
    request = item.get("request")
    method = request.get("method") if isinstance(request, dict) else None
    url = request.get("url") if isinstance(request, dict) else None
    if method is not None and method != "POST":
        entry.refusal = Refused(
            422,
            "not-supported",
            f"request.method {brief(method, 10)}: only POST (create) is supported",
            f"{where}.request.method",
        )
    elif isinstance(url, str) and url.split("?")[0].strip("/") != "Observation":
        entry.refusal = Refused(
            422, "not-supported", f"request.url {url[:60]!r}: only Observation is supported", f"{where}.request.url"
        )
    elif entry.resource is None:
        entry.refusal = Refused(400, "required", "resource: required", f"{where}.resource")
    if entry.refusal is not None and entry.resource is None:
        entry.resource = item  # what is kept in ingest_rejections
    return entry


def _entry_response(entry: Entry) -> dict[str, Any]:
    if entry.refusal is not None:
        status = entry.refusal.status
        return {
            "status": f"{status} {REASON_PHRASES.get(status, '')}".strip(),
            "outcome": operation_outcome([entry.refusal.issue()]),
        }
    found: dict[str, Any] = {"status": f"{entry.status} {REASON_PHRASES[entry.status]}"}
    if entry.reading_id is not None:
        found["location"] = f"Observation/{entry.reading_id}"
    return found
