"""FHIR R4 import of glucose Observations, for hospitals (lab and ward readings).

``POST /fhir/Observation`` takes one Observation; ``POST /fhir`` a Bundle of type ``batch`` or ``transaction``
whose entries POST Observations. Bodies are ``application/fhir+json`` or ``application/json``; the caller is a
hospital API key with the scope ``readings:write``. Every error of these routes, authentication included, is an
``OperationOutcome``.

Each Observation is turned into one item of the device wire format (DESIGN §5) and goes through the one ingest
pipeline (``IngestService.prepare`` then ``store``, all entries of a request in one transaction, source
``fhir``): validation, units, the pregnancy window and deduplication are the pipeline's, not redone here. A
refused Observation is recorded in ``ingest_rejections`` with its entry position as index (none for a single
POST). Readings are stored under one device per patient, ``fhir-<patient uuid hex>``, created on first import;
it is deterministic so that a re-import deduplicates on (patient, device, kind, device_time, value).

Answers:
- single POST: ``201 Created`` with the Observation echoed, its ``id`` being the stored reading's id, and a
  ``Location``; ``200 OK`` with the same for a reading already stored (like a conditional create that found its
  match); an OperationOutcome otherwise: 400 not an Observation, 404 unknown patient (a patient of a care team
  the API key does not belong to is unknown to it, with the very same answer), 422 refused by the rules.
- ``batch``: a ``batch-response`` Bundle with one entry per input entry, in order, ``response.status`` being what
  a single POST of that entry would have answered, with ``response.outcome`` for refused entries. A bad entry
  never fails the good ones.
- ``transaction``: all or nothing, as FHIR requires. When every entry is acceptable they are stored together
  and a ``transaction-response`` Bundle comes back; otherwise nothing is stored, the refusals are recorded, and
  the answer is one OperationOutcome (400 if an entry is malformed, else 422) with an issue per refused entry.
  Hospitals that want partial success send a ``batch``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from ingest import queries
from ingest.body import BodyError, json_safe, parse_json, read_body
from ingest.http import service
from ingest.readings import DeviceContext, Prepared, RejectedItem, brief, raw_text, storable, text_fault
from ingest.service import IngestService, RejectedItemOf, devices_by_ids
from telemon import audit
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.broker_passwords import mosquitto_password_hash
from telemon.outage import UNAVAILABLE_TEXT
from telemon.security import new_secret, nightscout_secret, secret_hash
from telemon.units import GL, MGDL, MMOLL

SOURCE = "fhir"
FHIR_JSON = "application/fhir+json"
MEDIA_TYPES = (FHIR_JSON, "application/json")
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

# Glucose LOINC codes imported, with their LOINC long names. DESIGN §3 lists the first six; the laboratory ones
# (serum or plasma, what a hospital lab reports, including a fasting sample) are added for hospital imports.
GLUCOSE_CODES: dict[str, str] = {
    "2339-0": "Glucose [Mass/volume] in Blood",
    "15074-8": "Glucose [Moles/volume] in Blood",
    "41653-7": "Glucose [Mass/volume] in Capillary blood by Glucometer",
    "14743-9": "Glucose [Moles/volume] in Capillary blood by Glucometer",
    "99504-3": "Glucose [Mass/volume] in Interstitial fluid (CGM sensor reading, HL7 CGM IG)",
    "105272-9": "Glucose [Moles/volume] in Interstitial fluid (CGM sensor reading, HL7 CGM IG)",
    "2345-7": "Glucose [Mass/volume] in Serum or Plasma",
    "14749-6": "Glucose [Moles/volume] in Serum or Plasma",
    "1558-6": "Fasting glucose [Mass/volume] in Serum or Plasma",
    "14771-0": "Fasting glucose [Moles/volume] in Serum or Plasma",
}
CGM_CODES = frozenset({"99504-3", "105272-9"})  # stored as kind cgm; every other code as smbg
FASTING_CODES = frozenset({"1558-6", "14771-0"})  # context fasting; otherwise the pipeline infers the context

# Observation.status values whose result is a reading (FHIR R4 ObservationStatus).
STATUSES = ("final", "amended", "corrected", "preliminary")
WITHDRAWN = {
    "entered-in-error": "the result was entered in error",
    "cancelled": "the observation was cancelled",
}
# UCUM codes of the glucose units telemon stores (UCUM is case-sensitive; its case-insensitive forms are taken
# too). g/L is French laboratory practice (DESIGN §2).
UCUM_UNITS = {unit.lower(): unit for unit in (MGDL, MMOLL, GL)}
# valueQuantity.comparator: a value the meter or the lab could only bound is a LO / HI reading.
COMPARATOR_FLAGS = {"<": "lo", "<=": "lo", ">": "hi", ">=": "hi"}

REASON_PHRASES = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Entity",
}
ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    413: "too-costly",
    415: "not-supported",
    422: "invalid",
}


# --- OperationOutcome, and errors of these routes as OperationOutcome ---------------------------------------------


def issue(code: str, diagnostics: str, expression: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"severity": "error", "code": code, "diagnostics": diagnostics}
    if expression:
        found["expression"] = [expression]
    return found


def operation_outcome(issues: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": list(issues)}


def fhir_response(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers, media_type=FHIR_JSON)


def unavailable(scope: Scope, retry_after_s: int) -> JSONResponse:
    """The 503 of a database outage as FHIR says it: an OperationOutcome whose issue is ``transient``."""
    outcome = operation_outcome([issue("transient", UNAVAILABLE_TEXT)])
    return fhir_response(outcome, 503, {"Retry-After": str(retry_after_s), "Cache-Control": "no-store"})


class FhirBodyError(BodyError):
    """A refused body, with the FHIR issue code and the element at fault."""

    def __init__(
        self, status_code: int, code: str, diagnostics: str, raw: bytes = b"", expression: str | None = None
    ) -> None:
        super().__init__(status_code, diagnostics, raw)
        self.code = code
        self.expression = expression


def _diagnostics(detail: Any) -> str:
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                where = f" (line {item['line']}, column {item['column']})" if "line" in item else ""
                parts.append(f"{item.get('msg')}{where}")
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return str(detail)


def _error_outcome(exc: StarletteHTTPException) -> JSONResponse:
    code = getattr(exc, "code", None) or ISSUE_CODES.get(exc.status_code, "exception")
    found = issue(code, _diagnostics(exc.detail), getattr(exc, "expression", None))
    return fhir_response(operation_outcome([found]), exc.status_code, dict(exc.headers or {}))


class FhirRoute(APIRoute):
    """A route whose errors, those of its dependencies (API key) included, come out as an OperationOutcome."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def fhir_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except StarletteHTTPException as exc:
                return _error_outcome(exc)
            except RequestValidationError as exc:
                diagnostics = "; ".join(f"{e.get('msg')} at {e.get('loc')}" for e in exc.errors())
                return fhir_response(operation_outcome([issue("invalid", diagnostics)]), 400)

        return fhir_handler


