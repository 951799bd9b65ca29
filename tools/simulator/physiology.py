"""The synthetic GDM cohort: who the patients are, what their devices measure, and when each device syncs.

Everything here is pure and deterministic: a patient is drawn from ``(seed, index)``, a day of her readings from
``(seed, index, date)``, so a backfill, a live run and a later run all produce the same reading for the same
moment (a second run re-sends nothing new, and what it re-sends is a duplicate).

The model, in mg/dL (numbers from the literature where one exists; the rest are plausible choices):

- most patients are well controlled, on diet or on a treatment that works: their own mean fasting glucose lies
  around 86 mg/dL, under the 95 mg/dL target (CNGOF/SFD 2010) by more than its day-to-day spread, and their
  after-meal tests mostly in target; a few (about 8 % for each) are the patients GDM follow-up is for: in some
  the fasting glucose drifts up by 0.3–1.2 mg/dL a day (up to 35 mg/dL) as insulin resistance grows through the
  third trimester, in others the post-meal rises stay well above the others';
- after a meal glucose rises and falls back within 2–3 hours: a gamma-shaped excursion peaking about 55 minutes
  after a meter patient's meal (65 on CGM), highest after breakfast (morning insulin resistance), scaled by a
  patient's control and by each meal's carbohydrates;
- meters measure with about 3 % error (ISO 15197 allows ±15 %), round to the unit they display (whole mg/dL,
  0.1 mmol/L, 0.01 g/L); CGM sensors add autocorrelated noise (SD about 4 mg/dL), report whole mg/dL every
  5 minutes, lose the signal now and then and need a 2-hour warm-up at each sensor change (every 10 days);
- insulin-treated patients have occasional hypoglycaemia (the only readings below 74 mg/dL the model makes:
  every one is planned and recorded as an event), followed by a re-check 15 minutes later (the "rule of 15");
- adherence: each prescribed reading is taken with a patient's probability; some stop measuring altogether;
- devices: meters (MQTT) sync after each reading or once in the evening, and some have a wrong clock (sent
  with the meter's own clock, ``device_time``) until the clock is fixed and the meter re-sends its whole memory
  (duplicates); phone apps (HTTP) send right away, and the patient sometimes mistypes a manual entry (refused by
  telemon); CGM uploaders (Nightscout API) upload every reading a minute after it is measured;
- pregnancy: enrolled at diagnosis (24–28 weeks of gestation), delivered at 38–41 weeks; after the delivery
  monitoring ends (a few mothers measure for two more days, with normal values) and the CGM comes off.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from telemon.units import GL, MGDL, MMOLL, TO_MGDL
from tools.simulator.measures import (
    BASAL_PRANDIAL,
    BP_RISING,
    BP_URGENT,
    KETONES,
    Care,
    Measure,
    day_measures,
    draw_care,
    local_instant,
)

UTC = dt.UTC
DAY = dt.timedelta(days=1)
MINUTE = dt.timedelta(minutes=1)
PREGNANCY_DAYS = 280

MEALS = ("breakfast", "lunch", "dinner")
MEAL_MINUTE = {"breakfast": 7 * 60 + 30, "lunch": 12 * 60 + 30, "dinner": 19 * 60 + 45}  # local time
MEAL_SD_MIN = {"breakfast": 20, "lunch": 30, "dinner": 30}
# Peak rise above the pre-meal level of a well-controlled patient on her GDM diet, mg/dL; breakfast highest
# (morning insulin resistance). Below the rise of normal pregnancy on a free diet (fasting 71, 1 h after a meal
# 109, 2 h 99 mg/dL: Hernandez TL et al., Diabetes Care 2011;34:1660; CGM excursions 36 ± 22 mg/dL: Carlson AL
# et al., Diabetes 2024;73(Suppl 1):67-OR), as the GDM diet spreads the carbohydrates: her 2 h tests come out
# around 105–110 mg/dL, and the mean of her readings lies in 87–104 mg/dL, the range with the fewest small and
# large babies (Langer O et al., Am J Obstet Gynecol 1989;161:646).
MEAL_RISE = {"breakfast": 30.0, "lunch": 22.0, "dinner": 26.0}
CONTROL_SD = 0.15  # between ordinary patients, log-normal SD of the multiplier of the rises
# The patients whose glucose has escaped their treatment and who need it changed: 27–37 % of women with GDM need
# insulin at some point (36.7 %: Bakiner O et al., J Clin Med Res 2013, doi:10.4021/jocmr1515w; 27.0 %: Bilginer MC
# et al., Turk J Diab Obes 2022:59–66), over about 8 weeks of follow-up (median 54 days from recruitment to delivery
# in GDm-Health: Mackillop L et al., JMIR Mhealth Uhealth 2018;6:e71), and a week or two passes before the change
# brings them back in target: on a given day a few percent of the cohort, for each of two mechanisms.
HIGH_PEAKS_SHARE = 0.08  # post-meal rises well above the others' ...
HIGH_PEAKS = 1.8  # ... by this factor: about half of her after-meal tests above target
DRIFT_SHARE = 0.08  # fasting glucose drifting up (diet or metformin)
METER_PEAK_MIN = 55.0
CGM_PEAK_MIN = 65.0
# A well-controlled patient's own mean fasting glucose, mg/dL (mean, SD across patients): under the 95 mg/dL target
# (CNGOF/SFD 2010, ADA; 5.3 mmol/L NICE) by at least her day-to-day spread (SD about 5: 4 of the day, 3 % of the
# meter), so that most of her fasting tests are in target; normal pregnancy runs lower (71 ± 8, Hernandez 2011).
FASTING_BASE = (86.0, 2.5)
FASTING_FLOOR, FASTING_CEILING = 80.0, 90.0
MAX_DRIFT = 35.0  # mg/dL: a drifting fasting level stops rising there
SAFE_FLOOR = 74.0  # the model makes no reading below this but the planned hypoglycaemias
HYPO_L1 = 70.0  # ADA level 1: < 70 mg/dL
HYPO_L2 = 54.0  # ADA level 2: < 54 mg/dL
DAILY_SYNC_MINUTE = 21 * 60 + 30  # evening sync of the meters synced once a day
METER_MEMORY = 1000  # readings a meter keeps (and re-sends on a full-memory sync)
CHUNK = 500  # readings per message of a full-memory sync
CGM_STEP = dt.timedelta(minutes=5)

FIRST_NAMES = (
    "Camille", "Léa", "Manon", "Chloé", "Inès", "Sarah", "Emma", "Julie", "Laura", "Amina", "Sofia", "Clara",
    "Yasmine", "Pauline", "Mélanie", "Nadia", "Fatou", "Élodie", "Marie", "Lucie", "Anaïs", "Charlotte",
    "Aurélie", "Hélène", "Zoé", "Louise", "Alice", "Jade", "Nour", "Maëlle", "Océane", "Justine",
)  # fmt: skip
ZONES = {"FR": "Europe/Paris", "NICE": "Europe/London", "ADA": "America/New_York"}


@dataclass(frozen=True)
class CohortSpec:
    """What a cohort is drawn from: kept in the state file, so that a later run draws the same cohort."""

    seed: int
    patients: int
    cgm: int
    created: dt.datetime  # UTC: the first run's "now"; planned events are placed relative to it
    start: dt.datetime  # UTC: the first instant of simulated history (created − days)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError("seed must be ≥ 0")
        if not 0 <= self.cgm <= self.patients:
            raise ValueError("cgm must be between 0 and the number of patients")


@dataclass(frozen=True)
class PatientPlan:
    """One simulated patient and her device (drawn once; every reading follows from it)."""

    index: int
    external_id: str
    display_name: str
    time_zone: str
    profile: str
    treatment: str
    readings_per_day: int
    device_kind: str  # meter | app | cgm
    unit: str  # the unit her device sends
    due_date: dt.date
    enrolled_at: dt.datetime  # diagnosis: her first possible reading
    delivery_at: dt.datetime
    postpartum_days: int  # days she keeps measuring after the delivery (0 for most)
    fasting_base: float  # mg/dL at enrolment
    drift_per_day: float  # mg/dL per day
    control: float  # multiplier of the post-meal rises
    post_meal_minutes: int  # 60 (1 h, NICE/ADA) or 120 (2 h, FR) after meals
    adherence: float  # probability of taking each prescribed reading
    hypo_rate: float  # planned hypoglycaemias a day (insulin)
    hypo_every: int  # a hypoglycaemia every n-th day (0: only random ones)
    hypo_phase: int
    stop_at: dt.datetime | None  # she stops measuring for good
    clock_skew_s: int  # the meter's clock minus the true time
    clock_fixed_at: dt.datetime | None  # then the meter's clock is right
    resyncs: tuple[dt.datetime, ...]  # full-memory syncs
    daily_sync: bool  # a meter synced once a day (else after each reading)
    tags_context: bool  # the meter or app sends the context (else telemon infers it)
    typo_rate: float  # mistyped manual entries a day (apps)
    typo_every: int  # a mistyped entry every n-th day (0: only random ones)
    cgm_phase_s: int
    sensor_phase: int
    roles: tuple[str, ...] = ()  # what this patient is in the cohort for (guaranteed features)
    # her treatment plan and her other measurements (tools.simulator.measures)
    care: Care = field(default_factory=lambda: Care("diet"))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def transport(self) -> str:
        return {"meter": "mqtt", "app": "http", "cgm": "nightscout"}[self.device_kind]

    @property
    def delivery_date(self) -> dt.date:
        return self.delivery_at.astimezone(self.zone).date()

    @property
    def diagnosis_date(self) -> dt.date:
        return self.enrolled_at.astimezone(self.zone).date()

    def skew_at(self, moment: dt.datetime) -> int:
        """The meter's clock error (seconds) at ``moment``."""
        if self.clock_skew_s and (self.clock_fixed_at is None or moment < self.clock_fixed_at):
            return self.clock_skew_s
        return 0

    def features(self) -> list[str]:
        found = [self.device_kind, self.treatment]
        if self.drift_per_day >= 0.3:
            found.append("fasting drifts up")
        if self.control >= 1.35:
            found.append("high post-meal peaks")
        if self.adherence < 0.8:
            found.append("skips readings")
        if self.stop_at is not None:
            found.append("stops measuring")
        if self.clock_skew_s:
            found.append("wrong meter clock")
        if self.resyncs:
            found.append("full-memory re-syncs")
        if self.hypo_rate > 0 or self.hypo_every:
            found.append("hypoglycaemias")
        return found + [f for f in self.care.features() if f != self.treatment]


