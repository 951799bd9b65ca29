"""The clinic's work behind the routes: enrolment (once per hospital number), the checks of a pregnancy's dates,
the devices list, the credentials sheet a device is given, and the exchange of pairing codes under a per-address
limit. Services never commit: the route's transaction holds each change with its audit row."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, cast

from fastapi.exceptions import RequestValidationError

from alerts.profiles import LONGEST_POSTPARTUM
from clinic import queries
from clinic.schemas import Credentials, DeviceOut, Kind, PatientIn, PatientOut
from telemon import device_sheet, devices, patients
from telemon.api_keys import ApiKey
from telemon.db import Conn
from telemon.patients import PatientRecord

# Past the due date: the longest postpartum glucose test window of the profiles (NICE NG3 §1.6: 6-13 weeks after
# the birth), after which telemon has nothing left to follow.

# Wrong pairing codes one address may send per window before it waits for the next one. A person mistypes a code
# once or twice; a whole ward behind one NAT pairs a few phones an hour. With 2**60 possible codes, 10 tries every
# 15 minutes make guessing hopeless.
PAIRING_FAILURES_PER_WINDOW = 10
PAIRING_WINDOW_SECONDS = 15 * 60


def field_error(field: str, message: str, where: str = "body") -> RequestValidationError:
    """A 422 in the framework's own shape, naming the field, for checks a model cannot make alone."""
    return RequestValidationError([{"loc": (where, field), "msg": message, "type": "value_error"}])


def actor(key: ApiKey) -> str:
    return f"api_key:{key.id}"


def by_key(key: ApiKey) -> dict[str, Any]:
    """What the audit row adds about the key that acted: its label, the name its administrator gave it."""
    return {"api_key": key.label}


def check_due_date(due_date: dt.date, time_zone: str) -> None:
    """The core's due-date rule (the dashboard's enrolment applies the same), answered as a 422 naming the field."""
    try:
        patients.check_due_date(due_date, time_zone, postpartum_days=LONGEST_POSTPARTUM.postpartum_end_days)
    except patients.FieldError as exc:
        raise field_error(exc.field, str(exc)) from None


def check_diagnosis_date(diagnosis: dt.date | None, due_date: dt.date, time_zone: str) -> None:
    try:
        patients.check_diagnosis_date(diagnosis, due_date, time_zone)
    except patients.FieldError as exc:
        raise field_error(exc.field, str(exc)) from None


def team_for(body: PatientIn, key: ApiKey) -> uuid.UUID:
    """The care team a new patient joins: the key's only team, or the one the body names among the key's."""
    if body.team_id is not None:
        if body.team_id not in key.team_ids:
            raise field_error("team_id", f"{body.team_id} is not a care team of this API key")
        return body.team_id
    if len(key.team_ids) > 1:
        raise field_error("team_id", "this API key acts for several care teams: name the patient's")
    return key.team_ids[0]


# The enrolment's fields and the record's names for them.
RECORD_NAMES = {
    "external_id": "external_id",
    "name": "display_name",
    "timezone": "time_zone",
    "due_date": "due_date",
    "diagnosis_date": "diagnosis_date",
    "profile": "profile",
    "treatment": "treatment",
    "readings_per_day": "readings_per_day",
    "height_cm": "height_cm",
    "pre_pregnancy_weight_kg": "pre_pregnancy_weight_kg",
}


def differences(body: PatientIn, patient: PatientRecord) -> list[str]:
    """The fields an enrolment gave that the enrolled patient says otherwise; the fields it left out to their
    defaults are not compared (a repeat may say less)."""
    given = body.model_fields_set & set(RECORD_NAMES)
    return sorted(f for f in given if getattr(body, f) != getattr(patient, RECORD_NAMES[f]))


def patient_out(patient: PatientRecord) -> PatientOut:
    record = dataclasses.asdict(patient)
    return PatientOut(
        **{out: record[name] for out, name in RECORD_NAMES.items()},
        id=patient.id,
        team_id=patient.team_id,
        delivery_date=patient.delivery_date,
        archived=patient.archived,
        archived_at=patient.archived_at,
        archived_by=patient.archived_by,
        created_at=patient.created_at,
        updated_at=patient.updated_at,
    )


async def list_devices(conn: Conn, patient_id: uuid.UUID) -> list[DeviceOut]:
    return [
        DeviceOut(
            device_id=d.id,
            kind=cast(Kind, d.kind),
            label=d.label,
            active=d.active,
            created_at=d.created_at,
            last_seen_at=d.last_seen_at,
            revoked_at=d.revoked_at,
            readings_7d=d.readings_7d,
        )
        for d in await devices.devices_of_patient(conn, patient_id)
    ]


@dataclass(frozen=True)
class Endpoints:
    """Where devices reach this service: the HTTP base URL and the MQTT broker's address (None without one)."""

    base_url: str
    mqtt_url: str | None


def credentials(kind: str, device_id: str, token: str, where: Endpoints) -> Credentials:
    """The sheet of a device (``telemon.device_sheet``, which the dashboard prints too) as the API answers it."""
    found = device_sheet.sheet(kind, device_id, token, base_url=where.base_url, mqtt_url=where.mqtt_url)
    return Credentials.model_validate(dataclasses.asdict(found))


async def pairing_wait(conn: Conn, address: str) -> int | None:
    """Seconds the address must wait before its next pairing attempt, or None when it may try now."""
    row = await conn.fetchrow(queries.PAIRING_FAILURES, address, PAIRING_WINDOW_SECONDS)
    assert row is not None
    if row["failures"] < PAIRING_FAILURES_PER_WINDOW:
        return None
    return max(1, int(row["seconds_left"]))


async def count_pairing_failure(conn: Conn, address: str) -> None:
    await conn.execute(queries.COUNT_PAIRING_FAILURE, address, PAIRING_WINDOW_SECONDS)
