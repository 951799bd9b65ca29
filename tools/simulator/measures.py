"""The simulated cohort's other measurements: the treatment each patient follows (her plan's versions), the insulin
doses she logs, her ketone checks, her weekly weight and her home blood pressure, all sent through the device
contract's other item kinds (``insulin``, ``ketone``, ``weight``, ``blood_pressure``) with her glucose.

Pure and deterministic like :mod:`tools.simulator.physiology`: a patient's care is drawn from ``(seed, index)``
with a random stream of its own (the glucose model's draws are unchanged), a day of measurements from
``(seed, index, date)``. The rates (numbers from the literature where one exists; the rest plausible choices):

- treatment: diet, metformin, or insulin, which is basal alone (bedtime NPH or detemir) for about two in three,
  basal with prandial rapid insulin for the others; an insulin plan has two versions, the starting dose and the
  dose raised once since;
- doses: most insulin patients log 85–100 % of their injections; about one in six logs only 50–75 % (she injects
  and forgets to say so, the commonest gap of self-reported logs); the logged units are the plan's, now and then
  one unit more or less after a larger or smaller meal;
- ketones: about one patient in four checks now and then (about one day in seven), by blood strip or urine strip; the
  values are normal (blood below 0.6 mmol/L, urine negative or trace) but for the one planned raised ketone;
- weight: once a week, on her own weekday, gaining 0.2–0.5 kg a week;
- blood pressure: about two in five have a home monitor and measure two or three mornings a week, with normal
  values (below 135/85); one patient's pressure rises over her last twelve days to above 140/90 (gestational
  hypertension in late pregnancy), and one patient has a single reading of 165/112 (re-checked 15 minutes later,
  lower), the urgent case.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

UTC = dt.UTC
MEALS = ("breakfast", "lunch", "dinner")
WEEK_DAYS = 7.0

# Roles of the measurement model (see ``physiology.make_cohort``): guaranteed in every cohort.
KETONES = "ketones"  # one raised blood ketone (warning range)
BP_RISING = "bp-rising"  # pressure rising above 140/90 over the last twelve days
BP_URGENT = "bp-urgent"  # one reading of 165/112
BASAL_PRANDIAL = "basal-prandial"  # on basal and prandial insulin
MEASURE_ROLES = (KETONES, BP_RISING, BP_URGENT, BASAL_PRANDIAL)

# Starting basal insulin about 0.1 U/kg (basal needs in GDM are typically 0.1–0.3 U/kg/day: Brown et al., Cochrane
# Database Syst Rev 2017;11:CD012037), raised by 2 units, the usual step of basal titration (Riddle MC et al., the
# Treat-to-Target Trial, Diabetes Care 2003;26:3080-6).
BASAL_U_PER_KG = 0.1
TITRATION_STEP_U = 2.0
BASAL_PRANDIAL_SHARE = 0.35
FORGETFUL_SHARE = 0.16  # insulin patients who log only half to three quarters of their doses
# Weight gain in the second and third trimesters, kg/week: 0.22 (obese) to 0.51 (underweight), IOM 2009 (Weight
# Gain During Pregnancy: Reexamining the Guidelines, table S-1).
WEIGHT_GAIN = (0.22, 0.51)
WEIGH_PROBABILITY = 0.85
KETONE_CHECKERS = 0.25
KETONE_DAILY = 0.15
# Normal blood β-hydroxybutyrate is below 0.6 mmol/L (JBDS, The Management of Diabetic Ketoacidosis in Adults, 2021;
# the ketones_high rule's warning starts there); the planned raised one lies in the 0.6–1.5 warning range.
KETONE_NORMAL = (0.0, 0.4)
KETONE_RAISED = 1.1
BP_MONITOR_SHARE = 0.4
BP_DAILY = 0.35
# Home blood pressure of the ordinary patients stays under 135/85, the home-monitoring threshold of hypertension
# (NICE NG133, 2019, 1.1.3 and NG136); 140/90 is the threshold of gestational hypertension (NICE NG133, 2019).
BP_NORMAL_CEILING = (134.0, 84.0)
BP_RISE_TO = (150.0, 97.0)  # mmHg reached at the end of twelve days of rise, from her usual pressure
BP_RISE_DAYS = 12.0
BP_URGENT_VALUES = (165.0, 112.0, 96.0)
BP_RECHECK_VALUES = (146.0, 94.0, 90.0)


def local_instant(day: dt.date, minute: float, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of local ``minute`` after midnight on ``day`` in ``zone``, to the second."""
    naive = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
    return naive.replace(tzinfo=zone).astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class Care:
    """A patient's treatment and self-measurement habits (drawn once; every measurement follows from it)."""

    regimen: str  # diet | metformin | basal | basal_prandial
    metformin_mg: int | None = None
    basal_product: str | None = None
    basal_units: tuple[float, ...] = ()  # the plan's versions, oldest first: the last is in force
    basal_minute: int = 22 * 60
    prandial_product: str | None = None
    prandial: tuple[tuple[str, float], ...] = ()  # meal → units
    dose_log: float = 0.0  # probability she logs each injection
    weight_kg: float = 70.0  # on ``weight_date``
    weight_date: dt.date = dt.date(2026, 1, 1)
    weight_gain: float = 0.3  # kg a week
    weigh_weekday: int = 0
    weight_unit: str = "kg"
    bp: tuple[float, float, float] | None = None  # her usual systolic, diastolic, pulse; None: no home monitor
    ketone_rate: float = 0.0  # checks a day
    ketone_blood: bool = True  # blood strips, else urine strips
    ketone_raised_at: dt.datetime | None = None
    bp_rise_until: dt.datetime | None = None  # her pressure rises over the BP_RISE_DAYS before this instant
    bp_urgent_at: dt.datetime | None = None

    @property
    def insulin(self) -> bool:
        return self.regimen in ("basal", "basal_prandial")

    def features(self) -> list[str]:
        found = [self.regimen]
        if self.insulin and self.dose_log < 0.8:
            found.append("forgets to log doses")
        if self.ketone_raised_at is not None:
            found.append("raised ketones")
        if self.bp_rise_until is not None:
            found.append("rising blood pressure")
        if self.bp_urgent_at is not None:
            found.append("severe blood pressure reading")
        return found