@dataclass(frozen=True, slots=True)
class Reading:
    """One measurement as the device keeps it."""

    taken_at: dt.datetime  # true instant, UTC
    stamp: dt.datetime  # the device's own timestamp (its clock may be wrong), UTC
    value: float  # as the device sends it, in its unit
    value_mgdl: float
    kind: str  # smbg | cgm
    seq: int  # the device's own record number
    context: str | None = None
    meal: str | None = None
    minutes_after_meal: int | None = None
    flags: tuple[str, ...] = ()
    event: str | None = None  # hypo_l1 | hypo_l2 | typo | control

    @property
    def key(self) -> tuple[str, dt.datetime, float]:
        """What telemon deduplicates on (with the device): kind, the device's timestamp, the value."""
        return (self.kind, self.stamp, self.value)


@dataclass(frozen=True)
class Sync:
    """One message a device sends: its readings at instant ``at`` (simulated time)."""

    at: dt.datetime
    patient: PatientPlan
    readings: tuple[Reading, ...]
    full_memory: bool = False
    clock_skew_s: int = 0  # the device's clock error when it sends (its device_time)
    measures: tuple[Measure, ...] = ()  # the other item kinds sent with the readings

    @property
    def size(self) -> int:
        """Items in the message: readings and measurements."""
        return len(self.readings) + len(self.measures)


