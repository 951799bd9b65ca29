"""A patient's devices and the end of her monitoring, from the dashboard: pair a device and print its sheet (shown
once), revoke one, give it a new token or a new pairing code; archive the patient after the postpartum step, or
take her out of the archive. Each does what the hospital API does, through the same core functions
(``telemon.devices``, ``telemon.patients``, ``telemon.device_sheet``), and is audited the same way."""

from __future__ import annotations

import uuid

import asyncpg
import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from clinician_ui import sessions, web
from clinician_ui.enrol import CLINIC_ROLES, ogtt_text, require_clinic_role
from clinician_ui.enrol_form import LANGUAGES
from clinician_ui.sessions import Clinician
from telemon import audit, device_sheet, devices, patients
from telemon.db import Conn

router = APIRouter(include_in_schema=False)

KINDS = ("app", "meter", "cgm")  # the order of the pairing form: the phone app is the common case
KIND_LABELS = {"app": "devices.pair.app", "meter": "devices.pair.meter", "cgm": "devices.pair.cgm"}
LABEL_LENGTH = 100


async def _patient(db: Conn | asyncpg.Pool, who: Clinician, patient_id: uuid.UUID) -> patients.PatientRecord:
    found = await patients.patient_of_teams(db, patient_id, who.team_ids)
    if found is None:
        raise web.PageError(404, "error.not_found")
    return found


async def _writable(conn: Conn, who: Clinician, patient_id: uuid.UUID) -> patients.PatientRecord:
    """The patient to change a device of: one of the clinician's teams', not archived (read-only)."""
    require_clinic_role(who)
    found = await _patient(conn, who, patient_id)
    if found.archived:
        raise web.PageError(409, "error.archived")
    return found


async def _device(conn: Conn, patient_id: uuid.UUID, device_id: str) -> devices.DeviceRecord:
    found = await devices.device_of_patient(conn, patient_id, device_id)
    if found is None:
        raise web.PageError(404, "error.not_found")
    return found


def qr_svg(text: str) -> Markup:
    """A QR code of ``text`` as inline SVG, drawn on the server (no script, no image request). segno writes only
    the code's path; nothing of ``text`` reaches the markup."""
    code = segno.make(text, error="m")
    svg = code.svg_inline(scale=5, border=4, dark="#000", light="#fff", svgclass="qr", lineclass=None)
    return Markup(svg)  # noqa: S704 - segno's path data only: no text of the input is written


def qr_text(sheet: device_sheet.Sheet | None, base_url: str, code: devices.PairingCode | None) -> str | None:
    """What the sheet's QR code holds: for a CGM uploader xDrip+'s one-field Base URL (secret included); for the
    phone app or a meter gateway the companion app's address with the pairing code in the fragment, which a browser
    never sends to the server (the app exchanges it for its own token)."""
    if sheet is not None and sheet.nightscout is not None:
        return sheet.nightscout.xdrip_url
    if code is not None:
        return f"{base_url.rstrip('/')}/app#pair={code.code}"
    return None


def _sheet_page(
    request: Request,
    who: Clinician,
    patient: patients.PatientRecord,
    kind: str,
    device_id: str,
    *,
    token: str | None,
    code: devices.PairingCode | None,
    note: str | None = None,
) -> HTMLResponse:
    """The pairing sheet, shown once (the token is not stored; the page is never cached)."""
    services = request.app.state.services
    base_url, mqtt_url = device_sheet.reached_at(services.settings, str(request.base_url), services.mqtt_url)
    sheet = None
    if token is not None:
        sheet = device_sheet.sheet(kind, device_id, token, base_url=base_url, mqtt_url=mqtt_url)
    qr = qr_text(sheet, base_url, code)
    context = {
        "patient": patient,
        "kind": kind,
        "device_id": device_id,
        "sheet": sheet,
        "code": code,
        "qr": qr_svg(qr) if qr else None,
        "note": note,
        "kind_labels": KIND_LABELS,
    }
    return web.render(request, "pairing_sheet.html", context, who=who)


@router.get("/patients/{patient_id}/devices")
async def devices_page(
    patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)
) -> HTMLResponse:
    async with web.connection(request) as db:
        patient = await _patient(db, who, patient_id)
        found = await devices.devices_of_patient(db, patient_id)
        details = await patients.enrolment_details(db, patient_id)
        await audit.record(db, actor=who.actor, action="devices.read", patient_id=patient_id)
    context = {
        "patient": patient,
        "devices": found,
        "details": details,
        "ogtt": ogtt_text(details, who.language),
        "kinds": KINDS,
        "kind_labels": KIND_LABELS,
        "languages": LANGUAGES,
        "can_act": who.role in CLINIC_ROLES,
        "label_length": LABEL_LENGTH,
    }
    return web.render(request, "devices.html", context, who=who)


