"""A small, realistic care team for the browser tests and the screenshots: meter patients with two weeks of
logbook, one CGM patient, alerts raised by the real engine."""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import asyncpg

from alerts.engine import Engine
from telemon import devices
from tests.test_ui_toolkit import Team, add_readings, make_clinician, make_patient

PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Seeded:
    team: Team
    email: str
    live_patient: uuid.UUID  # a meter patient with no open hypoglycaemia: the test sends her one over MQTT
    live_device: str
    cgm_patient: uuid.UUID
    patients: list[uuid.UUID]


def _meter_days(
    rng: random.Random, days: int, fasting: float, post: float, skip: float
) -> list[tuple[dt.datetime, float, str, str | None]]:
    """``days`` full local days before today: fasting at ~7:30, 2 h after each meal; some readings missed."""
    out: list[tuple[dt.datetime, float, str, str | None]] = []
    today = dt.datetime.now(PARIS).date()
    slots = ((7, 30, "fasting", None, fasting), (10, 15, "after_meal", "breakfast", post),
             (14, 20, "after_meal", "lunch", post + 4), (21, 10, "after_meal", "dinner", post + 8))  # fmt: skip
    for back in range(days, 0, -1):
        day = today - dt.timedelta(days=back)
        for hour, minute, context, meal, mean in slots:
            if rng.random() < skip:
                continue
            at = dt.datetime.combine(day, dt.time(hour, minute + rng.randint(-10, 10)), tzinfo=PARIS)
            value = max(62.0, round(rng.gauss(mean, 9 if context == "fasting" else 14)))
            out.append((at.astimezone(dt.UTC), value, context, meal))
    return out


async def seed(db: asyncpg.Pool, team: Team) -> Seeded:
    rng = random.Random(20260314)
    email = await make_clinician(db, team, language="en", unit="mg/dL")
    people = [
        # name, profile, treatment, fasting mean, post-meal mean, share of readings missed
        ("Camille Durand", "FR", "diet", 86.0, 108.0, 0.05),
        ("Léa Martin", "FR", "insulin", 104.0, 131.0, 0.1),
        ("Inès Haddad", "FR", "diet", 97.0, 114.0, 0.45),
        ("Sarah Petit", "NICE", "metformin", 92.0, 118.0, 0.1),
        ("Manon Lefèvre", "ADA", "diet", 88.0, 112.0, 0.0),
        ("Chloé Bernard", "FR", "insulin", 91.0, 126.0, 0.15),
    ]
    ids: list[uuid.UUID] = []
    live: tuple[uuid.UUID, str] | None = None
    for name, profile, treatment, fasting, post, skip in people:
        patient, device = await make_patient(
            db, team, name, profile=profile, treatment=treatment, due_in_days=rng.randint(20, 90)
        )
        readings = _meter_days(rng, 14, fasting, post, skip)
        if name == "Chloé Bernard":  # a level 1 hypoglycaemia after lunch yesterday
            yesterday = dt.datetime.now(PARIS).date() - dt.timedelta(days=1)
            readings.append((dt.datetime.combine(yesterday, dt.time(15, 5), tzinfo=PARIS), 64.0, "after_meal", "lunch"))
        await add_readings(db, patient, device, readings)
        ids.append(patient)
        if live is None:
            live = (patient, device)
    cgm_patient, cgm_device = await make_patient(
        db, team, "Nora Benali", profile="FR", treatment="insulin", device="cgm", due_in_days=45
    )
    await add_readings(db, cgm_patient, cgm_device, _cgm_days(rng, 13), kind="cgm")
    meter = await _second_device(db, cgm_patient)
    await add_readings(db, cgm_patient, meter, _meter_days(rng, 14, 93.0, 121.0, 0.2))
    ids.append(cgm_patient)
    await Engine(db).evaluate(ids)
    assert live is not None
    return Seeded(team, email, live[0], live[1], cgm_patient, ids)


def _cgm_days(rng: random.Random, days: int) -> list[tuple[dt.datetime, float, str, str | None]]:
    """Five-minute sensor readings: a night plateau, a rise after each meal, a little noise, a few lows."""
    out: list[tuple[dt.datetime, float, str, str | None]] = []
    end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=3)
    for i in range(days * 288):
        at = end - dt.timedelta(minutes=5 * i)
        local = at.astimezone(PARIS)
        hour = local.hour + local.minute / 60
        value = 88.0
        for meal_hour, rise in ((8.0, 55.0), (12.5, 65.0), (19.5, 70.0)):
            since = hour - meal_hour
            if 0 <= since < 3:
                value += rise * math.sin(math.pi * since / 3) ** 2 * (1.4 if since < 1.5 else 1.0)
        if 3 <= hour < 4 and (i // 288) % 4 == 0:
            value -= 30  # an early-morning low every fourth night
        value += rng.gauss(0, 6)
        out.append((at, round(max(45.0, value), 1), "unspecified", None))
    return out


async def _second_device(db: asyncpg.Pool, patient: uuid.UUID) -> str:
    async with db.acquire() as conn:
        return (await devices.add_device(conn, patient_id=patient, kind="meter")).device_id