router = APIRouter(prefix="/fhir", tags=["fhir"], route_class=FhirRoute)


# --- From an Observation to a wire-format reading (pure) ----------------------------------------------------------


class Refused(Exception):
    """An entry that cannot be stored: the HTTP status a single POST of it gets, the FHIR issue code, and the
    element at fault (a FHIRPath from ``Observation``, or from ``Bundle.entry[i]`` for the entry itself)."""

    def __init__(self, status: int, code: str, diagnostics: str, expression: str | None = None) -> None:
        diagnostics = storable(diagnostics)  # it is recorded and answered: never a text that cannot be
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression

    @property
    def reason(self) -> str:
        """The reason recorded in ``ingest_rejections``."""
        return f"{self.expression}: {self.diagnostics}" if self.expression else self.diagnostics

    def issue(self, entry: int | None = None) -> dict[str, Any]:
        expression = self.expression
        if entry is not None and expression and expression.startswith("Observation."):
            expression = f"Bundle.entry[{entry}].resource.{expression.removeprefix('Observation.')}"
        diagnostics = self.diagnostics if entry is None else f"entry {entry}: {self.diagnostics}"
        return issue(self.code, diagnostics, expression)


Subject = tuple[str, Any]  # ("id", uuid.UUID) or ("external_id", str)


def check_observation(resource: Any) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise Refused(400, "structure", f"expected a resource (a JSON object), got {type(resource).__name__}")
    kind = resource.get("resourceType")
    if kind != "Observation":
        raise Refused(
            400,
            "not-supported",
            f"resourceType {brief(kind, 40)}: only Observation resources are imported",
            "resourceType",
        )
    return resource