@router.post("/patients/{patient_id}/devices", response_model=None)
async def pair(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    kind, label = web.field(form, "kind"), web.field(form, "label")
    if kind not in KINDS or len(label) > LABEL_LENGTH or any(not c.isprintable() for c in label):
        raise web.PageError(422, "error.invalid", detail=kind if kind not in KINDS else label[:20])
    async with web.pool(request).acquire() as conn, conn.transaction():
        patient = await _writable(conn, who, patient_id)
        new = await devices.add_device(conn, patient_id=patient_id, kind=kind, label=label)
        code = await devices.new_pairing_code(conn, patient_id=patient_id, device_id=new.device_id, actor=who.actor)
        detail = {"device_id": new.device_id, "kind": kind}
        await audit.record(conn, actor=who.actor, action="device.add", patient_id=patient_id, detail=detail)
    return _sheet_page(request, who, patient, kind, new.device_id, token=new.token, code=code)


@router.post("/patients/{patient_id}/devices/{device_id}/rotate", response_model=None)
async def rotate(
    patient_id: uuid.UUID, device_id: str, request: Request, who: Clinician = Depends(web.clinician)
) -> Response:
    """A new token: the old one is refused from the next request (device authentication reads the database)."""
    await web.form_of(request, who)
    async with web.pool(request).acquire() as conn, conn.transaction():
        patient = await _writable(conn, who, patient_id)
        found = await _device(conn, patient_id, device_id)
        new = await devices.rotate_token(conn, device_id)
        if new is None:
            raise web.PageError(409, "devices.already_revoked")
        detail = {"device_id": device_id}
        await audit.record(conn, actor=who.actor, action="device.rotate", patient_id=patient_id, detail=detail)
    return _sheet_page(request, who, patient, found.kind, device_id, token=new.token, code=None, note="sheet.rotated")


@router.post("/patients/{patient_id}/devices/{device_id}/pairing-code", response_model=None)
async def pairing_code(
    patient_id: uuid.UUID, device_id: str, request: Request, who: Clinician = Depends(web.clinician)
) -> Response:
    await web.form_of(request, who)
    async with web.pool(request).acquire() as conn, conn.transaction():
        patient = await _writable(conn, who, patient_id)
        found = await _device(conn, patient_id, device_id)
        if not found.active:
            raise web.PageError(409, "devices.already_revoked")
        code = await devices.new_pairing_code(conn, patient_id=patient_id, device_id=device_id, actor=who.actor)
        detail = {"device_id": device_id}
        await audit.record(conn, actor=who.actor, action="device.pairing_code", patient_id=patient_id, detail=detail)
    return _sheet_page(request, who, patient, found.kind, device_id, token=None, code=code, note="sheet.code_only")


@router.post("/patients/{patient_id}/devices/{device_id}/revoke", response_model=None)
async def revoke(
    patient_id: uuid.UUID, device_id: str, request: Request, who: Clinician = Depends(web.clinician)
) -> Response:
    await web.form_of(request, who)
    db = web.pool(request)
    async with db.acquire() as conn, conn.transaction():
        require_clinic_role(who)
        await _patient(conn, who, patient_id)
        await _device(conn, patient_id, device_id)
        revoked = await devices.revoke_device(conn, device_id, actor=who.actor)
    await sessions.flash(db, who, "devices.revoked_flash" if revoked else "devices.already_revoked")
    return web.redirect(f"/patients/{patient_id}/devices")


@router.post("/patients/{patient_id}/archive", response_model=None)
async def archive(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    """End the monitoring: read-only, out of the triage and the scheduled passes, devices revoked, open alerts
    resolved (``telemon.patients.archive_patient``); archiving twice changes nothing."""
    await web.form_of(request, who)
    db = web.pool(request)
    async with db.acquire() as conn, conn.transaction():
        require_clinic_role(who)
        await _patient(conn, who, patient_id)
        archived = await patients.archive_patient(conn, patient_id, actor=who.actor)
    await sessions.flash(db, who, "monitoring.archived_flash" if archived else "error.archived")
    return web.redirect(f"/patients/{patient_id}/devices")


@router.post("/patients/{patient_id}/unarchive", response_model=None)
async def unarchive(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    await web.form_of(request, who)
    db = web.pool(request)
    async with db.acquire() as conn, conn.transaction():
        require_clinic_role(who)
        await _patient(conn, who, patient_id)
        restored = await patients.unarchive_patient(conn, patient_id, actor=who.actor)
    await sessions.flash(db, who, "monitoring.unarchived_flash" if restored else "monitoring.not_archived")
    return web.redirect(f"/patients/{patient_id}/devices")
