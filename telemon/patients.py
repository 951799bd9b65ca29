"""Patients: a pregnancy followed by a care team, with its guideline profile, treatment and time zone."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import asyncpg

from telemon import audit, channels, queries, weight_gain
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
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, such as 'Europe'
            raise SettingsError(f"{where}: {name!r} is not an IANA time zone (for example Europe/Paris)") from None
    return name


class FieldError(SettingsError):
    """A value of a patient's record refused: ``field`` names it, ``code`` and ``params`` let a page word the
    reason in its reader's language, and the message is the English the hospital API answers."""

    def __init__(self, field: str, code: str, message: str, **params: object) -> None:
        super().__init__(message)
        self.field, self.code, self.params = field, code, params


# A pregnancy lasts 280 days from the last menstrual period to the due date, so a due date is known at most about
# 40 weeks ahead; 10 months (304 days) leaves a month for dating uncertainty. More is a wrong year or a swapped day
# and month.
MAX_DUE_DATE_AHEAD_DAYS = 304


def due_date_from_lmp(last_period: dt.date) -> dt.date:
    """Naegele's rule: the due date is 280 days after the first day of the last menstrual period."""
    return last_period + dt.timedelta(days=PREGNANCY_DAYS)


def check_due_date(due_date: dt.date, time_zone: str, *, postpartum_days: int) -> None:
    """Refuse a due date no pregnancy followed today can have, today being the date where the patient lives: more
    than 10 months ahead, or past by more than ``postpartum_days`` (the longest postpartum follow-up of the
    guideline profiles, which the core does not know), after which telemon has nothing left to follow."""
    today = dt.datetime.now(ZoneInfo(time_zone)).date()
    if (due_date - today).days > MAX_DUE_DATE_AHEAD_DAYS:
        raise FieldError(
            "due_date",
            "due_date.too_late",
            f"{due_date.isoformat()} is more than 10 months ({MAX_DUE_DATE_AHEAD_DAYS} days) after today"
            f" ({today.isoformat()}), and a pregnancy lasts {PREGNANCY_DAYS} days; check the year and month",
            days=MAX_DUE_DATE_AHEAD_DAYS,
        )
    if (today - due_date).days > postpartum_days:
        raise FieldError(
            "due_date",
            "due_date.too_early",
            f"{due_date.isoformat()} is more than {postpartum_days} days before today"
            f" ({today.isoformat()}), past the longest postpartum follow-up; check the year",
            days=postpartum_days,
        )


