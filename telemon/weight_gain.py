"""Weight gain in pregnancy against the range recommended for the pre-pregnancy body mass index.

The ranges are the Institute of Medicine's (IOM and National Research Council, "Weight Gain During Pregnancy:
Reexamining the Guidelines", National Academies Press, 2009, Table S-1), by the WHO's BMI categories: a total gain
for the whole (singleton) pregnancy, and a weekly rate for the second and third trimesters; the IOM's calculations
assume a gain of 0.5–2 kg in the first trimester. From them, the gain recommended *so far* at a gestational age is
0.5–2 kg at the end of the first trimester plus the weekly rates since, the upper bound never above the total's.

The dashboard shows the result as an informational flag beside the weights, never as an alert: weight gain is a
conversation for the next visit, and the IOM ranges are population recommendations (they do not cover twins).
Pure computation, no database: the patient page gives the weights and the record's height and pre-pregnancy
weight.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# Plausible values of the record (sanity bounds, not clinical ones; the database checks the same, migration 0018):
# 120 cm is below the shortest adults outside dwarfism syndromes and 220 cm above the tallest women measured in
# population surveys (NCD-RisC, eLife 2016;5:e13410: mean adult female heights 149–170 cm by country); 30 kg is a
# BMI of 12 at 1.58 m, below the WHO's "severe thinness" (under 16), and 250 kg is well above the heaviest pregnant
# women reported in obstetric cohorts.
HEIGHT_CM = (120.0, 220.0)
PRE_PREGNANCY_WEIGHT_KG = (30.0, 250.0)

UNDERWEIGHT, NORMAL, OVERWEIGHT, OBESE = "underweight", "normal", "overweight", "obese"
IN, ABOVE, BELOW = "in", "above", "below"
SO_FAR, RATE = "so_far", "rate"  # why a gain is out of range: the gain so far, or the recent weekly rate


@dataclass(frozen=True)
class Category:
    """A pre-pregnancy BMI category and its recommendations (IOM 2009, Table S-1)."""

    name: str
    bmi_below: float  # the category holds BMIs below this (and at or above the previous category's)
    total_kg: tuple[float, float]  # total gain over the pregnancy
    weekly_kg: tuple[float, float]  # rate in the second and third trimesters, kg/week


# WHO BMI categories (kg/m²: < 18.5, 18.5–24.9, 25.0–29.9, ≥ 30) with the IOM 2009 recommendations (Table S-1):
# total gain 12.5–18 / 11.5–16 / 7–11.5 / 5–9 kg; second- and third-trimester rates 0.44–0.58 / 0.35–0.50 /
# 0.23–0.33 / 0.17–0.27 kg/week (means 0.51 / 0.42 / 0.28 / 0.22).
CATEGORIES = (
    Category(UNDERWEIGHT, 18.5, (12.5, 18.0), (0.44, 0.58)),
    Category(NORMAL, 25.0, (11.5, 16.0), (0.35, 0.50)),
    Category(OVERWEIGHT, 30.0, (7.0, 11.5), (0.23, 0.33)),
    Category(OBESE, math.inf, (5.0, 9.0), (0.17, 0.27)),
)
# IOM 2009, Table S-1, footnote: "calculations assume a 0.5–2 kg (1.1–4.4 lbs) weight gain in the first trimester".
FIRST_TRIMESTER_KG = (0.5, 2.0)
FIRST_TRIMESTER_WEEKS = 13.0  # the first trimester ends at 13 weeks of amenorrhoea (IOM 2009, ch. 1)
PREGNANCY_WEEKS = 40.0
# The recent rate: weights of the last 4 weeks, judged only when they span at least 2 weeks (a day-to-day change
# of a kilogram is water, not gain).
RATE_WINDOW_DAYS = 28
RATE_MIN_SPAN_DAYS = 14


def bmi(weight_kg: float, height_cm: float) -> float:
    """Body mass index, kg/m²."""
    metres = height_cm / 100.0
    return weight_kg / (metres * metres)


def category(body_mass_index: float) -> Category:
    return next(c for c in CATEGORIES if body_mass_index < c.bmi_below)


def expected_so_far(cat: Category, weeks: float) -> tuple[float, float]:
    """The gain (kg) recommended by ``weeks`` of amenorrhoea: during the first trimester at most its 2 kg (no lower
    bound: nausea often costs a little weight then); after it, 0.5–2 kg plus the second- and third-trimester rates
    for the weeks since, the upper bound never above the whole pregnancy's."""
    if weeks <= FIRST_TRIMESTER_WEEKS:
        return (-math.inf, FIRST_TRIMESTER_KG[1])
    since = weeks - FIRST_TRIMESTER_WEEKS
    low = FIRST_TRIMESTER_KG[0] + cat.weekly_kg[0] * since
    high = FIRST_TRIMESTER_KG[1] + cat.weekly_kg[1] * since
    return (low, min(high, cat.total_kg[1]))


