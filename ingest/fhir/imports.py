"""Importing Observations: each entry's patient among the API key's care teams, the patient's import device, the
translation into a wire-format item, and one call into the ingest service that stores the readings, records the
refusals and writes the audit rows in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from ingest.fhir import queries
from ingest.fhir.observations import Subject, check_observation, pipeline_refusal, subject_of, to_item
from ingest.fhir.outcome import Refused
from ingest.readings import DeviceContext, RejectedItem, Rejection, Submission, raw_text
from ingest.service import IngestService, Receipt, Refusal, devices_by_ids
from telemon import audit
from telemon.broker_passwords import mosquitto_password_hash
from telemon.db import Conn
from telemon.security import new_secret, nightscout_secret, secret_hash

SOURCE = "fhir"


@dataclass
class Entry:
    position: int
    resource: Any
    index: int | None  # recorded in ingest_rejections: the entry position, None for a single POST
    refusal: Refused | None = None
    patient_id: uuid.UUID | None = None
    subject: Subject | None = None
    status: int = 0  # 201 stored, 200 already stored; 0 when refused or not stored
    # the stored Observation's id: a glucose reading's id, or ``m<id>`` for a measurement of another kind (the
    # read side's ids, ``records.fhir_resources``)
    reading_id: int | str | None = None


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
    """Hand the entries to the ingest service as one call: their readings stored in one transaction with the
    refusals and the audit rows; with ``atomic``, no reading stored if any entry is refused. Sets each entry's
    status, reading id or refusal; returns whether readings were stored."""
    for entry in entries:
        if entry.refusal is None:
            try:
                entry.subject = subject_of(check_observation(entry.resource))
            except Refused as exc:
                entry.refusal = exc
            except Exception as exc:  # noqa: BLE001 - input no check foresaw: refused, never a 500
                entry.refusal = unreadable(exc)
    await resolve_patients(db, entries, team_ids)
    devices = await hospital_devices(db, {e.patient_id for e in entries if e.patient_id and e.refusal is None})
    submissions: list[Submission] = []
    carrying: list[tuple[Entry, dict[str, str]]] = []  # the entry of each submission, and its elements
    for entry in entries:
        if entry.refusal is not None or entry.patient_id is None:
            continue
        device = devices.get(entry.patient_id)
        if device is None:
            entry.refusal = Refused(
                409, "conflict", f"the import device {hospital_device_id(entry.patient_id)} belongs to another patient"
            )
            continue
        item, paths = _translated(entry, device)
        submissions.append(
            Submission.translated(device, SOURCE, [item], sent=[entry.resource], indices=[entry.index], origins=[paths])
        )
        carrying.append((entry, paths))
    submitted = {id(entry) for entry, _ in carrying}
    refusals = [  # the entries refused before they reached a device
        Refusal(SOURCE, None, RejectedItem(e.index, e.refusal.reason, raw_text(e.resource)))
        for e in entries
        if e.refusal is not None and id(e) not in submitted
    ]
    stored = False

    async def settle(conn: Conn, receipts: list[Receipt]) -> None:
        """In the import's transaction: each entry's outcome from its receipt, then the audit rows."""
        nonlocal stored
        for (entry, paths), receipt in zip(carrying, receipts, strict=True):
            if receipt.rejected and entry.refusal is None:
                entry.refusal = pipeline_refusal(receipt.rejected[0]["reason"], paths)
        stored = not (atomic and any(e.refusal is not None for e in entries))
        for (entry, _), receipt in zip(carrying, receipts, strict=True):
            if receipt.accepted or receipt.duplicates:
                entry.status = 201 if receipt.accepted else 200
                record = receipt.readings.get(0)
                measured = receipt.measurements.get(0)
                if record is not None:
                    entry.reading_id = record["id"]
                elif measured is not None:
                    entry.reading_id = f"m{measured['id']}"
        await _audit(conn, entries, actor=actor, bundle=bundle, stored=stored)

    await ingest.receive_all(submissions, refusals, all_or_nothing=atomic, with_readings=True, within=settle)
    return stored


def _translated(entry: Entry, device: DeviceContext) -> tuple[dict[str, Any] | Rejection, dict[str, str]]:
    """The entry's wire-format item and the element each of its fields came from; or, for an entry that is no
    reading (or one of a disabled import device), its refusal, recorded under the patient's import device."""
    try:
        if not device.active:
            raise Refused(403, "forbidden", f"imports for this patient are disabled (device {device.device_id})")
        try:
            return to_item(entry.resource)
        except Refused:
            raise
        except Exception as exc:  # noqa: BLE001 - input no check foresaw: refused, never a 500
            raise unreadable(exc) from None
    except Refused as exc:
        entry.refusal = exc
        return Rejection(exc.reason), {}


def unreadable(exc: Exception) -> Refused:
    return Refused(422, "invalid", f"the Observation cannot be read ({type(exc).__name__}: {str(exc)[:120]})")


async def _audit(conn: Conn, entries: Sequence[Entry], *, actor: str, bundle: str | None, stored: bool) -> None:
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
        await audit.record(conn, actor=actor, action="readings.import", patient_id=patient_id, detail=detail)
