"""Cohorts for the rule tests: hand-made patients, random cohorts, cohorts from the real CGM traces in
``../shared/data/cgm/`` and large synthetic cohorts for benchmarks."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from alerts import profiles, titration
from alerts.cohort import (
    CONTEXT,
    DEVICE_CGM,
    DEVICE_METER,
    DOSE_SLOTS,
    FLAG,
    I64,
    INSULIN,
    KIND,
    MEAL,
    MEASUREMENT,
    NO_DAY,
    PROFILE,
    SLOT,
    TREATMENT,
    URINE,
    Cohort,
    Record,
)
from tests.support.data import SHARED_DATA

DAY = 86400
NOW = 1_718_000_000  # 2024-06-10 06:13:20 UTC: a fixed "now" for hand-made cohorts
CGM_DIR = SHARED_DATA / "cgm"


@dataclass
class R:
    """One reading of a hand-made patient; ``t`` in seconds since the epoch."""

    t: int
    value: float
    kind: str = "smbg"
    context: str = "unspecified"
    minutes_after_meal: int = -1
    flags: Sequence[str] = ()
    meal: str | None = None
    local_day: int | None = None  # default: from t and the patient's UTC offset
    local_minute: int | None = None
    reading_id: int | None = None


@dataclass
class M:
    """One measurement of a hand-made patient (table measurements); ``t`` in seconds since the epoch."""

    t: int
    kind: str  # insulin | ketone | weight | blood_pressure
    value: float | None = None  # units, mmol/L, kg
    urine: str | None = None
    insulin: str | None = None
    slot: str | None = None
    systolic: float | None = None
    diastolic: float | None = None
    measurement_id: int | None = None


@dataclass
class Plan:
    """The plan in force of a hand-made patient, written at ``since`` (epoch seconds)."""

    version: int = 1
    since: int = 0
    basal_units: float | None = None
    basal_product: str | None = "NPH"
    prandial: dict[str, float] = field(default_factory=dict)
    prandial_product: str | None = "NovoRapid"
    metformin_mg: float | None = None
    dose_since: dict[str, int] = field(default_factory=dict)  # slot → when that dose last changed (else 0)


@dataclass
class Patient:
    readings: list[R] = field(default_factory=list)
    profile: str = "FR"
    treatment: str = "diet"
    overrides: dict[str, float] | None = None
    readings_per_day: int = 4
    delivery_day: int | None = None
    devices: int = DEVICE_METER
    utc_offset_s: int = 0
    today: int | None = None  # default: from now and the UTC offset
    measurements: list[M] = field(default_factory=list)
    plan: Plan | None = None
    protocol: titration.Protocol | None = None  # None: her team follows the default
    start_day: int | None = None  # local day of the diagnosis (None: unknown)
    postpartum_tested: bool = False


def local_day_of(t: int, offset_s: int = 0) -> int:
    return (t + offset_s) // DAY


def build(patients: Sequence[Patient], now: int = NOW, lookback_s: int = 7 * DAY) -> Cohort:
    """A cohort from hand-made patients (readings sorted by time within each patient, ids numbered in order)."""
    cols: dict[str, list[Any]] = defaultdict(list)
    offsets = [0]
    next_id = 1
    for pt in patients:
        rows = sorted(pt.readings, key=lambda r: r.t)
        for r in rows:
            off = pt.utc_offset_s
            cols["reading_id"].append(r.reading_id if r.reading_id is not None else next_id)
            next_id += 1
            cols["t"].append(r.t)
            cols["value"].append(r.value)
            cols["kind"].append(KIND[r.kind])
            cols["context"].append(CONTEXT[r.context])
            cols["meal"].append(MEAL[r.meal])
            cols["minutes_after_meal"].append(r.minutes_after_meal)
            cols["flags"].append(sum(FLAG[f] for f in r.flags))
            cols["local_day"].append(r.local_day if r.local_day is not None else local_day_of(r.t, off))
            cols["local_minute"].append(r.local_minute if r.local_minute is not None else ((r.t + off) % DAY) // 60)
        offsets.append(offsets[-1] + len(rows))
    profile = np.array([PROFILE[p.profile] for p in patients], dtype=np.int8)
    targets = profiles.patient_targets(profile, [p.overrides for p in patients])
    return Cohort(
        reading_id=np.array(cols["reading_id"], dtype=np.int64),
        t=np.array(cols["t"], dtype=np.int64),
        value=np.array(cols["value"], dtype=np.float64),
        kind=np.array(cols["kind"], dtype=np.int8),
        context=np.array(cols["context"], dtype=np.int8),
        meal=np.array(cols["meal"], dtype=np.int8),
        minutes_after_meal=np.array(cols["minutes_after_meal"], dtype=np.int16),
        flags=np.array(cols["flags"], dtype=np.int8),
        local_day=np.array(cols["local_day"], dtype=np.int32),
        local_minute=np.array(cols["local_minute"], dtype=np.int16),
        offsets=np.array(offsets, dtype=np.int64),
        profile=profile,
        treatment=np.array([TREATMENT[p.treatment] for p in patients], dtype=np.int8),
        target_fasting=targets.fasting,
        target_post_1h=targets.post_1h,
        target_post_2h=targets.post_2h,
        readings_per_day=np.array([p.readings_per_day for p in patients], dtype=np.int16),
        delivery_day=np.array([NO_DAY if p.delivery_day is None else p.delivery_day for p in patients], dtype=np.int32),
        devices=np.array([p.devices for p in patients], dtype=np.int8),
        today=np.array(
            [p.today if p.today is not None else local_day_of(now, p.utc_offset_s) for p in patients], dtype=np.int32
        ),
        utc_offset_s=np.array([p.utc_offset_s for p in patients], dtype=np.int32),
        now=now,
        lookback_s=lookback_s,
        record=build_record(patients),
    )


def build_record(patients: Sequence[Patient]) -> Record:
    """The treatment record of hand-made patients (measurements sorted by time, ids numbered in order)."""
    record = Record.empty(len(patients))
    cols: dict[str, list[Any]] = defaultdict(list)
    offsets = [0]
    next_id = 1
    nan = math.nan
    for pt in patients:
        rows = sorted(pt.measurements, key=lambda m: m.t)
        for m in rows:
            local = m.t + pt.utc_offset_s
            cols["measurement_id"].append(m.measurement_id if m.measurement_id is not None else next_id)
            next_id += 1
            cols["m_t"].append(m.t)
            cols["m_kind"].append(MEASUREMENT[m.kind])
            cols["m_value"].append(nan if m.value is None else m.value)
            cols["m_urine"].append(URINE[m.urine])
            cols["m_insulin"].append(INSULIN[m.insulin])
            cols["m_slot"].append(SLOT[m.slot])
            cols["m_systolic"].append(nan if m.systolic is None else m.systolic)
            cols["m_diastolic"].append(nan if m.diastolic is None else m.diastolic)
            cols["m_local_day"].append(local // DAY)
            cols["m_local_minute"].append((local % DAY) // 60)
        offsets.append(offsets[-1] + len(rows))
    dtypes = {"measurement_id": np.int64, "m_t": np.int64, "m_kind": np.int8, "m_value": np.float64,
              "m_urine": np.int8, "m_insulin": np.int8, "m_slot": np.int8, "m_systolic": np.float64,
              "m_diastolic": np.float64, "m_local_day": np.int32, "m_local_minute": np.int16}  # fmt: skip
    for name, dtype in dtypes.items():
        setattr(record, name, np.array(cols[name], dtype=dtype))
    record.m_offsets = np.array(offsets, dtype=np.int64)
    for p, pt in enumerate(patients):
        plan = pt.plan
        if plan is not None:
            record.plan_version[p], record.plan_since[p] = plan.version, plan.since
            record.basal_units[p] = nan if plan.basal_units is None else plan.basal_units
            record.basal_product[p] = plan.basal_product if plan.basal_units is not None else None
            for k, meal in enumerate(("breakfast", "lunch", "dinner")):
                record.prandial_units[p, k] = plan.prandial.get(meal, nan)
            record.prandial_product[p] = plan.prandial_product if plan.prandial else None
            record.metformin_mg[p] = nan if plan.metformin_mg is None else plan.metformin_mg
            for k, slot in enumerate(DOSE_SLOTS):
                record.dose_since[p, k] = plan.dose_since.get(slot, 0)
        if pt.protocol is not None:
            x = pt.protocol
            for name in ("step_units", "step_percent", "max_step_units", "reduction_percent", "reduction_units"):
                getattr(record, name)[p] = nan if getattr(x, name) is None else getattr(x, name)
            record.window_days[p], record.days_required[p] = x.window_days, x.days_required
            record.suggestions_enabled[p] = x.suggestions_enabled
            record.protocol_default[p] = x == titration.DEFAULT
        if pt.start_day is not None:
            record.start_day[p] = pt.start_day
        record.postpartum_tested[p] = pt.postpartum_tested
    return record


# ---------------------------------------------------------------------------------------------------------------
# Random cohorts
# ---------------------------------------------------------------------------------------------------------------

# Values on and around every threshold the rules use.
BOUNDARY_VALUES = (
    39.0, 40.0, 53.99, 54.0, 54.01, 55.0, 62.99, 63.0, 69.99, 70.0, 72.06, 72.06236, 72.07, 94.99, 95.0,
    95.482627, 95.49, 115.0, 115.01, 115.299776, 119.99, 120.0, 130.0, 130.01, 139.99, 140.0, 140.01,
    140.521602, 199.99, 200.0, 200.01,
)  # fmt: skip
OFFSETS_S = (0, 3600, 7200, -5 * 3600, -8 * 3600, 19800, 13 * 3600, -10 * 3600)
MEAL_TIMES_MIN = (7 * 60, 12 * 60 + 30, 19 * 60 + 30)


def _value(rng: np.random.Generator, low_bias: float) -> float:
    u = rng.random()
    if u < 0.15:
        return float(rng.choice(BOUNDARY_VALUES))
    if u < 0.15 + low_bias:
        return float(np.round(rng.uniform(35, 75), 1))
    if u < 0.30 + low_bias:
        return float(np.round(rng.uniform(180, 320), 1))
    return float(np.round(rng.normal(110, 30), 1))


def _smbg(rng: np.random.Generator, now: int, off: int, days: int, low_bias: float) -> list[R]:
    readings: list[R] = []
    end_day = local_day_of(now, off) + int(rng.integers(-3, 1))
    per_day_max = int(rng.integers(1, 8))
    for day in range(end_day - days, end_day + 1):
        for _ in range(int(rng.integers(0, per_day_max + 1))):
            context = str(rng.choice(["fasting", "after_meal", "after_meal", "before_meal", "bedtime", "unspecified"]))
            minute = int(rng.integers(5 * 60, 9 * 60)) if context == "fasting" else int(rng.integers(0, 1440))
            t = day * DAY + minute * 60 - off + int(rng.integers(0, 60))
            mam = int(rng.choice([-1, 0, 30, 60, 90, 91, 120, 150])) if context == "after_meal" else -1
            flags: list[str] = []
            if rng.random() < 0.04:
                flags.append("control_solution")
            if rng.random() < 0.03:
                flags.append(str(rng.choice(["lo", "hi", "manual"])))
            readings.append(R(t=t, value=_value(rng, low_bias), context=context, minutes_after_meal=mam, flags=flags))
    # bursts: close readings, to make (or break) hypoglycaemia and ketone episodes
    for _ in range(int(rng.integers(0, 3))):
        t = now - int(rng.integers(0, days * DAY + 1))
        base = float(rng.choice([45.0, 60.0, 71.0, 210.0]))
        for _ in range(int(rng.integers(2, 6))):
            readings.append(R(t=t, value=base + float(rng.normal(0, 8)), context="unspecified"))
            t += int(rng.choice([0, 300, 1800, 3600, 3601, 5400]))
    return readings


def _cgm(rng: np.random.Generator, now: int, long: bool) -> list[R]:
    # how long ago the trace stops: around the stale thresholds, or fresh
    # (negative: the last readings are in the future, a wrong clock)
    age = int(rng.choice([0, 30, 299, 600, 899, 900, 901, 1799, 1800, 1801, 3000, -600, int(rng.integers(0, 4000))]))
    end = now - age
    n = int(14 * 288 + rng.integers(-700, 50)) if long else int(rng.integers(2, 400))
    step = int(rng.choice([300, 300, 300, 60]))
    t = end - step * np.arange(n)[::-1] + rng.integers(-20, 21, n) * int(rng.random() < 0.5)
    # a random walk, sometimes falling fast
    drift = float(rng.choice([0.0, 0.0, -3.5, -6.0, 2.0])) * step / 60
    steps = rng.normal(0, 4, n) + drift * (np.arange(n) > n - 6)
    values = np.clip(float(rng.uniform(60, 200)) + np.cumsum(steps), 20, 400)
    if rng.random() < 0.3:
        values[rng.random(n) < 0.02] = float(rng.choice([38.0, 39.0]))  # Dexcom error codes
    keep = rng.random(n) > float(rng.choice([0.0, 0.1, 0.35]))  # dropouts
    keep[-1] = True
    return [R(t=int(tt), value=float(round(v, 1)), kind="cgm") for tt, v, k in zip(t, values, keep, strict=True) if k]


def random_patient(rng: np.random.Generator, now: int, long_cgm: float = 0.3) -> Patient:
    off = int(rng.choice(OFFSETS_S))
    devices = int(rng.choice([DEVICE_METER, DEVICE_METER, DEVICE_CGM, DEVICE_METER | DEVICE_CGM, 0]))
    low_bias = float(rng.choice([0.0, 0.05, 0.3]))
    readings: list[R] = []
    if devices & DEVICE_METER or rng.random() < 0.2:
        readings += _smbg(rng, now, off, int(rng.choice([0, 3, 8, 15, 30])), low_bias)
    if devices & DEVICE_CGM and rng.random() > 0.1:  # sometimes a sensor that has sent nothing yet
        readings += _cgm(rng, now, rng.random() < long_cgm)
    overrides = None
    if rng.random() < 0.2:
        overrides = {k: float(rng.choice([90.0, 92.0, 100.0, 130.0, 140.0, 120.0])) for k in profiles.TARGET_KEYS}
        overrides = {k: v for k, v in overrides.items() if rng.random() < 0.6}
    today = local_day_of(now, off)
    delivery = None
    if rng.random() < 0.25:
        delivery = today + int(rng.choice([-100, -60, -45, -42, -28, -10, -1, 0, 1, 5, int(rng.integers(-95, 3))]))
    patient = Patient(
        readings=readings,
        profile=str(rng.choice(["FR", "NICE", "ADA"])),
        treatment=str(rng.choice(["diet", "metformin", "insulin"])),
        overrides=overrides,
        readings_per_day=int(rng.choice([1, 4, 6])),
        delivery_day=delivery,
        devices=devices,
        utc_offset_s=off,
    )
    _random_record(rng, now, patient)
    return patient


def _random_record(rng: np.random.Generator, now: int, pt: Patient) -> None:
    """A random treatment record for ``pt``: a plan (mostly matching her treatment), sometimes her team's own
    protocol, a diagnosis day around the diet's trial period, and measurements around every threshold: doses
    around the 3-day silence, ketones (some within 2 h of her high readings), blood pressures."""
    today = local_day_of(now, pt.utc_offset_s)
    if rng.random() < 0.85:
        since = now - int(rng.choice([0.2, 1.5, 2.5, 4, 10, 30]) * DAY) + int(rng.integers(-3600, 3600))
        plan = Plan(version=int(rng.integers(1, 5)), since=since)
        if pt.treatment == "insulin":
            if rng.random() < 0.8:
                plan.basal_units = float(rng.choice([4.0, 10.0, 12.5, 20.0]))
                plan.basal_product = str(rng.choice(["NPH", "Levemir"]))
            plan.prandial = {m: float(rng.choice([2.0, 4.0, 6.5])) for m in ("breakfast", "lunch", "dinner")
                             if rng.random() < 0.5}  # fmt: skip
            if plan.basal_units is None and not plan.prandial:
                plan.basal_units = 8.0
        elif pt.treatment == "metformin":
            plan.metformin_mg = 1000.0
        plan.dose_since = {slot: since for slot in DOSE_SLOTS if rng.random() < 0.4}
        pt.plan = plan
        if plan.basal_units is not None and rng.random() < 0.7:  # the fasting readings a titration judges
            for day in range(today - int(rng.integers(0, 6)), today + 1):
                for _ in range(int(rng.choice([1, 1, 2]))):
                    t = day * DAY + int(rng.integers(5 * 60, 8 * 60)) * 60 - pt.utc_offset_s
                    value = float(rng.choice([88.0, 94.99, 95.0, 104.0, 121.0]))
                    pt.readings.append(R(t=t, value=value, context="fasting"))
    if rng.random() < 0.35:
        step_units = rng.choice([None, 1.0, 2.0])
        step_percent = None if step_units is not None and rng.random() < 0.5 else float(rng.choice([10.0, 20.0]))
        reduction_units = rng.choice([None, 1.0, 2.0])
        reduction_percent = None if reduction_units is not None and rng.random() < 0.5 else 20.0
        window = int(rng.choice([1, 3, 5, 7]))
        pt.protocol = titration.Protocol(
            step_units=None if step_units is None else float(step_units),
            step_percent=step_percent,
            window_days=window,
            days_required=int(rng.integers(1, window + 1)),
            max_step_units=float(rng.choice([1.0, 4.0])),
            reduction_percent=reduction_percent,
            reduction_units=None if reduction_units is None else float(reduction_units),
            suggestions_enabled=bool(rng.random() < 0.85),
        )
    if rng.random() < 0.85:
        pt.start_day = today - int(rng.choice([0, 3, 6, 7, 13, 14, 30]))
    pt.postpartum_tested = bool(rng.random() < 0.3)
    # a patient who logs her doses: the last one around the 3-day silence
    if (pt.treatment == "insulin" or rng.random() < 0.1) and rng.random() < 0.8:
        last = now - int(rng.choice([0.3, 1, 2.9, 3, 3.1, 5, 13.9, 14.1]) * DAY)
        for k in range(int(rng.integers(1, 4))):
            pt.measurements.append(M(t=last - k * DAY // 2, kind="insulin", value=8.0, insulin="basal"))
    for _ in range(int(rng.integers(0, 3))):
        t = now - int(rng.integers(0, 9 * DAY))
        if rng.random() < 0.6:
            value = float(rng.choice([0.1, 0.59, 0.6, 1.0, 1.49, 1.5, 3.0]))
            pt.measurements.append(M(t=t, kind="ketone", value=value))
        else:
            grade = str(rng.choice(["negative", "trace", "+", "++", "+++"]))
            pt.measurements.append(M(t=t, kind="ketone", urine=grade))
    highs = [r.t for r in pt.readings if r.value >= 200]
    if highs and rng.random() < 0.5:  # a ketone test around a high reading: on the 2-hour edge or inside
        t = int(rng.choice(highs)) + int(rng.choice([-7201, -7200, -600, 0, 3600, 7200, 7201]))
        pt.measurements.append(M(t=t, kind="ketone", value=float(rng.choice([0.2, 0.8]))))
    for _ in range(int(rng.integers(0, 3))):
        t = now - int(rng.integers(0, 9 * DAY))
        systolic = float(rng.choice([118.0, 139.0, 140.0, 159.0, 160.0, 172.0]))
        diastolic = float(rng.choice([75.0, 89.0, 90.0, 109.0, 110.0]))
        pt.measurements.append(M(t=t, kind="blood_pressure", systolic=systolic, diastolic=diastolic))
    if rng.random() < 0.1:
        pt.measurements.append(M(t=now - int(rng.integers(0, 5 * DAY)), kind="weight", value=72.5))


def random_cohort(seed: int, n_patients: int, long_cgm: float = 0.3, lookback_days: int = 7) -> Cohort:
    rng = np.random.default_rng(seed)
    now = NOW + int(rng.integers(0, DAY))
    patients = [random_patient(rng, now, long_cgm) for _ in range(n_patients)]
    return build(patients, now=now, lookback_s=lookback_days * DAY)


# ---------------------------------------------------------------------------------------------------------------
# Real CGM traces (../shared/data/cgm, see its README): id,time,gl in mg/dL, naive local times
# ---------------------------------------------------------------------------------------------------------------

TRACES = {
    # file: (time zone of the naive times, note)
    "iglu_example_data_5_subject.csv": "Etc/GMT+5",  # EST without DST (README)
    "dubosson2018_processed.csv": "Europe/Zurich",  # D1NAMO, Switzerland
    "hall2018_processed.csv.gz": "America/Los_Angeles",  # Stanford (Hall et al. 2018)
}


def read_trace(name: str) -> dict[str, list[tuple[str, float]]]:
    """Subject → [(naive local time, mg/dL)], NA rows dropped."""
    path = CGM_DIR / name
    opener = gzip.open if path.suffix == ".gz" else open
    subjects: dict[str, list[tuple[str, float]]] = defaultdict(list)
    with opener(path, "rt", newline="") as handle:  # type: ignore[operator]
        for row in csv.DictReader(handle):
            if row["gl"] in ("", "NA"):
                continue
            subjects[row["id"]].append((row["time"], float(row["gl"])))
    return dict(subjects)


def trace_cohort(
    name: str,
    *,
    after_end_s: int = 60,
    align_ends: bool = False,
    with_meter: bool = True,
    seed: int = 0,
) -> Cohort:
    """One CGM patient per subject of a trace file, ``now`` = the end of the trace + ``after_end_s``.

    ``align_ends`` shifts every subject so that its trace ends at the same instant (every subject then has a
    fresh last reading). ``with_meter`` adds meter readings taken from the trace itself (fasting at 07:00,
    1 h after meals at 08:00, 13:30, 20:30, the CGM value nearest in time), so that the meter rules run on
    real glucose dynamics too. Profiles, treatments and deliveries are drawn from ``seed``.
    """
    rng = np.random.default_rng(seed)
    zone = ZoneInfo(TRACES[name])
    subjects = read_trace(name)
    traces: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for rows in subjects.values():
        naive = [dt.datetime.fromisoformat(tm) for tm, _ in rows]
        t = np.array([int(x.replace(tzinfo=zone).timestamp()) for x in naive], dtype=np.int64)
        local = np.array([int((x - dt.datetime(1970, 1, 1)).total_seconds()) for x in naive], dtype=np.int64)
        v = np.array([gl for _, gl in rows], dtype=np.float64)
        order = np.argsort(t, kind="stable")
        traces.append((t[order], local[order], v[order], t[order] - local[order]))
    end = max(int(t[-1]) for t, _, _, _ in traces)
    now = end + after_end_s
    patients: list[Patient] = []
    for t, local, v, utc_minus_local in traces:
        shift = end - int(t[-1]) if align_ends else 0
        t = t + shift
        local = local + shift
        readings = [
            R(t=int(a), value=float(b), kind="cgm", local_day=int(lc // DAY), local_minute=int((lc % DAY) // 60))
            for a, b, lc in zip(t, v, local, strict=True)
        ]
        if with_meter:
            readings += _meter_from_trace(t, local, v)
        off = -int(utc_minus_local[-1])
        today = local_day_of(now, off)
        delivery = today - int(rng.choice([10, 45])) if rng.random() < 0.2 else None
        patients.append(
            Patient(
                readings=readings,
                profile=str(rng.choice(["FR", "NICE", "ADA"])),
                treatment=str(rng.choice(["diet", "metformin", "insulin"])),
                devices=DEVICE_CGM | (DEVICE_METER if with_meter else 0),
                utc_offset_s=off,
                delivery_day=delivery,
                today=today,
            )
        )
    return build(patients, now=now)


def _meter_from_trace(t: np.ndarray, local: np.ndarray, v: np.ndarray) -> list[R]:
    out: list[R] = []
    days = np.unique(local // DAY)
    for day in days:
        for minute, context, mam in ((7 * 60, "fasting", -1), (8 * 60, "after_meal", 60),
                                     (13 * 60 + 30, "after_meal", 60), (20 * 60 + 30, "after_meal", 120)):  # fmt: skip
            target = int(day) * DAY + minute * 60
            k = int(np.searchsorted(local, target))
            best = min((j for j in (k - 1, k) if 0 <= j < len(local)), key=lambda j: abs(int(local[j]) - target))
            if abs(int(local[best]) - target) <= 600:
                lc = int(local[best])
                out.append(
                    R(
                        t=int(t[best]) + 1,
                        value=float(v[best]),
                        context=context,
                        minutes_after_meal=mam,
                        local_day=(lc + 1) // DAY,
                        local_minute=((lc + 1) % DAY) // 60,
                    )
                )
    return out


# ---------------------------------------------------------------------------------------------------------------
# Large synthetic cohorts (benchmarks): built with numpy, no loop over patients
# ---------------------------------------------------------------------------------------------------------------


def synthetic_cohort(
    n_meter: int, meter_days: int, per_day: int, n_cgm: int, cgm_days: int, seed: int = 0, now: int = NOW
) -> Cohort:
    """``n_meter`` meter patients with ``per_day`` readings a day over ``meter_days`` days, then ``n_cgm`` CGM
    patients with 5-minute readings over ``cgm_days`` days (ending now). Realistic values: mostly in target,
    a few lows and highs, contexts fasting + after meals."""
    rng = np.random.default_rng(seed)
    n_p = n_meter + n_cgm
    # meter patients
    m_count = meter_days * per_day
    day0 = (now // DAY) - meter_days
    days = np.repeat(np.arange(meter_days), per_day)
    slot = np.tile(np.arange(per_day), meter_days)
    minute = np.array([7 * 60, 8 * 60 + 30, 13 * 60, 14 * 60, 20 * 60, 21 * 60])[slot % 6]
    base_t = (day0 + days) * DAY + minute * 60
    t_m = (base_t[None, :] + rng.integers(0, 1800, (n_meter, m_count))).reshape(-1)
    ctx_pattern = np.array([CONTEXT["fasting"], CONTEXT["after_meal"], CONTEXT["before_meal"],
                            CONTEXT["after_meal"], CONTEXT["before_meal"], CONTEXT["after_meal"]])  # fmt: skip
    ctx_m = np.tile(ctx_pattern[slot % 6], n_meter)
    # treated GDM: most readings in target (fasting around 86, after meals around 112 mg/dL)
    v_m = np.clip(rng.normal(86, 9, n_meter * m_count), 30, 450)
    post = ctx_m != CONTEXT["fasting"]
    v_m[post] = np.clip(rng.normal(112, 18, int(post.sum())), 30, 450)
    mam_m = np.where(ctx_m == CONTEXT["after_meal"], rng.choice([-1, 60, 120], n_meter * m_count), -1)
    # CGM patients: 5-min readings, a smooth random walk around 110 mg/dL
    c_count = cgm_days * 288
    t_c = (now - 300 * np.arange(c_count)[::-1])[None, :] - rng.integers(0, 120, (n_cgm, 1))
    # mean-reverting (AR(1), sd about 15 mg/dL) around a daily cycle: a few lows and highs, as in treated GDM
    noise = rng.normal(0, 3.0, (n_cgm, c_count))
    walk = np.empty_like(noise)
    walk[:, 0] = noise[:, 0]
    for k in range(1, c_count):  # time steps of the generator (vectorised over patients)
        walk[:, k] = 0.98 * walk[:, k - 1] + noise[:, k]
    v_c = np.clip(108 + walk + 20 * np.sin(np.arange(c_count) / 288 * 2 * np.pi)[None, :], 40, 400).reshape(-1)
    t = np.concatenate([t_m, t_c.reshape(-1)]).astype(np.int64)
    n_m, n_c = n_meter * m_count, n_cgm * c_count
    offsets = np.concatenate([[0], np.cumsum([m_count] * n_meter + [c_count] * n_cgm)]).astype(np.int64)
    off_s = np.where(rng.random(n_p) < 0.5, 3600, 7200).astype(np.int32)
    local = t + np.repeat(off_s, np.diff(offsets)).astype(np.int64)
    profile = rng.integers(0, 3, n_p).astype(np.int8)
    targets = profiles.patient_targets(profile, [None] * n_p)
    flags = np.zeros(n_m + n_c, dtype=np.int8)
    flags[rng.random(n_m + n_c) < 0.001] = FLAG["control_solution"]
    delivery = np.full(n_p, NO_DAY, dtype=np.int32)
    has = rng.random(n_p) < 0.05
    today = ((now + off_s.astype(np.int64)) // DAY).astype(np.int32)
    delivery[has] = today[has] - rng.integers(-10, 60, int(has.sum())).astype(np.int32)
    return Cohort(
        reading_id=np.arange(1, n_m + n_c + 1, dtype=np.int64),
        t=t,
        value=np.round(np.concatenate([v_m, v_c]), 1),
        kind=np.concatenate([np.zeros(n_m, np.int8), np.ones(n_c, np.int8)]),
        context=np.concatenate([ctx_m.astype(np.int8), np.full(n_c, CONTEXT["unspecified"], np.int8)]),
        meal=np.full(n_m + n_c, -1, dtype=np.int8),
        minutes_after_meal=np.concatenate([mam_m, np.full(n_c, -1)]).astype(np.int16),
        flags=flags,
        local_day=(local // DAY).astype(np.int32),
        local_minute=((local % DAY) // 60).astype(np.int16),
        offsets=offsets,
        profile=profile,
        treatment=rng.integers(0, 3, n_p).astype(np.int8),
        target_fasting=targets.fasting,
        target_post_1h=targets.post_1h,
        target_post_2h=targets.post_2h,
        readings_per_day=np.full(n_p, 4, dtype=np.int16),
        delivery_day=delivery,
        devices=np.concatenate([np.full(n_meter, DEVICE_METER), np.full(n_cgm, DEVICE_CGM)]).astype(np.int8),
        today=today,
        utc_offset_s=off_s,
        now=now,
    )


def synthetic_record(c: Cohort, days: int = 14, seed: int = 0) -> Record:
    """A treatment record for a synthetic cohort, built with numpy: every patient on insulin has a plan (NPH 10 U,
    written 30 days ago) and logs a dose each evening; every patient sends a blood pressure each day and a blood
    ketone every third day, over the last ``days`` days (a few above the thresholds)."""
    rng = np.random.default_rng(seed)
    n_p = c.n_patients
    record = Record.empty(n_p)
    insulin = c.treatment == TREATMENT["insulin"]
    record.plan_version[insulin] = 1
    record.plan_since[insulin] = c.now - 30 * DAY
    record.basal_units[insulin] = 10.0
    record.basal_product = ["NPH" if x else None for x in insulin.tolist()]
    record.start_day[:] = c.today - 30
    day = np.arange(days, dtype=np.int64)
    # per patient: a dose a day (insulin only), a blood pressure a day, a ketone every third day
    doses = np.where(insulin, days, 0)
    per_patient = doses + days + (days + 2) // 3
    offsets = np.concatenate([[0], np.cumsum(per_patient)]).astype(np.int64)
    patient = np.repeat(np.arange(n_p, dtype=np.int64), per_patient)
    first_day = (c.now // DAY) - days + 1
    kind_rows: list[tuple[I64, int, I64]] = []
    for code, every, when_s, who in ((MEASUREMENT["insulin"], 1, 21 * 3600, insulin),
                                     (MEASUREMENT["blood_pressure"], 1, 8 * 3600, np.ones(n_p, np.bool_)),
                                     (MEASUREMENT["ketone"], 3, 7 * 3600, np.ones(n_p, np.bool_))):  # fmt: skip
        d = day[::every]
        times = (first_day + d[None, :]) * DAY + when_s - DAY  # the day before: never in the future
        kind_rows.append((np.flatnonzero(who), code, np.broadcast_to(times, (n_p, len(d)))[who]))
    # assemble in (patient, time) order
    pid = np.concatenate([np.repeat(w, t.shape[1]) for w, _, t in kind_rows])
    kind = np.concatenate([np.full(t.size, k, np.int8) for _, k, t in kind_rows])
    tt = np.concatenate([t.reshape(-1) for _, _, t in kind_rows]).astype(np.int64)
    order = np.lexsort((tt, pid))
    pid, kind, tt = pid[order], kind[order], tt[order]
    assert np.array_equal(pid, patient)
    m = len(tt)
    value = np.full(m, np.nan)
    value[kind == MEASUREMENT["insulin"]] = 10.0
    ketone = kind == MEASUREMENT["ketone"]
    value[ketone] = np.round(np.clip(rng.gamma(1.5, 0.15, int(ketone.sum())), 0.0, 4.0), 1)
    bp = kind == MEASUREMENT["blood_pressure"]
    systolic, diastolic = np.full(m, np.nan), np.full(m, np.nan)
    systolic[bp] = np.round(rng.normal(118, 11, int(bp.sum())))
    diastolic[bp] = np.round(rng.normal(74, 8, int(bp.sum())))
    local = tt + c.utc_offset_s[pid].astype(np.int64)
    record.measurement_id = np.arange(1, m + 1, dtype=np.int64)
    record.m_t, record.m_kind, record.m_value = tt, kind, value
    record.m_urine = np.full(m, -1, np.int8)
    record.m_insulin = np.where(kind == MEASUREMENT["insulin"], INSULIN["basal"], -1).astype(np.int8)
    record.m_slot = np.full(m, -1, np.int8)
    record.m_systolic, record.m_diastolic = systolic, diastolic
    record.m_local_day = (local // DAY).astype(np.int32)
    record.m_local_minute = ((local % DAY) // 60).astype(np.int16)
    record.m_offsets = offsets
    return record


def subset(c: Cohort, patients: Iterable[int]) -> Cohort:
    """The cohort restricted to some patients (for timing the reference on part of a big cohort)."""
    ps = np.array(sorted(patients), dtype=np.int64)
    lo, hi = c.offsets[ps], c.offsets[ps + 1]
    idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if len(ps) else np.zeros(0, int)
    offsets = np.concatenate([[0], np.cumsum(hi - lo)]).astype(np.int64)
    per_reading = ("reading_id", "t", "value", "kind", "context", "meal", "minutes_after_meal", "flags",
                   "local_day", "local_minute")  # fmt: skip
    per_patient = ("profile", "treatment", "target_fasting", "target_post_1h", "target_post_2h",
                   "readings_per_day", "delivery_day", "devices", "today", "utc_offset_s")  # fmt: skip
    kwargs: dict[str, Any] = {k: getattr(c, k)[idx] for k in per_reading}
    kwargs |= {k: getattr(c, k)[ps] for k in per_patient}
    return Cohort(offsets=offsets, now=c.now, lookback_s=c.lookback_s, **kwargs)


def trace_path(name: str) -> Path:
    return CGM_DIR / name
