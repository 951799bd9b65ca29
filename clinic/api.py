"""The clinic's hospital API: patients (enrol, list, read, change, archive) and their devices (pair, list, revoke,
rotate), for API keys of the patients' care teams; and the exchange of a pairing code for a device token, for the
phone app, without a key.

A key reads and changes the patients of its care teams only: another team's patient is answered 404, exactly as a
missing one. Enrolling and every device route need ``patients:write``, reading ``patients:read``. Every change is
audited as the key (``api_key:<id>``, with the key's label), every read of patients too, one row per request."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from clinic import queries, service
from clinic.errors import ClinicRoute
from clinic.schemas import (
    Credentials,
    DeviceIn,
    DeviceOut,
    DevicePage,
    NewDeviceOut,
    PairingCodeOut,
    PairingIn,
    PatientIn,
    PatientOut,
    PatientPage,
    PatientPatch,
)
from clinic.service import Endpoints, actor, by_key, field_error, patient_out
from telemon import audit, device_sheet, devices, patients, treatment
from telemon.api_keys import ApiKey
from telemon.auth import api_key, pool
from telemon.db import Conn
from telemon.pagination import cursor_instant, decode_cursor, envelope, limit_param
from telemon.settings import SettingsError

router = APIRouter(prefix="/api/v1", tags=["patients"], route_class=ClinicRoute)

Reader = Annotated[ApiKey, Depends(api_key("patients:read"))]
Writer = Annotated[ApiKey, Depends(api_key("patients:write"))]
Db = Annotated[asyncpg.Pool, Depends(pool)]
PatientId = Annotated[uuid.UUID, Path(description="The patient's telemon id.")]
DeviceId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]{3,64}$", description="The device's id.")]

NO_PATIENT: dict[int | str, dict[str, Any]] = {404: {"description": "no such patient among the key's care teams"}}
NO_DEVICE: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such patient among the key's care teams, or no such device of hers"}
}
ARCHIVED: dict[int | str, dict[str, Any]] = {
    409: {"description": "the patient is archived (read-only): un-archive her first"}
}


def endpoints(request: Request) -> Endpoints:
    """Where devices reach this service and publish to (:func:`telemon.device_sheet.reached_at`)."""
    services = request.app.state.services
    return Endpoints(*device_sheet.reached_at(services.settings, str(request.base_url), services.mqtt_url))


async def _patient(conn: Conn, patient_id: uuid.UUID, key: ApiKey) -> patients.PatientRecord:
    found = await patients.patient_of_teams(conn, patient_id, key.team_ids)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no patient {patient_id}")
    return found


async def _writable(conn: Conn, patient_id: uuid.UUID, key: ApiKey) -> patients.PatientRecord:
    found = await _patient(conn, patient_id, key)
    if found.archived:
        raise HTTPException(
            status_code=409, detail=f"patient {patient_id} is archived and read-only; un-archive her first"
        )
    return found


async def _device(conn: Conn, patient_id: uuid.UUID, device_id: str) -> devices.DeviceRecord:
    found = await devices.device_of_patient(conn, patient_id, device_id)
    if found is None:
        raise HTTPException(status_code=404, detail=f"no device {device_id} of patient {patient_id}")
    return found


@router.post(
    "/patients",
    status_code=201,
    summary="Enrol a patient (once per hospital number)",
    responses={
        200: {"model": PatientOut, "description": "the team already had this patient, with the same values"},
        409: {"description": "the team has a patient with this hospital number and other values; detail names her"},
    },
)
async def enrol(body: PatientIn, response: Response, key: Writer, db: Db) -> PatientOut:
    """Enrols a patient in the key's care team (``team_id`` when the key has several). Sending the same enrolment
    again answers the same patient with 200 instead of 201; the same hospital number with other values is a 409
    naming the patient who has it."""
    team_id = service.team_for(body, key)
    service.check_due_date(body.due_date, body.timezone)
    service.check_diagnosis_date(body.diagnosis_date, body.due_date, body.timezone)
    async with db.acquire() as conn, conn.transaction():
        patient, created = await patients.create_patient_once(
            conn,
            team_id=team_id,
            external_id=body.external_id,
            display_name=body.name,
            time_zone=body.timezone,
            due_date=body.due_date,
            profile=body.profile,
            treatment=body.treatment,
            readings_per_day=body.readings_per_day,
            diagnosis_date=body.diagnosis_date,
            height_cm=body.height_cm,
            pre_pregnancy_weight_kg=body.pre_pregnancy_weight_kg,
        )
        if created:
            await audit.record(
                conn, actor=actor(key), action="patient.create", patient_id=patient.id, detail=by_key(key)
            )
        else:
            differs = service.differences(body, patient)
            if differs:
                raise HTTPException(
                    status_code=409,
                    detail=f"external_id: the team already has patient {patient.id} with hospital number"
                    f" {patient.external_id!r}, whose {', '.join(differs)} differ; change her with PATCH"
                    f" /api/v1/patients/{patient.id}",
                )
            await audit.record(conn, actor=actor(key), action="patient.read", patient_id=patient.id, detail=by_key(key))
            response.status_code = 200
    return patient_out(patient)


@router.get("/patients", summary="The patients of the key's care teams, by last change", response_model=PatientPage)
async def list_patients(
    key: Reader,
    db: Db,
    status: Annotated[
        Literal["active", "archived", "all"], Query(description="active, archived, or all (the default)")
    ] = "all",
    updated_since: Annotated[
        str | None,
        Query(max_length=64, description="only the patients changed at or after this ISO 8601 instant (with offset)"),
    ] = None,
    limit: int = Depends(limit_param),
    cursor: str | None = Query(None, max_length=512),
) -> dict[str, Any]:
    since = None
    if updated_since is not None:
        try:
            since = cursor_instant(updated_since)
        except (ValueError, TypeError, OverflowError):
            raise field_error(
                "updated_since", "an ISO 8601 instant with its offset, such as 2026-11-01T06:00:00Z", "query"
            ) from None
    position = decode_cursor(cursor, cursor_instant, _cursor_uuid) or [_EPOCH, uuid.UUID(int=0)]
    rows = await db.fetch(queries.LIST_PATIENTS, list(key.team_ids), status, since, *position, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    shown = [patient_out(patients.PatientRecord(**dict(r))) for r in rows]
    await audit.record(
        db,
        actor=actor(key),
        action="patients.read",
        patient_ids=[p.id for p in shown],
        detail={**by_key(key), "count": len(shown)},
    )
    last = shown[-1] if more else None
    return envelope(
        [p.model_dump(mode="json") for p in shown],
        [last.updated_at.isoformat(), str(last.id)] if last is not None else None,
    )


def _cursor_uuid(value: Any) -> uuid.UUID:
    if type(value) is not str:
        raise TypeError("not a string")
    return uuid.UUID(value)


_EPOCH = cursor_instant("1970-01-01T00:00:00+00:00")


@router.get("/patients/{patient_id}", summary="A patient", responses=NO_PATIENT)
async def get_patient(patient_id: PatientId, key: Reader, db: Db) -> PatientOut:
    async with db.acquire() as conn:
        found = await _patient(conn, patient_id, key)
        await audit.record(conn, actor=actor(key), action="patient.read", patient_id=patient_id, detail=by_key(key))
    return patient_out(found)


@router.patch("/patients/{patient_id}", summary="Change a patient's record", responses={**NO_PATIENT, **ARCHIVED})
async def patch_patient(patient_id: PatientId, body: PatientPatch, key: Writer, db: Db) -> PatientOut:
    """Changes the fields given; the others keep their values. A new due date or time zone is checked as at
    enrolment. An archived patient is read-only (409)."""
    given = body.model_fields_set
    async with db.acquire() as conn, conn.transaction():
        current = await _writable(conn, patient_id, key)
        zone = body.timezone or current.time_zone
        due = body.due_date or current.due_date
        if given & {"due_date", "timezone"}:
            service.check_due_date(due, zone)
        if given & {"diagnosis_date", "due_date", "timezone"}:
            diagnosis = body.diagnosis_date if "diagnosis_date" in given else current.diagnosis_date
            service.check_diagnosis_date(diagnosis, due, zone)
        changes = {service.RECORD_NAMES[f]: getattr(body, f) for f in given}
        if "treatment" in changes:
            try:
                await treatment.check_treatment_change(conn, patient_id, changes["treatment"])
            except patients.FieldError as exc:  # use PUT /api/v1/patients/{id}/treatment
                raise HTTPException(status_code=409, detail=str(exc)) from None
        try:
            after = await patients.update_patient(conn, patient_id, changes, actor=actor(key), detail=by_key(key))
        except SettingsError as exc:  # the hospital number is another patient's
            raise HTTPException(status_code=409, detail=str(exc)) from None
    assert after is not None  # locked by _writable's transaction
    return patient_out(after)


@router.post("/patients/{patient_id}/archive", summary="End a patient's monitoring", responses=NO_PATIENT)
async def archive(patient_id: PatientId, key: Writer, db: Db) -> PatientOut:
    """After the delivery and the postpartum step: the patient becomes read-only, leaves the triage and the
    scheduled passes, her devices are revoked and her open alerts resolved (reason "archived"). She stays
    readable and exportable. Archiving an archived patient changes nothing."""
    async with db.acquire() as conn, conn.transaction():
        found = await _patient(conn, patient_id, key)
        done = await patients.archive_patient(conn, patient_id, actor=actor(key), detail=by_key(key))
    return patient_out(done or found)


@router.post("/patients/{patient_id}/unarchive", summary="Resume a patient's monitoring", responses=NO_PATIENT)
async def unarchive(patient_id: PatientId, key: Writer, db: Db) -> PatientOut:
    """Takes her out of the archive, audited; devices revoked by the archive stay revoked (pair new ones)."""
    async with db.acquire() as conn, conn.transaction():
        found = await _patient(conn, patient_id, key)
        done = await patients.unarchive_patient(conn, patient_id, actor=actor(key), detail=by_key(key))
    return patient_out(done or found)


@router.post(
    "/patients/{patient_id}/devices",
    status_code=201,
    summary="Pair a device: its token (shown once), a pairing code, and where to send",
    responses={**NO_PATIENT, **ARCHIVED},
)
async def add_device(patient_id: PatientId, body: DeviceIn, request: Request, key: Writer, db: Db) -> NewDeviceOut:
    """A meter (or its gateway) or the phone app gets the HTTP and MQTT endpoints, a CGM uploader Nightscout's URL
    and API secret. The pairing code (valid 24 h, used once) lets the phone app fetch its own token through
    ``POST /api/v1/pairing``; exchanging it replaces the token shown here."""
    async with db.acquire() as conn, conn.transaction():
        await _writable(conn, patient_id, key)
        new = await devices.add_device(conn, patient_id=patient_id, kind=body.kind, label=body.label)
        code = await devices.new_pairing_code(conn, patient_id=patient_id, device_id=new.device_id, actor=actor(key))
        await audit.record(
            conn,
            actor=actor(key),
            action="device.add",
            patient_id=patient_id,
            detail={**by_key(key), "device_id": new.device_id, "kind": body.kind},
        )
    sheet = service.credentials(body.kind, new.device_id, new.token, endpoints(request))
    return NewDeviceOut(
        **sheet.model_dump(), label=body.label, pairing_code=code.code, pairing_code_expires_at=code.expires_at
    )


@router.get(
    "/patients/{patient_id}/devices",
    summary="A patient's devices: last seen, readings in 7 days, active",
    responses=NO_PATIENT,
    response_model=DevicePage,
)
async def list_devices(patient_id: PatientId, key: Reader, db: Db) -> dict[str, Any]:
    async with db.acquire() as conn:
        await _patient(conn, patient_id, key)
        found = await service.list_devices(conn, patient_id)
        await audit.record(
            conn,
            actor=actor(key),
            action="devices.read",
            patient_id=patient_id,
            detail={**by_key(key), "count": len(found)},
        )
    return envelope([d.model_dump(mode="json") for d in found], None)


def _device_out(device: devices.DeviceRecord, readings_7d: int = 0) -> DeviceOut:
    return DeviceOut(
        device_id=device.id,
        kind=device.kind,  # type: ignore[arg-type]
        label=device.label,
        active=device.active,
        created_at=device.created_at,
        last_seen_at=device.last_seen_at,
        revoked_at=device.revoked_at,
        readings_7d=readings_7d,
    )


@router.delete(
    "/patients/{patient_id}/devices/{device_id}",
    summary="Revoke a device: its token stops working at once",
    responses=NO_DEVICE,
)
async def revoke_device(patient_id: PatientId, device_id: DeviceId, key: Writer, db: Db) -> DeviceOut:
    """The token, the Nightscout secret and the open pairing codes of the device are refused from the next
    request on; revoking a revoked device changes nothing."""
    async with db.acquire() as conn, conn.transaction():
        await _patient(conn, patient_id, key)
        found = await _device(conn, patient_id, device_id)
        revoked = await devices.revoke_device(conn, device_id, actor=actor(key), detail=by_key(key))
        current = revoked or found
        counted = [d for d in await service.list_devices(conn, patient_id) if d.device_id == device_id]
    return counted[0] if counted else _device_out(current)


@router.post(
    "/patients/{patient_id}/devices/{device_id}/rotate",
    summary="A new token for a device: the old one stops working at once",
    responses={**NO_DEVICE, 409: {"description": "the device is revoked, or the patient archived"}},
)
async def rotate(patient_id: PatientId, device_id: DeviceId, request: Request, key: Writer, db: Db) -> Credentials:
    async with db.acquire() as conn, conn.transaction():
        await _writable(conn, patient_id, key)
        found = await _device(conn, patient_id, device_id)
        new = await devices.rotate_token(conn, device_id)
        if new is None:
            raise HTTPException(status_code=409, detail=f"device {device_id} is revoked; pair a new one")
        await audit.record(
            conn,
            actor=actor(key),
            action="device.rotate",
            patient_id=patient_id,
            detail={**by_key(key), "device_id": device_id},
        )
    return service.credentials(found.kind, device_id, new.token, endpoints(request))


@router.post(
    "/patients/{patient_id}/devices/{device_id}/pairing-code",
    status_code=201,
    summary="A new pairing code for a device (the earlier ones close)",
    responses={**NO_DEVICE, 409: {"description": "the device is revoked, or the patient archived"}},
)
async def new_pairing_code(patient_id: PatientId, device_id: DeviceId, key: Writer, db: Db) -> PairingCodeOut:
    async with db.acquire() as conn, conn.transaction():
        await _writable(conn, patient_id, key)
        found = await _device(conn, patient_id, device_id)
        if not found.active:
            raise HTTPException(status_code=409, detail=f"device {device_id} is revoked; pair a new one")
        code = await devices.new_pairing_code(conn, patient_id=patient_id, device_id=device_id, actor=actor(key))
        await audit.record(
            conn,
            actor=actor(key),
            action="device.pairing_code",
            patient_id=patient_id,
            detail={**by_key(key), "device_id": device_id},
        )
    return PairingCodeOut(device_id=device_id, pairing_code=code.code, pairing_code_expires_at=code.expires_at)


PAIRING_REFUSED_WAIT = "too many wrong pairing codes from this address; try again later"
PAIRING_REFUSED = (
    "this pairing code is unknown, used, expired or locked after too many wrong tries; ask the care team for a new one"
)


@router.post(
    "/pairing",
    summary="Exchange a pairing code for the device's token (the phone app; no API key)",
    openapi_extra={"security": [{}]},
    responses={
        401: {"description": "the code is unknown, used, expired, or locked after 5 wrong tries"},
        429: {"description": "too many wrong codes from this address: wait Retry-After seconds"},
    },
)
async def pair(body: PairingIn, request: Request, db: Db) -> Credentials:
    """The phone app sends the code the patient typed or scanned and receives its device's token and where to send;
    the token shown when the device was paired stops working. A code works once and for 24 hours; 5 wrong tries
    lock it; an address that sent 10 wrong codes waits until the end of the quarter of an hour."""
    address = request.client.host if request.client else "unknown"
    async with db.acquire() as conn:
        wait = await service.pairing_wait(conn, address)
        if wait is not None:
            raise HTTPException(status_code=429, detail=PAIRING_REFUSED_WAIT, headers={"Retry-After": str(wait)})
        letters = devices.normalise_pairing_code(body.code)
        if letters is None:
            await service.count_pairing_failure(conn, address)
            raise field_error("code", "a pairing code is 12 letters and digits, such as 7KQ2-M4XH-9RTA")
        async with conn.transaction():
            paired = await devices.redeem_pairing_code(conn, letters)
            if paired.device is None:
                await service.count_pairing_failure(conn, address)
            if paired.patient_id is not None:
                device_id = paired.device.device_id if paired.device else None
                await audit.record(
                    conn,
                    actor=f"device:{device_id}" if device_id else f"address:{address}",
                    action="device.pair" if paired.device else "device.pairing_refused",
                    patient_id=paired.patient_id,
                    detail={"address": address, "device_id": device_id or paired.device_id, "refused": paired.refused},
                )
    if paired.device is None:
        raise HTTPException(status_code=401, detail=PAIRING_REFUSED)
    return service.credentials(paired.kind, paired.device.device_id, paired.device.token, endpoints(request))