# ---------------------------------------------------------------------------------------------------------------
# The cohort
# ---------------------------------------------------------------------------------------------------------------

WEEK = 7


def _at(moment: dt.datetime, days: float) -> dt.datetime:
    return (moment + dt.timedelta(days=days)).replace(microsecond=0)


def make_cohort(spec: CohortSpec) -> list[PatientPlan]:
    """The cohort of ``spec``: ``spec.cgm`` CGM wearers, the others with a meter (MQTT) or a phone app (HTTP).

    Small cohorts still hold every feature: the first non-CGM patients are, in order, an insulin-treated meter
    patient with a hypoglycaemia every third day, an app patient who stops measuring 2–3 days before
    ``created``, a meter with a wrong clock that is fixed a day before ``created`` and then re-sends its whole
    memory, an app patient who mistypes a manual entry every other day and delivers 1.5 days before ``created``,
    and a meter patient who skips readings and whose fasting glucose drifts up; the first CGM wearer is on insulin
    with a hypoglycaemia every fourth day.

    The measurement roles (:mod:`tools.simulator.measures`): the insulin patient with hypoglycaemias also has a
    raised blood ketone (skipped meals on insulin), the patient whose fasting glucose drifts up also has a blood
    pressure rising above 140/90 (late pregnancy, the two often go together); the next patients, when the cohort
    has them, have the single 165/112 reading and a basal-prandial insulin regimen (else the meter with the
    wrong clock has the first and the insulin patient the second)."""
    rng = np.random.default_rng([spec.seed, 0xC0_40])
    order = [int(i) for i in rng.permutation(spec.patients)]
    cgm = set(order[: spec.cgm])
    slots = [i for i in order if i not in cgm]
    roles: dict[int, tuple[str, ...]] = {}
    base = ("hypos", "stops", "wrong-clock", "delivers", "drifts")
    for slot, role in zip(slots, base, strict=False):
        roles[slot] = (role,)
    if order[: spec.cgm]:
        roles[order[0]] = ("cgm-hypos",)
    holder = {role: slot for slot, held in roles.items() for role in held}
    placed = {KETONES: "hypos", BP_RISING: "drifts", BP_URGENT: "wrong-clock", BASAL_PRANDIAL: "hypos"}
    spare = iter(slots[len(base) :])
    for role in (KETONES, BP_RISING, BP_URGENT, BASAL_PRANDIAL):
        owner: int | None = holder.get(placed[role])
        if role in (BP_URGENT, BASAL_PRANDIAL):
            owner = next(spare, owner)
        if owner is not None:
            roles[owner] = (*roles.get(owner, ()), role)
    return [_patient(spec, i, "cgm" if i in cgm else None, roles.get(i, ())) for i in range(spec.patients)]


