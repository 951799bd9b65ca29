"""What the simulator and the replay create in telemon's database, with telemon's own functions (a care team,
patients, their devices), and the state file that keeps the device tokens: a token is shown once, so a later
run can only send as the same device if it kept it. The file holds secrets: it is written with mode 0600."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from telemon import audit, devices, patients, teams, treatment
from telemon.db import Conn
from telemon.security import secret_hash
from telemon.settings import SettingsError
from tools.simulator.measures import Care

ACTOR = "simulator"

PATIENT_IN_TEAM = "SELECT id FROM patients WHERE team_id = $1 AND external_id = $2"
DEVICE_USABLE = """
SELECT 1 FROM devices d JOIN patients p ON p.id = d.patient_id
WHERE d.id = $1 AND d.token_hash = $2 AND d.active AND p.id = $3 AND p.team_id = $4
"""


@dataclass(frozen=True)
class DeviceRecord:
    external_id: str
    patient_id: str
    device_id: str
    token: str
    kind: str

    @property
    def patient_uuid(self) -> uuid.UUID:
        return uuid.UUID(self.patient_id)


def load_state(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError(f"--state: cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError:
        raise SettingsError(f"--state: {path} is not a simulator state file (not JSON); remove it") from None
    if not isinstance(data, dict):
        raise SettingsError(f"--state: {path} is not a simulator state file; remove it")
    return data


def save_state(path: Path, data: dict[str, Any]) -> None:
    """Atomically, readable by its owner only (it holds device tokens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, default=str)
    os.replace(temporary, path)


def device_records(data: dict[str, Any]) -> dict[str, DeviceRecord]:
    found: dict[str, DeviceRecord] = {}
    for external_id, fields in (data.get("devices") or {}).items():
        with contextlib.suppress(TypeError, KeyError):
            found[external_id] = DeviceRecord(**fields)
    return found


def records_json(records: dict[str, DeviceRecord]) -> dict[str, Any]:
    return {key: asdict(record) for key, record in records.items()}


async def ensure_team(conn: Conn, name: str) -> uuid.UUID:
    try:
        return (await teams.find_team(conn, name)).id
    except SettingsError:
        team_id = await teams.create_team(conn, name)
        await audit.record(conn, actor=ACTOR, action="team.create", detail={"team_id": str(team_id)})
        return team_id


async def ensure_device(
    conn: Conn,
    team_id: uuid.UUID,
    known: DeviceRecord | None,
    *,
    external_id: str,
    display_name: str,
    time_zone: str,
    due_date: dt.date,
    kind: str,
    label: str,
    profile: str = "FR",
    treatment: str = "diet",
    readings_per_day: int = 4,
    diagnosis_date: dt.date | None = None,
) -> tuple[DeviceRecord, bool]:
    """The patient ``external_id`` of the team and a device of hers whose token we hold: the known one when it
    is still there, else a new device (for the existing patient, or a new one). True when something was made."""
    if known is not None and await conn.fetchval(
        DEVICE_USABLE, known.device_id, secret_hash(known.token), known.patient_uuid, team_id
    ):
        return known, False
    patient_id = await conn.fetchval(PATIENT_IN_TEAM, team_id, external_id)
    if patient_id is None:
        patient_id = await patients.create_patient(
            conn,
            team_id=team_id,
            external_id=external_id,
            display_name=display_name,
            time_zone=time_zone,
            due_date=due_date,
            profile=profile,
            treatment=treatment,
            readings_per_day=readings_per_day,
            diagnosis_date=diagnosis_date,
        )
        await audit.record(conn, actor=ACTOR, action="patient.create", patient_id=patient_id)
    new = await devices.add_device(conn, patient_id=patient_id, kind=kind, label=label)
    await audit.record(
        conn, actor=ACTOR, action="device.add", patient_id=patient_id, detail={"device_id": new.device_id}
    )
    return DeviceRecord(external_id, str(patient_id), new.device_id, new.token, kind), True


async def record_delivery(conn: Conn, patient_id: uuid.UUID, date: dt.date) -> bool:
    """The midwife records the delivery, once (a re-run of the simulator leaves it as it is)."""
    patient = await patients.get_patient(conn, patient_id)
    if patient is None or patient.delivery_date is not None:
        return False
    await patients.record_delivery(conn, patient_id, date, actor=ACTOR)
    return True


def treatment_plans(care: Care) -> list[treatment.Plan]:
    """The versions of the plan a patient of ``care`` follows, oldest first: one for diet and metformin; for
    insulin, the starting dose and the dose raised since (the last is in force)."""
    if care.regimen == "diet":
        return [treatment.Plan("diet", note="Régime diabète gestationnel")]
    if care.regimen == "metformin":
        return [treatment.Plan("metformin", metformin_mg=care.metformin_mg, metformin_times=("08:00", "20:00"))]
    assert care.basal_product is not None
    time = f"{care.basal_minute // 60:02d}:{care.basal_minute % 60:02d}"
    notes = ("Dose de départ", "Glycémies à jeun au-dessus de l'objectif : basale augmentée")
    return [
        treatment.Plan(
            "insulin",
            basal=treatment.Basal(care.basal_product, units, time),
            prandial_product=care.prandial_product,
            prandial=dict(care.prandial),
            note=note,
        )
        for units, note in zip(care.basal_units, notes, strict=False)
    ]


async def ensure_plan(conn: Conn, patient_id: uuid.UUID, care: Care) -> bool:
    """Write the patient's plan through ``telemon.treatment`` (its versions, audited), once: a patient who has a
    plan keeps it, whatever a clinician changed since, and an archived one is left as she is. True when written."""
    if await treatment.current_plan(conn, patient_id) is not None:
        return False
    try:
        for plan in treatment_plans(care):
            await treatment.new_version(conn, patient_id, plan, actor=ACTOR)
    except treatment.PlanRefused:  # archived by the team in the meantime: her record is read-only
        return False
    return True