def draw_care(
    seed: int, index: int, treatment: str, profile: str, roles: tuple[str, ...], created: dt.datetime
) -> Care:
    rng = np.random.default_rng([seed, index, 0x1B])
    weight = float(np.clip(rng.normal(72.0, 12.0), 50.0, 125.0))
    care = Care(
        regimen=treatment,
        weight_kg=round(weight, 1),
        weight_date=created.date(),
        weight_gain=float(rng.uniform(*WEIGHT_GAIN)),
        weigh_weekday=int(rng.integers(7)),
        weight_unit="lb" if profile == "ADA" else "kg",
        ketone_rate=KETONE_DAILY if rng.random() < KETONE_CHECKERS else 0.0,
        ketone_blood=bool(rng.random() < 0.5),
    )
    if treatment == "metformin":
        care = dataclasses.replace(care, metformin_mg=int(rng.choice([1000, 1500, 2000])))
    elif treatment == "insulin":
        start = float(max(4, round(BASAL_U_PER_KG * weight)))
        prandial = BASAL_PRANDIAL in roles or rng.random() < BASAL_PRANDIAL_SHARE
        forgets = rng.random() < FORGETFUL_SHARE
        care = dataclasses.replace(
            care,
            regimen="basal_prandial" if prandial else "basal",
            basal_product=str(rng.choice({"NICE": ["Humulin I", "Levemir"]}.get(profile, ["NPH", "Levemir"]))),
            basal_units=(start, start + TITRATION_STEP_U),
            basal_minute=int(rng.choice([21 * 60 + 30, 22 * 60, 22 * 60 + 30])),
            prandial_product=str(rng.choice(["NovoRapid", "Humalog"])) if prandial else None,
            prandial=tuple((m, float(rng.integers(2, 7))) for m in MEALS) if prandial else (),
            dose_log=float(rng.uniform(0.5, 0.75)) if forgets else float(rng.uniform(0.85, 1.0)),
        )
    bp: tuple[float, float, float] | None = None
    if rng.random() < BP_MONITOR_SHARE or BP_RISING in roles or BP_URGENT in roles:
        bp = (float(rng.uniform(104, 122)), float(rng.uniform(64, 78)), float(rng.uniform(74, 92)))
    return dataclasses.replace(
        care,
        bp=bp,
        ketone_rate=KETONE_DAILY if KETONES in roles else care.ketone_rate,
        ketone_blood=True if KETONES in roles else care.ketone_blood,
        ketone_raised_at=created - dt.timedelta(days=float(rng.uniform(1.3, 1.8))) if KETONES in roles else None,
        bp_rise_until=created if BP_RISING in roles else None,
        bp_urgent_at=created - dt.timedelta(days=float(rng.uniform(0.9, 1.4))) if BP_URGENT in roles else None,
    )


@dataclass(frozen=True, slots=True)
class Measure:
    """One item of another kind, as the device keeps it: ``values`` are the contract's fields of its kind."""

    taken_at: dt.datetime  # true instant, UTC
    stamp: dt.datetime  # the device's own timestamp (its clock may be wrong), UTC
    kind: str  # insulin | ketone | weight | blood_pressure
    seq: int
    values: tuple[tuple[str, Any], ...]
    event: str | None = None  # ketones_raised | bp_high | bp_urgent

    @property
    def key(self) -> tuple[str, dt.datetime, tuple[tuple[str, Any], ...]]:
        """What telemon deduplicates on (with the device): kind, the device's timestamp, the values."""
        return (self.kind, self.stamp, self.values)


def insulin_slot(minute: float) -> str:
    """The contract's slot of an injection at local ``minute``: the meal it goes with, or bedtime."""
    hour = (minute % 1440) / 60
    if 4 <= hour < 10.5:
        return "breakfast"
    if hour < 15.5:
        return "lunch"
    if hour < 20.5:
        return "dinner"
    return "bedtime"