def _patient(spec: CohortSpec, index: int, kind: str | None, roles: tuple[str, ...]) -> PatientPlan:
    role = roles[0] if roles and roles[0] not in (KETONES, BP_RISING, BP_URGENT, BASAL_PRANDIAL) else None
    rng = np.random.default_rng([spec.seed, index, 0x9A])
    created = spec.created
    profile = str(rng.choice(["FR", "NICE", "ADA"], p=[0.8, 0.1, 0.1]))
    zone = ZoneInfo(ZONES[profile])
    if kind is None:
        kind = "meter" if rng.random() < 0.55 else "app"
    if role in ("hypos", "wrong-clock", "drifts"):
        kind = "meter"
    elif role in ("stops", "delivers"):
        kind = "app"
    treatment = str(rng.choice(["diet", "metformin", "insulin"], p=[0.62, 0.1, 0.28]))
    if role in ("hypos", "cgm-hypos") or BASAL_PRANDIAL in roles:
        treatment = "insulin"
    elif role in ("stops", "wrong-clock", "delivers", "drifts"):
        treatment = "diet"

    # pregnancy: gestational age (days) at ``created``, enrolment at 24–28 weeks, delivery at 38–41 weeks
    enrol_ga = int(rng.integers(24 * WEEK, 28 * WEEK + 1))
    deliver_ga = (
        int(rng.integers(38 * WEEK, 39 * WEEK + 4))
        if treatment == "insulin"
        else int(rng.integers(39 * WEEK, 41 * WEEK + 1))
    )
    history_days = (created - spec.start).total_seconds() / 86400
    if role == "delivers":
        ga_now = deliver_ga + 1.5
    elif roles:
        ga_now = min(enrol_ga + history_days + 3, 37 * WEEK)  # followed through the whole history
    else:
        ga_now = float(rng.uniform(29 * WEEK, 37 * WEEK + 3))
    conception = created - dt.timedelta(days=ga_now)
    enrolled_at = _at(conception, enrol_ga)
    delivery_at = _at(conception, deliver_ga + float(rng.uniform(0, 1)))
    due_date = (conception + dt.timedelta(days=PREGNANCY_DAYS)).astimezone(zone).date()

    fasting_base = float(np.clip(rng.normal(*FASTING_BASE), FASTING_FLOOR, FASTING_CEILING))
    drift = float(rng.uniform(0.3, 1.2)) if rng.random() < DRIFT_SHARE else float(rng.normal(0.0, 0.1))
    control = float(np.exp(rng.normal(0.0, CONTROL_SD)))
    adherence = float(rng.uniform(0.9, 1.0)) if rng.random() < 0.8 else float(rng.uniform(0.5, 0.8))
    if role == "drifts":
        drift, adherence = float(rng.uniform(0.8, 1.5)), float(rng.uniform(0.55, 0.7))
    if treatment == "insulin":
        # the dose is raised until her fasting tests are in target: she sits under it as the diet patients do
        drift, control = 0.0, control * 0.85
    hypo_rate = 0.07 if treatment == "insulin" else 0.0
    hypo_every = {"hypos": 3, "cgm-hypos": 4}.get(role or "", 0)

    stop_at = None
    if role == "stops":
        stop_at = _at(created, -float(rng.uniform(2.3, 3.0)))
    elif not roles and rng.random() < 0.05:
        stop_at = _at(created, float(rng.uniform(-history_days / 2, 30)))

    clock_skew_s: int = 0
    clock_fixed_at: dt.datetime | None = None
    resyncs: tuple[dt.datetime, ...] = ()
    daily_sync = False
    if kind == "meter":
        daily_sync = bool(rng.random() < 0.35)
        if role == "wrong-clock":
            clock_skew_s = int(rng.choice([3 * 3600 + 17 * 60, -(1 * 3600 + 42 * 60)]))
            clock_fixed_at = _at(created, -float(rng.uniform(1.0, 1.25)))
            resyncs = (clock_fixed_at + dt.timedelta(minutes=3),)
        elif not roles:
            if rng.random() < 0.15:  # a clock not set to summer or winter time, or set wrong
                clock_skew_s = int(rng.choice([3600, -3600, 2 * 3600 + 11 * 60, -(26 * 3600 + 5 * 60)]))
                fixed = float(rng.uniform(-history_days, 20))
                clock_fixed_at = _at(created, fixed) if rng.random() < 0.6 else None
            if rng.random() < 0.2:
                resyncs = tuple(sorted(_at(created, float(rng.uniform(-history_days, 25))) for _ in range(2)))
            if clock_fixed_at is not None:
                resyncs = tuple(sorted({*resyncs, clock_fixed_at + dt.timedelta(minutes=3)}))
    unit = {"FR": MGDL, "NICE": MMOLL, "ADA": MGDL}[profile]
    if kind == "app" and profile == "FR" and rng.random() < 0.5:
        unit = GL  # French apps often show g/L
    if kind == "cgm":
        unit = MGDL
    first = FIRST_NAMES[int(rng.integers(len(FIRST_NAMES)))]
    initial = chr(ord("A") + int(rng.integers(26)))
    return PatientPlan(
        index=index,
        external_id=f"SIM-{spec.seed}-{index + 1:03d}",
        # a name as a French maternity writes it; that she is simulated is said by her data (hospital number
        # SIM-<seed>-<n>, the demo's team), not by an English word glued to her name
        display_name=f"{first} {initial}.",
        time_zone=str(zone),
        profile=profile,
        treatment=treatment,
        readings_per_day=6 if rng.random() < 0.25 else 4,
        device_kind=kind,
        unit=unit,
        due_date=due_date,
        enrolled_at=enrolled_at,
        delivery_at=delivery_at,
        postpartum_days=2 if rng.random() < 0.3 else 0,
        fasting_base=fasting_base,
        drift_per_day=drift,
        control=control * (HIGH_PEAKS if rng.random() < HIGH_PEAKS_SHARE else 1.0),
        post_meal_minutes=120 if profile == "FR" else (60 if profile == "NICE" else int(rng.choice([60, 120]))),
        adherence=adherence,
        hypo_rate=hypo_rate,
        hypo_every=hypo_every,
        hypo_phase=int(rng.integers(max(hypo_every, 1))),
        stop_at=stop_at,
        clock_skew_s=clock_skew_s,
        clock_fixed_at=clock_fixed_at,
        resyncs=resyncs,
        daily_sync=daily_sync,
        tags_context=bool(rng.random() < 0.6) if kind != "app" else True,
        typo_rate=0.08 if kind == "app" else 0.0,
        typo_every=2 if role == "delivers" else 0,
        cgm_phase_s=int(rng.integers(300)),
        sensor_phase=int(rng.integers(10)),
        roles=roles,
        care=draw_care(spec.seed, index, treatment, profile, roles, created),
    )


