"""Patients: a pregnancy followed by a care team, with its guideline profile, treatment and time zone."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import asyncpg

from telemon import audit, queries
from telemon.db import Conn
from telemon.settings import SettingsError

PROFILES = ("FR", "NICE", "ADA")
TREATMENTS = ("diet", "metformin", "insulin")
PREGNANCY_DAYS = 280  # 40 weeks from the last menstrual period to the due date
# The alert rules that belong to the time after delivery: their alerts stay open when a delivery is recorded.
POSTPARTUM_RULES = ("postpartum_test_due",)


@dataclass(frozen=True)
class Patient:
    id: uuid.UUID
    team_id: uuid.UUID
    external_id: str
    display_name: str
    time_zone: str
    due_date: dt.date
    diagnosis_date: dt.date | None
    delivery_date: dt.date | None
    treatment: str
    profile: str
    readings_per_day: int

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def pregnancy_start(self) -> dt.date:
        """Start of the pregnancy window: readings dated before it are refused."""
        return self.due_date - dt.timedelta(days=PREGNANCY_DAYS)


def check_time_zone(name: str, where: str = "--timezone") -> str:
    if name not in available_timezones():
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"{where}: {name!r} is not an IANA time zone (for example Europe/Paris)") from None
    return name


def check_choice(value: str, choices: tuple[str, ...], where: str) -> str:
    if value not in choices:
        raise SettingsError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return value


async def create_patient(
    conn: Conn,
    *,
    team_id: uuid.UUID,
    external_id: str,
    display_name: str,
    time_zone: str,
    due_date: dt.date,
    profile: str = "FR",
    treatment: str = "diet",
    readings_per_day: int = 4,
    diagnosis_date: dt.date | None = None,
) -> uuid.UUID:
    check_time_zone(time_zone)
    check_choice(profile, PROFILES, "--profile")
    check_choice(treatment, TREATMENTS, "--treatment")
    if not external_id.strip():
        raise SettingsError("--external-id: a patient needs an external id (for example the hospital number)")
    if not 1 <= readings_per_day <= 12:
        raise SettingsError(f"--readings-per-day: {readings_per_day} is outside 1..12")
    patient_id = uuid.uuid4()
    try:
        await conn.execute(
            queries.INSERT_PATIENT,
            patient_id,
            team_id,
            external_id.strip(),
            display_name.strip() or external_id.strip(),
            time_zone,
            due_date,
            diagnosis_date,
            treatment,
            profile,
            readings_per_day,
        )
    except asyncpg.UniqueViolationError:
        raise SettingsError(f"--external-id: the team already has a patient with external id {external_id!r}") from None
    return patient_id


async def get_patient(conn: Conn | asyncpg.Pool, patient_id: uuid.UUID) -> Patient | None:
    row = await conn.fetchrow(queries.GET_PATIENT, patient_id)
    return Patient(**dict(row)) if row else None


async def find_patient(conn: Conn, ref: str) -> Patient:
    """A patient by telemon id or by external id (when it is unique across teams)."""
    rows = await conn.fetch(queries.FIND_PATIENT, ref.strip())
    if not rows:
        raise SettingsError(f"--patient: no patient with id or external id {ref!r}")
    if len(rows) > 1:
        raise SettingsError(f"--patient: {ref!r} matches patients of several teams; give the telemon id")
    return Patient(**dict(rows[0]))


async def record_delivery(conn: Conn, patient_id: uuid.UUID, day: dt.date, *, actor: str) -> dt.date | None:
    """Record (or correct) the delivery date, audited; returns the date it replaced. Monitoring ends at the
    delivery (the glucose targets of GDM are the pregnancy's; the postpartum test follows): the glycaemic rules stop, and the glycaemic alerts still open are resolved now by the
    system with the reason "delivered" (a hypo of last week is no longer anyone's task, and would keep the patient
    on the triage list); the postpartum test reminder starts from it."""
    before: dt.date | None = await conn.fetchval(queries.LOCK_DELIVERY_DATE, patient_id)
    await conn.execute(queries.SET_DELIVERY_DATE, patient_id, day)
    resolved = await conn.fetch(queries.RESOLVE_FOR_DELIVERY, patient_id, list(POSTPARTUM_RULES), day)
    detail = {
        "date": day.isoformat(),
        "before": before.isoformat() if before else None,
        "alerts_resolved": [r["id"] for r in resolved],
    }
    await audit.record(conn, actor=actor, action="patient.delivery", patient_id=patient_id, detail=detail)
    return before
