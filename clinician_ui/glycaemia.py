"""Judging readings against a patient's targets, for the logbook, the charts and the triage figures.

One implementation, taken from the engine's own profiles (alerts.profiles), so that the dashboard colours a
reading exactly as the rules judge it: a reading is *in target* iff ``value < target`` (guidelines say
"< 95 mg/dL"), *above* iff ``value >= target``; after-meal readings are judged against the 1 h or the 2 h target
(``alerts.profiles.post_meal_target``); *hypo* is below 70 mg/dL (ADA level 1), or below 4.0 mmol/L for a NICE
patient on insulin (NICE NG3). Readings flagged ``control_solution`` are not glucose.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from alerts import profiles as P
from alerts.cohort import PROFILE
from telemon import meal_context

SLOTS = ("fasting", "breakfast", "lunch", "dinner", "other")
IN, ABOVE, HYPO, NONE, CONTROL = "in", "above", "hypo", "none", "control"
# How bad a cell is when it holds several readings: the worst one colours it.
_WORST = {CONTROL: 0, NONE: 1, IN: 2, ABOVE: 3, HYPO: 4}

# An after-meal reading without its meal is placed by its local time, with the meal windows of the one inference
# (telemon.meal_context: breakfast until 12:00, lunch until 16:00).
_MEAL_BY_HOUR = (
    (meal_context.BREAKFAST_END // 60, "breakfast"),
    (meal_context.LUNCH_END // 60, "lunch"),
    (24, "dinner"),
)

CGM_LOW = P.CGM_RANGE_LOW_MGDL  # 63 mg/dL, Battelino 2019 pregnancy range
CGM_HIGH = P.CGM_RANGE_HIGH_MGDL  # 140 mg/dL
CGM_VERY_LOW = P.HYPO_L2_MGDL  # 54 mg/dL
# Level 2 hyperglycaemia, > 250 mg/dL (Battelino 2019; in pregnancy it is counted within "above 140")
CGM_VERY_HIGH = 250.0
SUFFICIENT_DAYS = 14  # Battelino 2019: time in ranges is judged on 14 days of sensor data...
SUFFICIENT_WEAR_PCT = 70  # ...worn at least 70 % of the time


@dataclass(frozen=True)
class Targets:
    """One patient's targets in mg/dL (after the patient's overrides) and how they are applied."""

    profile: str
    fasting: float
    post_1h: float  # NaN: the profile has no 1 h target
    post_2h: float
    defaults: tuple[float, float, float]  # the profile's own (fasting, 1 h, 2 h), for the edit form
    hypo: float  # below: hypoglycaemia

    @property
    def usual_post(self) -> float:
        """The after-meal target used for a reading of unknown delay (the profile's usual test)."""
        profile = P.PROFILES[PROFILE[self.profile]]
        if profile.usual_post == "post_1h" and not math.isnan(self.post_1h):
            return self.post_1h
        return self.post_2h


def targets_for(profile: str, treatment: str, overrides: Mapping[str, Any] | str | None) -> Targets:
    if not overrides:
        return _plain_targets(profile, treatment)
    return _targets(profile, treatment, overrides)


@functools.lru_cache(maxsize=16)
def _plain_targets(profile: str, treatment: str) -> Targets:
    return _targets(profile, treatment, None)


def _targets(profile: str, treatment: str, overrides: Mapping[str, Any] | str | None) -> Targets:
    code = PROFILE[profile]
    got = P.patient_targets([code], [overrides])
    base = P.PROFILES[code]
    hypo = P.NICE_INSULIN_FLOOR_MGDL if profile == "NICE" and treatment == "insulin" else P.HYPO_L1_MGDL
    return Targets(
        profile=profile,
        fasting=float(got.fasting[0]),
        post_1h=float(got.post_1h[0]),
        post_2h=float(got.post_2h[0]),
        defaults=(base.fasting, base.post_1h, base.post_2h),
        hypo=hypo,
    )


def slot_of(context: str, meal: str | None, local_hour: int) -> str:
    if context == "fasting":
        return "fasting"
    if context == "after_meal":
        if meal in ("breakfast", "lunch", "dinner"):
            return meal
        if meal is None:
            return next(name for hour, name in _MEAL_BY_HOUR if local_hour < hour)
    return "other"


@dataclass(frozen=True)
class Judgement:
    status: str  # IN, ABOVE, HYPO, NONE, CONTROL
    target: float | None  # the fasting or after-meal target of the reading's slot (mg/dL); None: no target


def judge(
    targets: Targets,
    value_mgdl: float,
    context: str,
    meal: str | None,
    minutes_after_meal: int | None,
    flags: Sequence[str] = (),
) -> Judgement:
    return judge_many(targets, [value_mgdl], [context], [meal], [minutes_after_meal], [flags])[0]


def judge_many(
    targets: Targets,
    values: Sequence[float],
    contexts: Sequence[str],
    meals: Sequence[str | None],
    minutes_after_meal: Sequence[int | None],
    flags: Sequence[Sequence[str]],
) -> list[Judgement]:
    """Judge readings of one patient; the after-meal target of each comes from the engine's own choice
    (``alerts.profiles.post_meal_target``), computed once for all of them."""
    n = len(values)
    if n == 0:
        return []
    minutes = np.array([-1 if m is None else m for m in minutes_after_meal], dtype=np.int16)
    post, _ = P.post_meal_target(
        minutes,
        np.full(n, PROFILE[targets.profile], dtype=np.int8),
        np.full(n, targets.post_1h),
        np.full(n, targets.post_2h),
    )
    post_targets: list[float] = post.tolist()
    out: list[Judgement] = []
    for value, context, meal, reading_flags, post_target in zip(
        values, contexts, meals, flags, post_targets, strict=True
    ):
        if "control_solution" in reading_flags:
            out.append(Judgement(CONTROL, None))
            continue
        target: float | None = None
        if context == "fasting":
            target = targets.fasting
        elif context == "after_meal" and meal != "snack":
            target = post_target
        if target is not None and math.isnan(target):
            target = None
        if "lo" in reading_flags or value < targets.hypo:
            out.append(Judgement(HYPO, target))
        elif "hi" in reading_flags:
            out.append(Judgement(ABOVE, target))
        elif target is None:
            out.append(Judgement(NONE, None))
        else:
            out.append(Judgement(ABOVE if value >= target else IN, target))
    return out


def worst(statuses: Sequence[str]) -> str:
    return max(statuses, key=lambda s: _WORST[s]) if statuses else NONE


# --- the logbook ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    reading_id: int
    local: dt.datetime
    value_mgdl: float
    judgement: Judgement
    flags: tuple[str, ...]
    context: str
    meal: str | None
    minutes_after_meal: int | None


@dataclass(frozen=True)
class Dose:
    """An insulin dose as a French GDM logbook writes it: "6 U" beside the readings of the meal it was given
    before, the evening's basal dose in the night/bedtime column (``dose_column``)."""

    measurement_id: int
    local: dt.datetime
    units: float
    insulin: str | None  # basal, rapid, premixed (None: the device named only the product)
    product: str | None


@dataclass
class Cell:
    entries: list[Entry]
    doses: list[Dose] = field(default_factory=list)

    @property
    def status(self) -> str:
        return worst([e.judgement.status for e in self.entries])


@dataclass
class LogbookDay:
    day: dt.date
    cells: dict[str, Cell]


def judge_rows(targets: Targets, rows: Sequence[Mapping[str, Any]]) -> list[Judgement]:
    """``judge_many`` over reading rows (value_mgdl, context, meal, minutes_after_meal, flags)."""
    return judge_many(
        targets,
        [row["value_mgdl"] for row in rows],
        [row["context"] for row in rows],
        [row["meal"] for row in rows],
        [row["minutes_after_meal"] for row in rows],
        [tuple(row["flags"] or ()) for row in rows],
    )


def placed_rows(rows: Sequence[Any], zone: dt.tzinfo) -> list[dict[str, Any]]:
    """Meter reading rows (in time order) as dicts, those sent without a context placed among the readings of
    their local day by the one inference the alert engine uses (telemon.meal_context): the logbook shows a
    reading in the slot the engine judged it in."""
    out = [dict(row) for row in rows]
    local = [row["measured_at"].astimezone(zone) for row in out]
    for row in out:
        row.setdefault("kind", "smbg")
    placed = meal_context.place_rows(out, [(t.toordinal(), t.hour * 60 + t.minute) for t in local])
    for row, (context, meal) in zip(out, placed, strict=True):
        if row.get("context_inferred"):
            row["context"], row["meal"] = context, meal
    return out


# The logbook column of a dose by the slot its device sent: a dose before breakfast, lunch or dinner beside that
# meal's readings; a bedtime dose in the night/bedtime column ("other").
_DOSE_COLUMN = {"breakfast": "breakfast", "lunch": "lunch", "dinner": "dinner", "bedtime": "other"}
# Without a slot, by the window of its local time (telemon.meal_context: night, breakfast, lunch, dinner, bedtime).
_DOSE_COLUMN_BY_WINDOW = ("other", "breakfast", "lunch", "dinner", "other")
_DINNER_WINDOW = 3


def dose_column(slot: str | None, insulin: str | None, local_minute: int) -> str:
    """The logbook column of an insulin dose: its ``slot`` when the device sent one, else the meal window of its
    local time (the one inference of ``telemon.meal_context``); a basal dose of the evening (dinner window or later,
    or the night) belongs to the night/bedtime column, since it covers the night, not the dinner."""
    if slot in _DOSE_COLUMN:
        return _DOSE_COLUMN[slot]
    window = meal_context.window_of(local_minute)
    if insulin == "basal" and window >= _DINNER_WINDOW:
        return "other"
    return _DOSE_COLUMN_BY_WINDOW[window]


def place_doses(grid: Mapping[dt.date, LogbookDay], doses: Sequence[Any], zone: dt.tzinfo) -> None:
    """Put insulin dose rows (``id``, ``measured_at``, ``value`` in units, ``insulin``, ``product``, ``slot``) in the
    cells of their local day, in time order."""
    for row in doses:
        local = row["measured_at"].astimezone(zone)
        day = grid.get(local.date())
        if day is None:
            continue
        column = dose_column(row["slot"], row["insulin"], local.hour * 60 + local.minute)
        day.cells[column].doses.append(Dose(row["id"], local, float(row["value"]), row["insulin"], row["product"]))
    for found in grid.values():
        for cell in found.cells.values():
            cell.doses.sort(key=lambda d: d.local)


def logbook(
    rows: Sequence[Any],
    targets: Targets,
    zone: dt.tzinfo,
    days: Sequence[dt.date],
    doses: Sequence[Any] = (),
) -> list[LogbookDay]:
    """Meter readings placed by local day (``days``, in display order) and slot, with the insulin ``doses`` given
    on those days beside them (``place_doses``)."""
    grid = {day: LogbookDay(day, {slot: Cell([]) for slot in SLOTS}) for day in days}
    rows = placed_rows(rows, zone)
    flags = [tuple(row["flags"] or ()) for row in rows]
    judgements = judge_rows(targets, rows)
    for row, reading_flags, judgement in zip(rows, flags, judgements, strict=True):
        local = row["measured_at"].astimezone(zone)
        target_day = grid.get(local.date())
        if target_day is None:
            continue
        entry = Entry(
            reading_id=row["id"],
            local=local,
            value_mgdl=row["value_mgdl"],
            judgement=judgement,
            flags=reading_flags,
            context=row["context"],
            meal=row["meal"],
            minutes_after_meal=row["minutes_after_meal"],
        )
        target_day.cells[slot_of(row["context"], row["meal"], local.hour)].entries.append(entry)
    for day in grid.values():
        for cell in day.cells.values():
            cell.entries.sort(key=lambda e: e.local)
    place_doses(grid, doses, zone)
    return [grid[d] for d in days]


# --- figures ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Share:
    """Meter readings in target: the fasting and after-meal readings (those with a target) and every
    hypoglycaemia, whatever its context (a hypo at 3 am is out of target too, never left out of the count)."""

    judged: int  # readings counted: those with a target, and the hypoglycaemias
    in_target: int
    hypos: int = 0  # of the counted readings, hypoglycaemias (out of target)

    @property
    def percent(self) -> float | None:
        return 100.0 * self.in_target / self.judged if self.judged else None


def share_in_target(rows: Sequence[Mapping[str, Any]], targets: Targets) -> Share:
    judgements = judge_rows(targets, rows)
    judged = [j for j in judgements if j.target is not None or j.status == HYPO]
    return Share(len(judged), sum(1 for j in judged if j.status == IN), sum(1 for j in judged if j.status == HYPO))


@dataclass(frozen=True)
class Adherence:
    """Meter readings over the last 7 full local days against the prescription (as the low_adherence rule)."""

    readings: int
    expected: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.readings / self.expected if self.expected else None


def adherence(local_days: Sequence[dt.date], today: dt.date, readings_per_day: int) -> Adherence:
    first = today - dt.timedelta(days=P.ADHERENCE_DAYS)
    count = sum(1 for day in local_days if first <= day < today)
    return Adherence(count, P.ADHERENCE_DAYS * readings_per_day)


@dataclass(frozen=True)
class TimeInRanges:
    """Shares of CGM readings (Battelino 2019, pregnancy): < 54, 54–62, 63–140, > 140 mg/dL."""

    n: int
    very_low: float
    low: float
    in_range: float
    high: float
    mean: float
    cv: float  # %
    gmi: float  # %
    coverage: float  # % of the readings a 5-minute sensor gives over the period
    very_high: float = 0.0  # of ``high``, the share above 250 mg/dL (the HL7 CGM IG reports it apart)

    @property
    def below_63(self) -> float:
        return self.very_low + self.low

    @property
    def wear_14d(self) -> float:
        """Sensor wear over the 14 days the consensus asks for (%)."""
        return min(100.0, 100.0 * self.n * P.CGM_INTERVAL_S / (SUFFICIENT_DAYS * 86400))

    @property
    def sufficient(self) -> bool:
        """Enough sensor data for the consensus's figures and goals: 14 days with at least 70 % wear (Battelino
        et al., Diabetes Care 2019;42:1593, international consensus on time in range); below, the panel says how
        much data there is instead of judging goals on a few readings."""
        return self.wear_14d >= SUFFICIENT_WEAR_PCT

    @property
    def goals(self) -> dict[str, bool]:
        return {
            "very_low": self.very_low < P.CGM_TBR54_MAX_PCT,
            "low": self.below_63 < P.CGM_TBR63_MAX_PCT,
            "in_range": self.in_range > P.CGM_TIR_MIN_PCT,
            "high": self.high < P.CGM_TAR_MAX_PCT,
        }


def time_in_ranges(values: np.ndarray[Any, np.dtype[np.float64]], period_s: float) -> TimeInRanges | None:
    n = len(values)
    if n == 0:
        return None
    very_low = float(np.count_nonzero(values < CGM_VERY_LOW))
    low = float(np.count_nonzero((values >= CGM_VERY_LOW) & (values < CGM_LOW)))
    high = float(np.count_nonzero(values > CGM_HIGH))
    very_high = float(np.count_nonzero(values > CGM_VERY_HIGH))
    in_range = n - very_low - low - high
    mean = float(values.mean())
    cv = float(values.std() / mean * 100.0) if mean > 0 else 0.0
    expected = period_s / P.CGM_INTERVAL_S
    return TimeInRanges(
        n=n,
        very_low=100.0 * very_low / n,
        low=100.0 * low / n,
        in_range=100.0 * in_range / n,
        high=100.0 * high / n,
        mean=mean,
        cv=cv,
        gmi=P.GMI_INTERCEPT + P.GMI_SLOPE * mean,
        coverage=min(100.0, 100.0 * n / expected) if expected else 0.0,
        very_high=100.0 * very_high / n,
    )


AGP_BIN_MINUTES = 15
AGP_PERCENTILES = (5, 25, 50, 75, 95)


@dataclass(frozen=True)
class Agp:
    """Percentiles of CGM glucose by time of day: ``bins`` rows (bin start minute) × 5 percentiles (NaN: empty)."""

    minutes: list[int]
    percentiles: np.ndarray[Any, np.dtype[np.float64]]  # shape (bins, 5), mg/dL


def agp(values: np.ndarray[Any, np.dtype[np.float64]], local_minutes: np.ndarray[Any, np.dtype[np.int64]]) -> Agp:
    bins = 1440 // AGP_BIN_MINUTES
    which = np.clip(local_minutes // AGP_BIN_MINUTES, 0, bins - 1)
    out = np.full((bins, len(AGP_PERCENTILES)), np.nan)
    if len(values):
        order = np.argsort(which, kind="stable")
        sorted_bins = which[order]
        sorted_values = values[order]
        starts = np.searchsorted(sorted_bins, np.arange(bins), side="left")
        ends = np.searchsorted(sorted_bins, np.arange(bins), side="right")
        for b in range(bins):  # 96 bins, not readings
            if ends[b] - starts[b] >= 3:
                out[b] = np.percentile(sorted_values[starts[b] : ends[b]], AGP_PERCENTILES)
    return Agp([b * AGP_BIN_MINUTES for b in range(bins)], out)