# ---------------------------------------------------------------------------------------------------------------
# A day of readings
# ---------------------------------------------------------------------------------------------------------------


def quantize(value_mgdl: float, unit: str) -> float:
    """The value a device shows in ``unit``: whole mg/dL, 0.1 mmol/L, 0.01 g/L."""
    value = value_mgdl / TO_MGDL[unit]
    digits = {MGDL: 0, MMOLL: 1, GL: 2}[unit]
    return float(round(value, digits))


def excursion(minutes: float, peak_min: float) -> float:
    """Shape of a post-meal rise: gamma-like, 0 at the meal, 1 at ``peak_min``, back near 0 after ~4 peaks."""
    if minutes <= 0:
        return 0.0
    x = minutes / peak_min
    return x * math.exp(1.0 - x)


@dataclass
class _Day:
    """What one day of a patient shares between meter and CGM: her fasting level, meals, a planned hypo."""

    fasting: float
    meal_minute: dict[str, float]
    meal_rise: dict[str, float]
    hypo: tuple[str, float, float] | None  # (slot, local minute, nadir mg/dL)
    rng: np.random.Generator


def _day(spec: CohortSpec, p: PatientPlan, day: dt.date) -> _Day:
    rng = np.random.default_rng([spec.seed, p.index, day.toordinal(), 0xDA])
    # the drift runs from the start of the simulated history (or the enrolment), and stops MAX_DRIFT up
    since = max(0.0, (local_instant(day, 7 * 60, p.zone) - max(p.enrolled_at, spec.start)).total_seconds() / 86400)
    fasting = p.fasting_base + min(p.drift_per_day * since, MAX_DRIFT) + float(rng.normal(0.0, 4.0))
    meal_minute = {m: MEAL_MINUTE[m] + float(rng.normal(0.0, MEAL_SD_MIN[m])) for m in MEALS}
    meal_rise = {m: MEAL_RISE[m] * p.control * float(np.exp(rng.normal(0.0, 0.25))) for m in MEALS}
    if p.treatment == "insulin":
        fasting = min(fasting, 118.0)
    hypo = None
    ordinal = day.toordinal()
    planned = (p.hypo_every and ordinal % p.hypo_every == p.hypo_phase) or rng.random() < p.hypo_rate
    if planned and day < p.delivery_date:  # glycaemic rules stop at the delivery day: no hypo is planned there
        slot = str(rng.choice(["before_lunch", "night", "afternoon"]))
        minute = {"before_lunch": 11 * 60 + 40, "night": 3 * 60 + 15, "afternoon": 16 * 60 + 20}[slot]
        minute_f = minute + float(rng.uniform(-10, 10))
        nadir = float(rng.uniform(45.0, 53.0)) if rng.random() < 0.25 else float(rng.uniform(56.0, 68.0))
        hypo = (slot, minute_f, nadir)
    return _Day(fasting, meal_minute, meal_rise, hypo, rng)


def _alive(p: PatientPlan, spec: CohortSpec, moment: dt.datetime) -> bool:
    """Whether the patient measures at ``moment`` (enrolled, not stopped, not delivered)."""
    if moment < spec.start or moment < p.enrolled_at or moment >= p.delivery_at:
        return False
    return p.stop_at is None or moment < p.stop_at


def day_readings(spec: CohortSpec, p: PatientPlan, day: dt.date) -> list[Reading]:
    """The readings patient ``p``'s device takes on local date ``day``, in time order."""
    if p.device_kind == "cgm":
        return _cgm_day(spec, p, day)
    return _meter_day(spec, p, day)