def subject_of(observation: dict[str, Any]) -> Subject:
    """Whose reading: ``subject.reference`` ``Patient/<telemon id>`` (absolute or relative), else the value of
    ``subject.identifier`` matched against the patients' external id (the hospital number; its system is not
    compared: telemon keeps none)."""
    subject = observation.get("subject")
    if not isinstance(subject, dict):
        raise Refused(
            422,
            "required",
            "subject: required, Patient/<telemon id> or an identifier with the patient's hospital number",
            "Observation.subject",
        )
    identifier = subject.get("identifier")
    value = identifier.get("value") if isinstance(identifier, dict) else None
    external_id = value.strip() if isinstance(value, str) and value.strip() else None
    fault = text_fault(external_id) if external_id is not None else None
    if fault:
        raise Refused(422, "invalid", f"the identifier {fault}", "Observation.subject.identifier.value")
    has_identifier = external_id is not None
    reference = subject.get("reference")
    if isinstance(reference, str) and reference.strip():
        parts = reference.strip().split("/")
        if "_history" in parts:
            parts = parts[: parts.index("_history")]
        if len(parts) >= 2 and parts[-2] == "Patient":
            try:
                return ("id", uuid.UUID(parts[-1]))
            except ValueError:
                if not has_identifier:
                    raise Refused(
                        404,
                        "not-found",
                        f"{reference[:80]!r} is not a telemon patient id; give"
                        " Patient/<telemon id> or subject.identifier with the hospital number",
                        "Observation.subject.reference",
                    ) from None
        elif not has_identifier:
            raise Refused(
                422, "invalid", f"{reference[:80]!r} does not refer to a Patient", "Observation.subject.reference"
            )
    if external_id is not None:
        return ("external_id", external_id)
    raise Refused(
        422,
        "required",
        "subject: give reference Patient/<telemon id> or identifier.value with the patient's hospital number",
        "Observation.subject",
    )


def glucose_codes(observation: dict[str, Any]) -> list[str]:
    code = observation.get("code")
    codings = code.get("coding") if isinstance(code, dict) else None
    if not isinstance(codings, list):
        raise Refused(422, "required", "code.coding: required, with a glucose LOINC code", "Observation.code")
    found = [c.get("code") for c in codings if isinstance(c, dict) and c.get("system") == LOINC]
    glucose = [c for c in found if isinstance(c, str) and c in GLUCOSE_CODES]
    if not glucose:
        given = ", ".join(brief(c, 20) for c in found) or "none"
        raise Refused(
            422,
            "code-invalid",
            f"no glucose LOINC code (LOINC codes given: {given}); expected one of {', '.join(GLUCOSE_CODES)}",
            "Observation.code.coding",
        )
    return glucose


def _quantity(observation: dict[str, Any]) -> tuple[Any, str, list[str], dict[str, str]]:
    """value, UCUM unit, flags, and the element each wire field came from."""
    quantity = observation.get("valueQuantity")
    if not isinstance(quantity, dict):
        if observation.get("dataAbsentReason") is not None:
            raise Refused(
                422, "required", "no value: the Observation gives a dataAbsentReason", "Observation.dataAbsentReason"
            )
        other = next((key for key in observation if key.startswith("value")), None)
        if other:
            raise Refused(
                422, "not-supported", f"{other}: a glucose value must be a valueQuantity", f"Observation.{other}"
            )
        raise Refused(422, "required", "valueQuantity: required", "Observation.valueQuantity")
    paths = {"value": "Observation.valueQuantity.value"}
    system = quantity.get("system")
    code = quantity.get("code")
    if code is not None:
        if system is not None and system != UCUM:
            raise Refused(
                422, "code-invalid", f"{brief(system, 60)} is not UCUM ({UCUM})", "Observation.valueQuantity.system"
            )
        unit_text, paths["unit"] = code, "Observation.valueQuantity.code"
    else:
        unit_text, paths["unit"] = quantity.get("unit"), "Observation.valueQuantity.unit"
    unit = UCUM_UNITS.get(unit_text.strip().lower()) if isinstance(unit_text, str) else None
    if unit is None:
        raise Refused(
            422,
            "code-invalid",
            f"{brief(unit_text, 20)} is not a glucose unit telemon takes (UCUM {', '.join(UCUM_UNITS.values())})",
            paths["unit"],
        )
    flags = []
    comparator = quantity.get("comparator")
    if comparator is not None:
        paths["flags"] = "Observation.valueQuantity.comparator"
        if not isinstance(comparator, str) or comparator not in COMPARATOR_FLAGS:
            raise Refused(
                422,
                "not-supported",
                f"comparator {brief(comparator, 10)}: expected one of {', '.join(COMPARATOR_FLAGS)}",
                paths["flags"],
            )
        flags.append(COMPARATOR_FLAGS[comparator])
    if quantity.get("value") is None:
        raise Refused(422, "required", "valueQuantity.value: required", paths["value"])
    return quantity["value"], unit, flags, paths