def check_diagnosis_date(diagnosis: dt.date | None, due_date: dt.date, time_zone: str) -> None:
    """A diagnosis is made during the pregnancy, and not in the future where the patient lives."""
    if diagnosis is None:
        return
    today = dt.datetime.now(ZoneInfo(time_zone)).date()
    if diagnosis > today:
        raise FieldError(
            "diagnosis_date",
            "diagnosis_date.future",
            f"{diagnosis.isoformat()} is in the future (today is {today.isoformat()})",
        )
    start = due_date - dt.timedelta(days=PREGNANCY_DAYS)
    if diagnosis < start:
        raise FieldError(
            "diagnosis_date",
            "diagnosis_date.before_pregnancy",
            f"{diagnosis.isoformat()} is before the pregnancy began ({start.isoformat()})",
            start=start,
        )


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
    """Enrol a new patient (the command line, the simulator): ``create_patient_once``, where a hospital number
    the team already has is refused."""
    record, made = await create_patient_once(
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
    if not made:
        raise SettingsError(f"--external-id: the team already has a patient with external id {external_id!r}")
    return record.id


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
    delivery (the glucose targets of GDM are the pregnancy's; the postpartum test follows): the glycaemic rules
    stop, and the glycaemic alerts still open are resolved now by the system with the reason "delivered" (a hypo
    of last week is no longer anyone's task, and would keep the patient on the triage list); the postpartum test
    reminder starts from it."""
    before: dt.date | None = await conn.fetchval(queries.LOCK_DELIVERY_DATE, patient_id)
    await conn.execute(queries.SET_DELIVERY_DATE, patient_id, day)
    resolved = await conn.fetch(
        queries.RESOLVE_BY_SYSTEM, patient_id, list(POSTPARTUM_RULES), "delivered", day, channels.ALERTS
    )
    detail = {
        "date": day.isoformat(),
        "before": before.isoformat() if before else None,
        "alerts_resolved": [r["id"] for r in resolved],
    }
    await audit.record(conn, actor=actor, action="patient.delivery", patient_id=patient_id, detail=detail)
    return before


@dataclass(frozen=True)
class PatientRecord(Patient):
    """A patient with what the hospital API and the dashboard's administration show besides: the archive and the
    times of the record."""

    archived_at: dt.datetime | None
    archived_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    # her body before the pregnancy, from which her weight gain is judged (telemon.weight_gain); None: not known
    height_cm: float | None = None
    pre_pregnancy_weight_kg: float | None = None

    @property
    def archived(self) -> bool:
        return self.archived_at is not None


# What a change of the record may set, by the column's name; the command line's and the API's names differ only
# for the display name and the time zone.
EDITABLE = (
    "external_id",
    "display_name",
    "time_zone",
    "due_date",
    "diagnosis_date",
    "treatment",
    "profile",
    "readings_per_day",
    "height_cm",
    "pre_pregnancy_weight_kg",
)


def check_body(height_cm: float | None, pre_pregnancy_weight_kg: float | None) -> None:
    """A height and a pre-pregnancy weight within their plausible ranges (``telemon.weight_gain``), or a
    ``FieldError`` naming the field and its range; None is "not known" and always allowed."""
    try:
        weight_gain.check_height_cm(height_cm)
        weight_gain.check_pre_pregnancy_weight_kg(pre_pregnancy_weight_kg)
    except weight_gain.BodyError as exc:
        raise FieldError(exc.field, "body.range", str(exc), low=exc.low, high=exc.high, unit=exc.unit) from None


def _record(row: asyncpg.Record | None) -> PatientRecord | None:
    return PatientRecord(**dict(row)) if row else None


async def create_patient_once(
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
    height_cm: float | None = None,
    pre_pregnancy_weight_kg: float | None = None,
) -> tuple[PatientRecord, bool]:
    """Enrol a patient unless her team already has one with this external id (the hospital number): returns the
    patient and whether this call made her. Two identical enrolments at once make one patient; the caller judges
    whether the one found says the same. Its values are checked first (a wrong one raises ``SettingsError``)."""
    check_time_zone(time_zone)
    check_choice(profile, PROFILES, "--profile")
    check_choice(treatment, TREATMENTS, "--treatment")
    if not external_id.strip():
        raise SettingsError("--external-id: a patient needs an external id (for example the hospital number)")
    if not 1 <= readings_per_day <= 12:
        raise SettingsError(f"--readings-per-day: {readings_per_day} is outside 1..12")
    check_body(height_cm, pre_pregnancy_weight_kg)
    made = await conn.fetchval(
        queries.INSERT_PATIENT_ONCE,
        uuid.uuid4(),
        team_id,
        external_id.strip(),
        display_name.strip() or external_id.strip(),
        time_zone,
        due_date,
        diagnosis_date,
        treatment,
        profile,
        readings_per_day,
        height_cm,
        pre_pregnancy_weight_kg,
    )
    if made is not None:
        record = _record(await conn.fetchrow(queries.LOCK_PATIENT_RECORD, made))
    else:
        record = _record(await conn.fetchrow(queries.PATIENT_RECORD_BY_EXTERNAL_ID, team_id, external_id.strip()))
    assert record is not None  # inserted, or held by the unique key that refused the insert
    return record, made is not None


async def patient_of_teams(
    conn: Conn | asyncpg.Pool, patient_id: uuid.UUID, team_ids: tuple[uuid.UUID, ...] | list[uuid.UUID]
) -> PatientRecord | None:
    """The patient if she belongs to one of ``team_ids``; None for another team's patient as for a missing one."""
    return _record(await conn.fetchrow(queries.PATIENT_RECORD_OF_TEAMS, patient_id, list(team_ids)))


async def update_patient(
    conn: Conn, patient_id: uuid.UUID, changes: dict[str, Any], *, actor: str, detail: dict[str, Any] | None = None
) -> PatientRecord | None:
    """Change the record's fields named in ``changes`` (names of ``EDITABLE``), audited with each field's value
    before and after; None when there is no such patient. An archived patient is read-only (``SettingsError``),
    and so is an external id another patient of the team holds."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    current = _record(await conn.fetchrow(queries.LOCK_PATIENT_RECORD, patient_id))
    if current is None:
        return None
    if current.archived:
        raise SettingsError("archived: the patient is archived and read-only; un-archive her first")
    values = {name: changes.get(name, getattr(current, name)) for name in EDITABLE}
    check_body(values["height_cm"], values["pre_pregnancy_weight_kg"])
    try:
        async with conn.transaction():
            row = await conn.fetchrow(queries.UPDATE_PATIENT, patient_id, *(values[name] for name in EDITABLE))
    except asyncpg.UniqueViolationError:
        raise SettingsError(
            f"external_id: the team already has another patient with external id {values['external_id']!r}"
        ) from None
    after = _record(row)
    assert after is not None
    changed = {
        name: [_plain(getattr(current, name)), _plain(getattr(after, name))]
        for name in EDITABLE
        if getattr(current, name) != getattr(after, name)
    }
    if changed:
        await audit.record(
            conn, actor=actor, action="patient.update", patient_id=patient_id, detail={**(detail or {}), **changed}
        )
    return after


async def archive_patient(
    conn: Conn, patient_id: uuid.UUID, *, actor: str, detail: dict[str, Any] | None = None
) -> PatientRecord | None:
    """End the monitoring of a patient, audited: read-only from now on, out of the triage and of the scheduled
    passes; her devices are revoked (her meter goes back, her app stops sending) and her alerts still open are
    resolved by the system with the reason "archived", since nobody is to act on them any more. None when she was
    archived already (nothing changes)."""
    archived = _record(await conn.fetchrow(queries.ARCHIVE_PATIENT, patient_id, actor))
    if archived is None:
        return None
    revoked = [r["id"] for r in await conn.fetch(queries.REVOKE_PATIENT_DEVICES, patient_id)]
    for device_id in revoked:
        await conn.execute(queries.CLOSE_DEVICE_PAIRING_CODES, device_id)
    resolved = [
        r["id"] for r in await conn.fetch(queries.RESOLVE_BY_SYSTEM, patient_id, [], "archived", None, channels.ALERTS)
    ]
    await audit.record(
        conn,
        actor=actor,
        action="patient.archive",
        patient_id=patient_id,
        detail={**(detail or {}), "devices_revoked": revoked, "alerts_resolved": resolved},
    )
    return archived


async def unarchive_patient(
    conn: Conn, patient_id: uuid.UUID, *, actor: str, detail: dict[str, Any] | None = None
) -> PatientRecord | None:
    """Take a patient out of the archive, audited (a mistaken archive, a monitoring resumed); her devices stay
    revoked: pair new ones. None when she was not archived."""
    restored = _record(await conn.fetchrow(queries.UNARCHIVE_PATIENT, patient_id))
    if restored is not None:
        await audit.record(conn, actor=actor, action="patient.unarchive", patient_id=patient_id, detail=detail)
    return restored


def _plain(value: Any) -> Any:
    """A value as the audit's JSON holds it."""
    return value.isoformat() if isinstance(value, dt.date) else value


@dataclass(frozen=True)
class Ogtt:
    """The oral glucose tolerance test (75 g) that made the diagnosis: values in mg/dL, exactly as typed in
    ``unit`` (telemon.units.exact_mgdl); the ones not measured are None."""

    unit: str
    fasting_mgdl: float | None
    one_hour_mgdl: float | None
    two_hours_mgdl: float | None


@dataclass(frozen=True)
class EnrolmentDetails:
    """What the dashboard's enrolment asks besides the record."""

    birth_year: int | None
    language: str
    ogtt: Ogtt | None
    # where the notice "you have a new message from your care team" goes (never any medical content); None: none
    email: str | None = None


async def set_enrolment_details(conn: Conn, patient_id: uuid.UUID, details: EnrolmentDetails) -> None:
    """Record the patient's birth year, the language she reads, her diagnostic OGTT and her e-mail, in the enrolment's
    transaction (which audits the whole)."""
    ogtt = details.ogtt
    await conn.execute(
        queries.SET_ENROLMENT_DETAILS,
        patient_id,
        details.birth_year,
        details.language,
        ogtt.unit if ogtt else None,
        ogtt.fasting_mgdl if ogtt else None,
        ogtt.one_hour_mgdl if ogtt else None,
        ogtt.two_hours_mgdl if ogtt else None,
        details.email,
    )


async def enrolment_details(conn: Conn | asyncpg.Pool, patient_id: uuid.UUID) -> EnrolmentDetails | None:
    row = await conn.fetchrow(queries.ENROLMENT_DETAILS, patient_id)
    if row is None:
        return None
    ogtt = None
    if row["ogtt_unit"] is not None:
        ogtt = Ogtt(row["ogtt_unit"], row["ogtt_fasting_mgdl"], row["ogtt_1h_mgdl"], row["ogtt_2h_mgdl"])
    return EnrolmentDetails(row["birth_year"], row["language"], ogtt, row["email"])