def _reading(p: PatientPlan, taken_at: dt.datetime, mgdl: float, kind: str, seq: int, **extra: object) -> Reading:
    value = quantize(mgdl, p.unit)
    return Reading(
        taken_at=taken_at,
        stamp=taken_at + dt.timedelta(seconds=p.skew_at(taken_at)),
        value=value,
        value_mgdl=value * TO_MGDL[p.unit],
        kind=kind,
        seq=seq,
        **extra,  # type: ignore[arg-type]
    )


def _hypo_value(p: PatientPlan, nadir: float) -> float:
    """A value below the hypoglycaemia threshold of its level once rounded to the device's unit."""
    level_low, level_high = (0.0, HYPO_L2) if nadir < HYPO_L2 else (HYPO_L2, HYPO_L1)
    value = nadir
    for _ in range(20):
        shown = quantize(value, p.unit) * TO_MGDL[p.unit]
        if level_low <= shown < level_high and shown >= 40:
            return value
        value += -0.5 if shown >= level_high else 0.5
    return value


def _meter_day(spec: CohortSpec, p: PatientPlan, day: dt.date) -> list[Reading]:
    d = _day(spec, p, day)
    rng = d.rng
    zone = p.zone
    base_seq = (day.toordinal() % 100_000) * 100
    postpartum = day > p.delivery_date
    planned: list[tuple[float, str, str | None, int | None, float]] = []  # minute, context, meal, mam, mg/dL

    fasting_minute = min(7 * 60 + float(rng.normal(0, 20)), d.meal_minute["breakfast"] - 10)
    planned.append((fasting_minute, "fasting", None, None, d.fasting))
    for meal in MEALS:
        pre = d.fasting + 3.0 + float(rng.normal(0, 4))
        if p.readings_per_day >= 6 and meal != "breakfast":
            planned.append((d.meal_minute[meal] - 15 + float(rng.normal(0, 5)), "before_meal", meal, None, pre))
        after = p.post_meal_minutes + float(rng.normal(0, 8))
        rise = d.meal_rise[meal] * excursion(after, METER_PEAK_MIN)
        planned.append((d.meal_minute[meal] + after, "after_meal", meal, p.post_meal_minutes, pre + rise))

    readings: list[Reading] = []
    for k, (minute, context, meal_of, mam, mgdl) in enumerate(planned):
        taken = rng.random() < p.adherence
        noise = float(rng.normal(0.0, 0.03))
        if not taken:
            continue
        value = float(np.clip(mgdl * (1 + noise), SAFE_FLOOR, 350.0))
        at = local_instant(day, minute, zone)
        if postpartum:  # after the delivery day: a few normal fasting readings, then nothing
            if context != "fasting" or (day - p.delivery_date).days > p.postpartum_days:
                continue
            value = float(np.clip(rng.normal(82, 5), SAFE_FLOOR, 95))
        tags = {"context": context, "meal": meal_of, "minutes_after_meal": mam} if p.tags_context else {}
        readings.append(_reading(p, at, value, "smbg", base_seq + k, **tags))

    if d.hypo is not None and not postpartum:
        slot, minute, nadir = d.hypo
        hypo_context = {"before_lunch": "before_meal", "night": "night", "afternoon": "unspecified"}[slot]
        hypo_meal = "lunch" if slot == "before_lunch" else None
        at = local_instant(day, minute, zone)
        value = _hypo_value(p, nadir)
        event = "hypo_l2" if quantize(value, p.unit) * TO_MGDL[p.unit] < HYPO_L2 else "hypo_l1"
        tags = {"context": hypo_context, "meal": hypo_meal} if p.tags_context else {}
        readings.append(_reading(p, at, value, "smbg", base_seq + 20, event=event, **tags))
        recheck = float(rng.uniform(82.0, 100.0))
        readings.append(_reading(p, at + dt.timedelta(minutes=15), recheck, "smbg", base_seq + 21, **tags))

    if p.device_kind == "meter" and rng.random() < 0.05:  # a control-solution test (stored, not glucose)
        at = local_instant(day, 10 * 60 + float(rng.uniform(0, 60)), zone)
        value = float(rng.uniform(110.0, 130.0))
        readings.append(_reading(p, at, value, "smbg", base_seq + 30, flags=("control_solution",), event="control"))

    mistyped = (p.typo_every and day.toordinal() % p.typo_every == 0) or rng.random() < p.typo_rate
    if readings and mistyped and not postpartum:  # a mistyped manual entry, refused by telemon
        victim = readings[int(rng.integers(len(readings)))]
        at = victim.taken_at - MINUTE
        readings.append(_reading(p, at, victim.value_mgdl * 10, "smbg", base_seq + 40, flags=("manual",), event="typo"))
    if postpartum:
        readings = [r for r in readings if r.event is None and r.taken_at >= spec.start and r.taken_at >= p.enrolled_at]
    else:
        readings = [r for r in readings if _alive(p, spec, r.taken_at)]
    if p.stop_at is not None:
        readings = [r for r in readings if r.taken_at < p.stop_at]
    return sorted(readings, key=_order)