def weekly_rate(weights: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope (kg/week) of (gestational day, kg) pairs of the last ``RATE_WINDOW_DAYS`` before the
    latest, in the second and third trimesters; None when they span less than ``RATE_MIN_SPAN_DAYS``."""
    if not weights:
        return None
    last_day = weights[-1][0]
    recent = [(d, kg) for d, kg in weights if d >= last_day - RATE_WINDOW_DAYS and d >= FIRST_TRIMESTER_WEEKS * 7]
    if len(recent) < 2 or recent[-1][0] - recent[0][0] < RATE_MIN_SPAN_DAYS:
        return None
    n = len(recent)
    mean_d = sum(d for d, _ in recent) / n
    mean_kg = sum(kg for _, kg in recent) / n
    spread = sum((d - mean_d) ** 2 for d, _ in recent)
    slope_per_day = sum((d - mean_d) * (kg - mean_kg) for d, kg in recent) / spread
    return slope_per_day * 7.0


@dataclass(frozen=True)
class Assessment:
    """A patient's weight gain judged at her latest weight."""

    bmi: float  # pre-pregnancy
    category: Category
    weeks: float  # gestational age of the latest weight, weeks of amenorrhoea
    gain_kg: float  # latest weight − pre-pregnancy weight
    expected_kg: tuple[float, float]  # recommended gain so far (low may be -inf: not judged)
    rate_kg_per_week: float | None  # recent rate (None: too few weights)
    status: str  # IN, ABOVE, BELOW
    reason: str | None  # SO_FAR or RATE when out of range

    @property
    def flagged(self) -> bool:
        return self.status != IN


def assess(
    height_cm: float | None, pre_pregnancy_kg: float | None, weights: Sequence[tuple[float, float]]
) -> Assessment | None:
    """Judge the gain: ``weights`` are (gestational day, kg) in time order, within the pregnancy. None without a
    height, a pre-pregnancy weight or a weight. Out of range when the gain so far is outside the range recommended
    at this gestational age, or else when the recent weekly rate is outside the category's rate."""
    if height_cm is None or pre_pregnancy_kg is None or not weights:
        return None
    body_mass_index = bmi(pre_pregnancy_kg, height_cm)
    cat = category(body_mass_index)
    day, latest = weights[-1]
    weeks = day / 7.0
    gain = latest - pre_pregnancy_kg
    low, high = expected_so_far(cat, weeks)
    rate = weekly_rate(weights)
    status, reason = IN, None
    if gain > high:
        status, reason = ABOVE, SO_FAR
    elif gain < low:
        status, reason = BELOW, SO_FAR
    elif rate is not None and rate > cat.weekly_kg[1]:
        status, reason = ABOVE, RATE
    elif rate is not None and rate < cat.weekly_kg[0]:
        status, reason = BELOW, RATE
    return Assessment(body_mass_index, cat, weeks, gain, (low, high), rate, status, reason)


class BodyError(ValueError):
    """A height or weight outside its plausible range; ``field`` names it, ``low`` and ``high`` are the range."""

    def __init__(self, field: str, value: float, low: float, high: float, unit: str) -> None:
        super().__init__(f"{field}: {value:g} {unit} is outside the plausible range {low:g}–{high:g} {unit}")
        self.field, self.value, self.low, self.high, self.unit = field, value, low, high, unit


def check_height_cm(value: float | None) -> float | None:
    return _check("height_cm", value, HEIGHT_CM, "cm")


def check_pre_pregnancy_weight_kg(value: float | None) -> float | None:
    return _check("pre_pregnancy_weight_kg", value, PRE_PREGNANCY_WEIGHT_KG, "kg")


def _check(field: str, value: float | None, bounds: tuple[float, float], unit: str) -> float | None:
    if value is None:
        return None
    low, high = bounds
    if not math.isfinite(value) or not low <= value <= high:
        raise BodyError(field, value, low, high, unit)
    return float(value)