def _effective(observation: dict[str, Any]) -> tuple[Any, str]:
    period = observation.get("effectivePeriod")
    start = period.get("start") if isinstance(period, dict) else None
    for value, path in (
        (observation.get("effectiveDateTime"), "Observation.effectiveDateTime"),
        (observation.get("effectiveInstant"), "Observation.effectiveInstant"),
        (start, "Observation.effectivePeriod.start"),
    ):
        if value is None:
            continue
        if isinstance(value, str) and "T" not in value:
            raise Refused(422, "value", f"{value[:40]!r} has no time of day; a glucose reading needs one", path)
        return value, path
    raise Refused(
        422,
        "required",
        "effectiveDateTime, effectiveInstant or effectivePeriod.start: required",
        "Observation.effective",
    )


def to_reading(observation: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """One Observation as a wire-format reading, and the Observation element each of its fields came from (to
    name the element when the pipeline refuses a field)."""
    codes = glucose_codes(observation)
    status = observation.get("status")
    if status not in STATUSES:
        if isinstance(status, str) and status in WITHDRAWN:
            raise Refused(
                422,
                "business-rule",
                f"status {status}: {WITHDRAWN[status]}, so it is not a reading",
                "Observation.status",
            )
        raise Refused(
            422,
            "value" if status is not None else "required",
            f"status {brief(status, 30)}: expected one of {', '.join(STATUSES)}",
            "Observation.status",
        )
    value, unit, flags, paths = _quantity(observation)
    measured_at, paths["measured_at"] = _effective(observation)
    item: dict[str, Any] = {
        "measured_at": measured_at,
        "value": value,
        "unit": unit,
        "kind": "cgm" if any(c in CGM_CODES for c in codes) else "smbg",
    }
    if any(c in FASTING_CODES for c in codes):
        item["context"] = "fasting"
    if flags:
        item["flags"] = flags
    if observation.get("id") is not None:
        item["id"], paths["id"] = observation["id"], "Observation.id"
    else:
        identifiers = observation.get("identifier")
        first = identifiers[0] if isinstance(identifiers, list) and identifiers else None
        if isinstance(first, dict) and first.get("value") is not None:
            item["id"], paths["id"] = first["value"], "Observation.identifier[0].value"
    notes = observation.get("note")
    if isinstance(notes, list):
        texts = [n["text"] for n in notes if isinstance(n, dict) and isinstance(n.get("text"), str) and n["text"]]
        if texts:
            item["note"], paths["note"] = "\n".join(texts), "Observation.note"
    return item, paths


def pipeline_refusal(reason: str, paths: dict[str, str]) -> Refused:
    """The pipeline's reason (``"value: ..."``, ``"measured_at: ..."``) said of the Observation's element."""
    field, sep, rest = reason.partition(": ")
    if sep and field in paths:
        return Refused(422, "invalid", rest, paths[field])
    return Refused(422, "invalid", reason)


# --- Import: resolve patients, devices, prepare, store ------------------------------------------------------------


@dataclass
class Entry:
    position: int
    resource: Any
    index: int | None  # recorded in ingest_rejections: the entry position, None for a single POST
    refusal: Refused | None = None
    patient_id: uuid.UUID | None = None
    subject: Subject | None = None
    message: Prepared | None = None
    status: int = 0  # 201 stored, 200 already stored; 0 when refused or not stored
    reading_id: int | None = None


def hospital_device_id(patient_id: uuid.UUID) -> str:
    return f"fhir-{patient_id.hex}"


async def hospital_devices(db: asyncpg.Pool, patient_ids: set[uuid.UUID]) -> dict[uuid.UUID, DeviceContext]:
    """The import device of each patient, created the first time."""
    wanted = {hospital_device_id(p): p for p in patient_ids}
    if not wanted:
        return {}
    found = await devices_by_ids(db, wanted)
    missing = [p for device_id, p in wanted.items() if device_id not in found]
    if missing:
        thrown_away = [new_secret("tmd_") for _ in missing]  # nobody ever holds these: the device cannot log in
        await db.execute(
            queries.FHIR_INSERT_DEVICES,
            missing,
            [hospital_device_id(p) for p in missing],
            [secret_hash(s) for s in thrown_away],
            [secret_hash(nightscout_secret(s)) for s in thrown_away],
            [mosquitto_password_hash(s) for s in thrown_away],
        )
        found.update(await devices_by_ids(db, [hospital_device_id(p) for p in missing]))
    return {p: found[d] for d, p in wanted.items() if d in found and found[d].patient_id == p}


async def resolve_patients(db: asyncpg.Pool, entries: Sequence[Entry], team_ids: Sequence[uuid.UUID]) -> None:
    """Each entry's patient among those of the API key's care teams: another team's patient is refused with the
    very answer of a patient that does not exist, so that a key cannot learn who is cared for elsewhere."""
    pending = [e for e in entries if e.refusal is None and e.subject is not None]
    ids = list({e.subject[1] for e in pending if e.subject and e.subject[0] == "id"})
    external = list({e.subject[1] for e in pending if e.subject and e.subject[0] == "external_id"})
    teams = list(team_ids)
    known = {r["id"] for r in await db.fetch(queries.FHIR_PATIENTS_BY_IDS, ids, teams)} if ids else set()
    by_external: dict[str, list[uuid.UUID]] = {}
    if external:
        for row in await db.fetch(queries.FHIR_PATIENTS_BY_EXTERNAL_IDS, external, teams):
            by_external.setdefault(row["external_id"], []).append(row["id"])
    for entry in pending:
        if entry.subject is None:
            continue
        how, value = entry.subject
        if how == "id":
            if value in known:
                entry.patient_id = value
            else:
                entry.refusal = Refused(404, "not-found", f"no patient {value}", "Observation.subject.reference")
            continue
        matches = by_external.get(value, [])
        if len(matches) == 1:
            entry.patient_id = matches[0]
        elif not matches:
            entry.refusal = Refused(
                404,
                "not-found",
                f"no patient with the identifier {value[:64]!r}",
                "Observation.subject.identifier.value",
            )
        else:
            entry.refusal = Refused(
                422,
                "multiple-matches",
                f"the identifier {value[:64]!r} names patients of"
                f" {len(matches)} care teams; give subject.reference Patient/<telemon id>",
                "Observation.subject.identifier.value",
            )


async def import_entries(
    db: asyncpg.Pool,
    ingest: IngestService,
    entries: list[Entry],
    *,
    atomic: bool,
    actor: str,
    bundle: str | None,
    team_ids: Sequence[uuid.UUID],
) -> bool:
    """Store the entries' readings in one transaction and record the refusals; with ``atomic``, store no reading
    if any entry is refused. Sets each entry's status, reading id or refusal; returns whether readings were stored."""
    for entry in entries:
        if entry.refusal is None:
            try:
                entry.subject = subject_of(check_observation(entry.resource))
            except Refused as exc:
                entry.refusal = exc
            except Exception as exc:  # noqa: BLE001 - input no check foresaw: refused, never a 500
                entry.refusal = _unreadable(exc)
    await resolve_patients(db, entries, team_ids)
    devices = await hospital_devices(db, {e.patient_id for e in entries if e.patient_id and e.refusal is None})
    now = dt.datetime.now(dt.UTC)
    for entry in entries:
        if entry.refusal is not None or entry.patient_id is None:
            continue
        device = devices.get(entry.patient_id)
        if device is None:
            entry.refusal = Refused(
                409, "conflict", f"the import device {hospital_device_id(entry.patient_id)} belongs to another patient"
            )
            continue
        try:
            if not device.active:
                raise Refused(403, "forbidden", f"imports for this patient are disabled (device {device.device_id})")
            try:
                item, paths = to_reading(entry.resource)
            except Refused:
                raise
            except Exception as exc:  # noqa: BLE001 - input no check foresaw: refused, never a 500
                raise _unreadable(exc) from None
        except Refused as exc:
            entry.refusal = exc
            entry.message = Prepared(
                device, SOURCE, rejected=[RejectedItem(entry.index, exc.reason, raw_text(entry.resource))]
            )
            continue
        entry.message = ingest.prepare({"readings": [item]}, device, SOURCE, now)
        for rejected in entry.message.rejected:
            entry.refusal = pipeline_refusal(rejected.reason, paths)
            rejected.index, rejected.reason, rejected.raw = entry.index, entry.refusal.reason, raw_text(entry.resource)

    refused = any(e.refusal is not None for e in entries)
    store_rows = not (atomic and refused)
    messages = [e.message for e in entries if e.message is not None]
    if not store_rows:
        messages = [Prepared(m.device, m.source, rows=[], rejected=m.rejected) for m in messages if m.rejected]
    extra = [
        RejectedItemOf(SOURCE, None, RejectedItem(e.index, e.refusal.reason, raw_text(e.resource)))
        for e in entries
        if e.refusal is not None and e.message is None
    ]
    if messages or extra:
        answers = await ingest.store(messages, extra)
        if store_rows:  # then messages are the entries' own, in order
            carrying = [e for e in entries if e.message is not None]
            for entry, answer in zip(carrying, answers, strict=True):
                if entry.message is not None and entry.message.rows:
                    entry.status = 201 if answer.accepted else 200
    if store_rows:
        await _reading_ids(ingest, entries)
    await _audit(db, entries, actor=actor, bundle=bundle, stored=store_rows)
    return store_rows


def _unreadable(exc: Exception) -> Refused:
    return Refused(422, "invalid", f"the Observation cannot be read ({type(exc).__name__}: {str(exc)[:120]})")


async def _reading_ids(ingest: IngestService, entries: Sequence[Entry]) -> None:
    stored = [e for e in entries if e.status and e.message is not None and e.message.rows]
    if not stored:
        return
    rows = [e.message.rows[0] for e in stored if e.message is not None]
    for entry, record in zip(stored, await ingest.stored(rows), strict=True):
        if record is not None:
            entry.reading_id = record["id"]


async def _audit(db: asyncpg.Pool, entries: Sequence[Entry], *, actor: str, bundle: str | None, stored: bool) -> None:
    counts: dict[uuid.UUID, dict[str, Any]] = {}
    for entry in entries:
        if entry.patient_id is None:
            continue
        detail = counts.setdefault(
            entry.patient_id,
            {"source": SOURCE, "bundle": bundle, "stored": stored, "accepted": 0, "duplicates": 0, "refused": 0},
        )
        if entry.status == 201:
            detail["accepted"] += 1
        elif entry.status == 200:
            detail["duplicates"] += 1
        elif entry.refusal is not None:
            detail["refused"] += 1
    if not counts:
        return
    for patient_id, detail in counts.items():
        await audit.record(db, actor=actor, action="readings.import", patient_id=patient_id, detail=detail)


# --- HTTP ----------------------------------------------------------------------------------------------------------


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
            raise FhirBodyError(400, "structure", f"body is not JSON: {_diagnostics(exc.detail)}", body) from None
        if not isinstance(payload, dict) or payload.get("resourceType") != resource_type:
            got = payload.get("resourceType") if isinstance(payload, dict) else type(payload).__name__
            raise FhirBodyError(
                400, "invalid", f"expected a {resource_type} resource, got {brief(got, 40)}", body, "resourceType"
            )
    except BodyError as exc:
        await ingest.reject(SOURCE, None, f"HTTP {exc.status_code}: {_diagnostics(exc.detail)}", exc.raw)
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
    summary="Import one glucose Observation",
    openapi_extra=REQUEST_BODY,
    responses={
        201: {"description": "stored; the Observation with the reading's id, and a Location"},
        200: {"description": "already stored (duplicate); the Observation with the reading's id"},
        400: {"description": "not an Observation (OperationOutcome)"},
        404: {"description": "unknown patient, or one of a care team the key does not belong to (OperationOutcome)"},
        422: {"description": "refused by the rules (OperationOutcome)"},
        **ERRORS,
    },
)
async def post_observation(request: Request, key: HospitalKey, db: Pool, ingest: Ingest) -> Response:
    """One Observation: a glucose LOINC code, a valueQuantity in mg/dL, mmol/L or g/L (UCUM), a time
    (effectiveDateTime, effectiveInstant or effectivePeriod.start), status final, amended, corrected or
    preliminary, and a subject (Patient/<telemon id>, or an identifier holding the patient's hospital number)."""
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
    summary="Import a batch or transaction Bundle of glucose Observations",
    openapi_extra=REQUEST_BODY,
    responses={
        200: {"description": "a batch-response or transaction-response Bundle"},
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
        await ingest.reject(SOURCE, None, f"HTTP {exc.status_code}: {_diagnostics(exc.detail)}", exc.raw)
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