def _order(r: Reading) -> tuple[dt.datetime, int]:
    return (r.taken_at, r.seq)


def _run_around(low: npt.NDArray[np.bool_], k: int) -> npt.NDArray[np.bool_]:
    """The run of consecutive ``low`` positions that holds position ``k`` (none if ``k`` is not low)."""
    run = np.zeros(len(low), dtype=bool)
    if not low[k]:
        return run
    lo, hi = k, k + 1
    while lo > 0 and low[lo - 1]:
        lo -= 1
    while hi < len(low) and low[hi]:
        hi += 1
    run[lo:hi] = True
    return run


def _one_episode(values: npt.NDArray[np.float64], in_dip: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """A planned CGM dip as the one hypoglycaemia it is planned as: the run of readings below 70 mg/dL around its
    lowest one, and within that run one run below 54 (when it goes that low). Sensor noise in the dip's flanks
    would otherwise add lows apart from it (a second episode, which telemon folds into the first alert) or break
    the run below 54 in two: the plan could not say which readings make the alert."""
    dip = np.flatnonzero(in_dip)
    k = int(dip[np.argmin(values[dip])])
    below_l1 = _run_around(in_dip & (values < HYPO_L1), k)
    values = np.where(in_dip & ~below_l1, np.maximum(values, SAFE_FLOOR), values)
    below_l2 = _run_around(below_l1 & (values < HYPO_L2), k)
    return np.where(below_l1 & ~below_l2, np.maximum(values, HYPO_L2), values)


def _cgm_day(spec: CohortSpec, p: PatientPlan, day: dt.date) -> list[Reading]:
    d = _day(spec, p, day)
    rng = d.rng
    zone = p.zone
    begin = local_instant(day, 0, zone) + dt.timedelta(seconds=p.cgm_phase_s)
    end = local_instant(day + DAY, 0, zone) + dt.timedelta(seconds=p.cgm_phase_s)
    n = int((end - begin) / CGM_STEP)
    minutes = np.arange(n) * 5.0 + p.cgm_phase_s / 60.0  # local minutes since midnight (DST days drift an hour)
    level = np.full(n, d.fasting - 4.0)
    level += 7.0 * np.clip((minutes - 4 * 60) / 180.0, 0, 1) * np.clip((10 * 60 - minutes) / 120.0, 0, 1)  # dawn
    meals = dict(d.meal_minute)
    rises = {m: r * 1.1 for m, r in d.meal_rise.items()}
    if rng.random() < 0.5:
        meals["snack"], rises["snack"] = 16 * 60 + float(rng.normal(0, 30)), float(rng.uniform(10, 22))
    for meal, at in meals.items():
        x = np.maximum(minutes - at, 0.0) / CGM_PEAK_MIN
        level += rises[meal] * x * np.exp(1.0 - x)
    noise = np.empty(n)
    e = float(rng.normal(0, 4.0))
    shocks = rng.normal(0, 2.2, n)
    for k in range(n):  # AR(1) sensor noise, SD about 4 mg/dL
        e = 0.85 * e + float(shocks[k])
        noise[k] = e
    values = level + noise

    in_dip = np.zeros(n, dtype=bool)
    dip_centre = None
    if d.hypo is not None:
        _, centre, nadir = d.hypo
        dip_centre = centre
        near = np.abs(minutes - centre)
        depth = max(0.0, float(np.interp(centre, minutes, level)) - nadir)
        values = values - depth * np.exp(-0.5 * (near / 18.0) ** 2)
        in_dip = near <= 75
        window = np.flatnonzero(near <= 30)
        if len(window) and values[window].min() >= HYPO_L1:
            values[window[np.argmin(values[window])]] = nadir
    values = np.where(in_dip, values, np.maximum(values, SAFE_FLOOR))
    values = np.clip(np.round(values), 40, 400)
    if dip_centre is not None:
        values = _one_episode(values, in_dip)

    keep = np.ones(n, dtype=bool)
    gaps: list[tuple[float, float]] = []
    if rng.random() < 0.3:  # signal loss
        start = float(rng.uniform(0, 1440))
        gaps.append((start, start + float(rng.uniform(15, 150))))
    if (day.toordinal() + p.sensor_phase) % 10 == 0:  # sensor change: 2-hour warm-up
        gaps.append((9 * 60.0, 11 * 60.0))
    for a, b in gaps:
        if dip_centre is not None and a - 90 < dip_centre < b + 90:
            continue  # never split a hypoglycaemia: the plan would not know which readings made it
        keep &= ~((minutes >= a) & (minutes < b))

    readings: list[Reading] = []
    base_seq = (day.toordinal() % 100_000) * 1000
    for position in np.flatnonzero(keep).tolist():
        value = float(values[position])
        event = None
        if in_dip[position] and value < HYPO_L1:
            event = "hypo_l2" if value < HYPO_L2 else "hypo_l1"
        taken_at = begin + CGM_STEP * position
        readings.append(_reading(p, taken_at, value, "cgm", base_seq + position, event=event))
    return [r for r in readings if _alive(p, spec, r.taken_at)]


def measures_of_day(spec: CohortSpec, p: PatientPlan, day: dt.date) -> list[Measure]:
    """What patient ``p`` logs on local date ``day`` besides her glucose (doses, ketones, weight, blood pressure),
    stamped by her device's clock."""
    meals = _day(spec, p, day).meal_minute
    found = day_measures(spec.seed, p.index, p.care, day, p.zone, meals, lambda at: _alive(p, spec, at))
    return [dataclasses.replace(m, stamp=m.taken_at + dt.timedelta(seconds=p.skew_at(m.taken_at))) for m in found]


# ---------------------------------------------------------------------------------------------------------------
# Syncs
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class DeviceTimeline:
    """A patient's readings and syncs, generated day by day on demand (and kept)."""

    spec: CohortSpec
    patient: PatientPlan
    _days: dict[dt.date, list[Reading]] = field(default_factory=dict)
    _measure_days: dict[dt.date, list[Measure]] = field(default_factory=dict)

    def day(self, day: dt.date) -> list[Reading]:
        found = self._days.get(day)
        if found is None:
            found = self._days[day] = day_readings(self.spec, self.patient, day)
        return found

    def day_measures(self, day: dt.date) -> list[Measure]:
        found = self._measure_days.get(day)
        if found is None:
            found = self._measure_days[day] = measures_of_day(self.spec, self.patient, day)
        return found

    def forget(self, before: dt.date) -> None:
        """Drop the kept days before ``before`` (a live run keeps only what later syncs may still need)."""
        for kept in (self._days, self._measure_days):
            for day in [d for d in kept if d < before]:
                del kept[day]

    def readings(self, since: dt.datetime, until: dt.datetime) -> list[Reading]:
        """Readings taken in ``[since, until)``."""
        zone = self.patient.zone
        day = since.astimezone(zone).date() - DAY
        last = until.astimezone(zone).date() + DAY
        found: list[Reading] = []
        while day <= last:
            found.extend(r for r in self.day(day) if since <= r.taken_at < until)
            day += DAY
        return found

    def measures(self, since: dt.datetime, until: dt.datetime) -> list[Measure]:
        """Measurements taken in ``[since, until)``."""
        zone = self.patient.zone
        day = since.astimezone(zone).date() - DAY
        last = until.astimezone(zone).date() + DAY
        found: list[Measure] = []
        while day <= last:
            found.extend(m for m in self.day_measures(day) if since <= m.taken_at < until)
            day += DAY
        return found

    def sync_instant(self, r: Reading | Measure) -> dt.datetime:
        """When the device sends reading or measurement ``r`` in its ordinary syncs (a CGM wearer's measurements
        are sent by her phone, as an app sends them)."""
        p = self.patient
        if p.device_kind == "cgm" and isinstance(r, Reading):
            return r.taken_at + MINUTE
        if p.device_kind in ("app", "cgm"):
            return r.taken_at + dt.timedelta(seconds=20 + r.seq % 40)
        if not p.daily_sync:
            return r.taken_at + dt.timedelta(seconds=60 + (r.seq * 37) % 180)
        local = r.taken_at.astimezone(p.zone)
        day = local.date() if local.hour * 60 + local.minute < DAILY_SYNC_MINUTE else local.date() + DAY
        return local_instant(day, DAILY_SYNC_MINUTE, p.zone)

    def syncs(self, after: dt.datetime, until: dt.datetime) -> list[Sync]:
        """The messages the device sends at instants in ``(after, until]``, in order."""
        p = self.patient
        lag = dt.timedelta(days=2)
        grouped: dict[dt.datetime, tuple[list[Reading], list[Measure]]] = {}
        for r in self.readings(max(self.spec.start, after - lag), until):
            at = self.sync_instant(r)
            if after < at <= until:
                grouped.setdefault(at, ([], []))[0].append(r)
        for m in self.measures(max(self.spec.start, after - lag), until):
            at = self.sync_instant(m)
            if after < at <= until:
                grouped.setdefault(at, ([], []))[1].append(m)
        found = [Sync(at, p, tuple(rs), False, p.skew_at(at), tuple(ms)) for at, (rs, ms) in grouped.items()]
        for at in p.resyncs:
            if after < at <= until and at > self.spec.start:
                memory = self.readings(self.spec.start, at)[-METER_MEMORY:]
                for i in range(0, len(memory), CHUNK):
                    found.append(Sync(at, p, tuple(memory[i : i + CHUNK]), True, p.skew_at(at)))
        found.sort(key=lambda s: (s.at, s.full_memory))
        return found


def all_syncs(timelines: Iterable[DeviceTimeline], after: dt.datetime, until: dt.datetime) -> list[Sync]:
    found = [s for t in timelines for s in t.syncs(after, until)]
    found.sort(key=lambda s: (s.at, s.patient.index, s.full_memory))
    return found