def _bp_values(care: Care, at: dt.datetime, rng: np.random.Generator) -> tuple[float, float, float, str | None]:
    assert care.bp is not None
    systolic, diastolic, pulse = care.bp
    systolic += float(rng.normal(0, 4))
    diastolic += float(rng.normal(0, 3))
    pulse += float(rng.normal(0, 5))
    if care.bp_rise_until is not None:
        days_before = (care.bp_rise_until - at).total_seconds() / 86400
        share = float(np.clip(1.0 - days_before / BP_RISE_DAYS, 0.0, 1.0))
        systolic += (BP_RISE_TO[0] - care.bp[0]) * share
        diastolic += (BP_RISE_TO[1] - care.bp[1]) * share
    else:
        systolic, diastolic = min(systolic, BP_NORMAL_CEILING[0]), min(diastolic, BP_NORMAL_CEILING[1])
    event = "bp_high" if systolic >= 140 or diastolic >= 90 else None
    return round(systolic), round(diastolic), round(pulse), event


def day_measures(
    seed: int,
    index: int,
    care: Care,
    day: dt.date,
    zone: ZoneInfo,
    meal_minute: dict[str, float],
    alive: Callable[[dt.datetime], bool],
) -> list[Measure]:
    """What the patient logs on local date ``day`` besides her glucose, in time order (``alive`` says whether she
    is followed at an instant: enrolled, not stopped, not delivered)."""
    rng = np.random.default_rng([seed, index, day.toordinal(), 0x3E])
    base_seq = (day.toordinal() % 100_000) * 100 + 50
    found: list[tuple[float | dt.datetime, str, dict[str, Any], str | None]] = []
    if care.insulin:
        minute = care.basal_minute + float(rng.normal(0, 15))
        if rng.random() < care.dose_log:
            dose = {"units": care.basal_units[-1], "insulin": "basal", "product": care.basal_product}
            found.append((minute, "insulin", {**dose, "slot": insulin_slot(minute)}, None))
        for meal, units in care.prandial:
            minute = meal_minute[meal] - 5 + float(rng.normal(0, 5))
            if rng.random() < care.dose_log:
                change = float(rng.choice([-1.0, 1.0])) if rng.random() < 0.1 else 0.0
                dose = {"units": units + change, "insulin": "rapid", "product": care.prandial_product}
                found.append((minute, "insulin", {**dose, "slot": meal}, None))
    morning = 7 * 60 + float(rng.normal(0, 20))
    if care.ketone_rate and rng.random() < care.ketone_rate:
        if care.ketone_blood:
            value = round(float(rng.uniform(*KETONE_NORMAL)), 1)
            found.append((morning - 3, "ketone", {"value": value, "unit": "mmol/L"}, None))
        else:
            grade = "trace" if rng.random() < 0.15 else "negative"
            found.append((morning - 3, "ketone", {"urine": grade}, None))
    raised = care.ketone_raised_at
    if raised is not None and raised.astimezone(zone).date() == day:
        found.append((raised, "ketone", {"value": KETONE_RAISED, "unit": "mmol/L"}, "ketones_raised"))
    if day.weekday() == care.weigh_weekday and rng.random() < WEIGH_PROBABILITY:
        weeks = (day - care.weight_date).days / WEEK_DAYS
        kg = care.weight_kg + care.weight_gain * weeks + float(rng.normal(0, 0.3))
        value = kg if care.weight_unit == "kg" else kg / 0.45359237
        found.append((morning - 6, "weight", {"value": round(value, 1), "unit": care.weight_unit}, None))
    if care.bp is not None:
        daily = care.bp_rise_until is not None or care.bp_urgent_at is not None
        at = local_instant(day, morning + 30, zone)
        if daily or rng.random() < BP_DAILY:
            systolic, diastolic, pulse, event = _bp_values(care, at, rng)
            bp = {"systolic": systolic, "diastolic": diastolic, "pulse": pulse, "unit": "mmHg"}
            found.append((at, "blood_pressure", bp, event))
        urgent = care.bp_urgent_at
        if urgent is not None and urgent.astimezone(zone).date() == day:
            for k, (systolic, diastolic, pulse) in enumerate((BP_URGENT_VALUES, BP_RECHECK_VALUES)):
                bp = {"systolic": systolic, "diastolic": diastolic, "pulse": pulse, "unit": "mmHg"}
                found.append((urgent + dt.timedelta(minutes=15 * k), "blood_pressure", bp, ("bp_urgent", "bp_high")[k]))
    measures = []
    for k, (when, kind, values, event) in enumerate(found):
        at = when if isinstance(when, dt.datetime) else local_instant(day, when, zone)
        at = at.replace(microsecond=0)
        if not alive(at):
            continue
        items = tuple((name, value) for name, value in values.items() if value is not None)
        measures.append(Measure(at, at, kind, base_seq + k, items, event))
    return sorted(measures, key=lambda m: (m.taken_at, m.seq))
