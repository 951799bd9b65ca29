"""Guideline profiles and the clinical thresholds the rules compare against.

Every number is written in the unit its source uses and converted to mg/dL here, once, exactly:
mmol/L × 18.01559 (the Tidepool / Nightscout factor) and g/L × 100. A reading is *in target* iff
``value < target`` (guidelines say "< 95 mg/dL"), so it is *above target* iff ``value >= target``.

Profiles are coded as in :data:`alerts.cohort.PROFILE` (FR = 0, NICE = 1, ADA = 2); the per-patient target
arrays of a :class:`~alerts.cohort.Cohort` come from :func:`patient_targets` (profile, then the patient's
overrides from ``patients.target_overrides``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from alerts.cohort import F64, I8, I16, PROFILE, B
from telemon.units import GL, MMOLL, exact_mgdl

log = logging.getLogger(__name__)


def mmol(value: float) -> float:
    """A glucose value stated in mmol/L, in mg/dL: the double nearest to the exact decimal product
    (6.4 mmol/L is 115.299776 mg/dL, not 115.29977600000001), as ingest converts readings
    (:func:`telemon.units.exact_mgdl`): a reading of exactly 4.0 mmol/L is then not below the 4.0 mmol/L floor."""
    return exact_mgdl(value, MMOLL)


def g_per_l(value: float) -> float:
    """A glucose value stated in g/L (French practice), in mg/dL (0.95 g/L is 95 mg/dL)."""
    return exact_mgdl(value, GL)


# ---------------------------------------------------------------------------------------------------------------
# Self-monitoring targets per profile
# ---------------------------------------------------------------------------------------------------------------

TARGET_KEYS = ("fasting", "post_1h", "post_2h")  # the keys of patients.target_overrides (mg/dL)


@dataclass(frozen=True)
class Profile:
    code: str
    label: str  # as shown in messages
    fasting: float  # mg/dL, in target iff value < fasting
    post_1h: float  # mg/dL; NaN: the guideline sets no 1 h target
    post_2h: float  # mg/dL
    usual_post: str  # "post_1h" | "post_2h": the post-meal test the guideline asks for (unknown delay)
    readings_per_day: int  # default prescription
    postpartum_start_days: int  # postpartum glucose test window, days after the delivery day (inclusive)
    postpartum_end_days: int
    postpartum_test_en: str
    postpartum_test_fr: str
    source: str


FR = Profile(
    code="FR",
    label="FR (CNGOF/SFD 2010)",
    # CNGOF/SFD 2010 expert consensus on GDM (J Gynecol Obstet Biol Reprod 2010;39:S338; Diabetes Metab
    # 2010;36:595): "glycémie à jeun < 0,95 g/L".
    fasting=g_per_l(0.95),
    # CNGOF/SFD 2010 set no 1 h post-prandial target.
    post_1h=math.nan,
    # CNGOF/SFD 2010: "glycémie post-prandiale à 2 heures < 1,20 g/L".
    post_2h=g_per_l(1.20),
    # The French recommendation is a 2 h post-meal test: it only has a 2 h target.
    usual_post="post_2h",
    # CNGOF/SFD 2010 and French practice: 4 a day (fasting + after each meal), up to 6.
    readings_per_day=4,
    # CNGOF/SFD 2010: 75 g OGTT at the postnatal visit, which French practice holds 6–8 weeks after birth.
    postpartum_start_days=6 * 7,
    postpartum_end_days=8 * 7,
    postpartum_test_en="75 g oral glucose tolerance test at the postnatal visit (6–8 weeks)",
    postpartum_test_fr="HGPO 75 g à la consultation postnatale (6 à 8 semaines)",
    source="CNGOF/SFD 2010",
)

NICE = Profile(
    code="NICE",
    label="NICE NG3",
    # NICE NG3 (2015, updated 2020) §1.3 "target blood glucose levels": fasting below 5.3 mmol/L.
    fasting=mmol(5.3),
    # NICE NG3 §1.3: 1 hour after meals below 7.8 mmol/L ...
    post_1h=mmol(7.8),
    # ... or 2 hours after meals below 6.4 mmol/L.
    post_2h=mmol(6.4),
    # NICE NG3 §1.3 asks women with GDM (diet, metformin or single-dose insulin) to test fasting and
    # 1 hour after every meal: an after-meal reading of unknown delay is most likely a 1 h test.
    usual_post="post_1h",
    # NICE NG3 §1.3: fasting + 1 h after every meal = 4 a day (more on multiple daily insulin injections).
    readings_per_day=4,
    # NICE NG3 §1.6: fasting plasma glucose test 6–13 weeks after the birth.
    postpartum_start_days=6 * 7,
    postpartum_end_days=13 * 7,
    postpartum_test_en="fasting plasma glucose test (6–13 weeks after the birth)",
    postpartum_test_fr="glycémie à jeun (6 à 13 semaines après la naissance)",
    source="NICE NG3",
)

ADA = Profile(
    code="ADA",
    label="ADA/ACOG",
    # ADA Standards of Care, section 15 (Management of Diabetes in Pregnancy), and ACOG Practice Bulletin 190:
    # fasting < 95 mg/dL ...
    fasting=95.0,
    # ... and either 1 h postprandial < 140 mg/dL ...
    post_1h=140.0,
    # ... or 2 h postprandial < 120 mg/dL.
    post_2h=120.0,
    # ADA/ACOG accept either test. An after-meal reading of unknown delay is judged against the 1 h target:
    # judging a 1 h reading against the 2 h target (120) would flag in-target readings as "above target"
    # and push towards a treatment escalation that is not indicated.
    usual_post="post_1h",
    # fasting + after each meal
    readings_per_day=4,
    # ADA Standards of Care, section 15: 75 g OGTT at 4–12 weeks postpartum.
    postpartum_start_days=4 * 7,
    postpartum_end_days=12 * 7,
    postpartum_test_en="75 g oral glucose tolerance test (4–12 weeks postpartum)",
    postpartum_test_fr="HGPO 75 g (4 à 12 semaines après l'accouchement)",
    source="ADA Standards of Care, section 15",
)

PROFILES: dict[int, Profile] = {PROFILE["FR"]: FR, PROFILE["NICE"]: NICE, PROFILE["ADA"]: ADA}
# The longest postpartum follow-up of the profiles (NICE NG3: fasting glucose 6-13 weeks after the birth): a due
# date past by more than this leaves telemon nothing to follow.
LONGEST_POSTPARTUM = max(PROFILES.values(), key=lambda p: p.postpartum_end_days)

# Per profile code, as arrays (indexed by Cohort.profile).
_BY_CODE = [PROFILES[i] for i in range(len(PROFILES))]
PROFILE_FASTING: F64 = np.array([p.fasting for p in _BY_CODE], dtype=np.float64)
PROFILE_POST_1H: F64 = np.array([p.post_1h for p in _BY_CODE], dtype=np.float64)
PROFILE_POST_2H: F64 = np.array([p.post_2h for p in _BY_CODE], dtype=np.float64)
PROFILE_USUAL_POST_1H = np.array([p.usual_post == "post_1h" for p in _BY_CODE], dtype=np.bool_)
PROFILE_POSTPARTUM_START = np.array([p.postpartum_start_days for p in _BY_CODE], dtype=np.int32)
PROFILE_POSTPARTUM_END = np.array([p.postpartum_end_days for p in _BY_CODE], dtype=np.int32)

# Post-meal target choice: a reading taken ≤ 90 min after the meal (half-way between the 1 h and the 2 h
# test) is judged against the 1 h target when the profile has one, else against the 2 h target; > 90 min
# against the 2 h target; unknown delay (-1) against the profile's usual post-meal test (``usual_post``).
POST_1H_MAX_MINUTES = 90


# ---------------------------------------------------------------------------------------------------------------
# Hypoglycaemia, severe hyperglycaemia
# ---------------------------------------------------------------------------------------------------------------

# ADA Standards of Care, section 6 (glycemic goals and hypoglycemia): level 1 < 70 mg/dL (3.9 mmol/L) and
# ≥ 54 mg/dL; level 2 < 54 mg/dL (3.0 mmol/L).
HYPO_L1_MGDL = 70.0
HYPO_L2_MGDL = 54.0
HYPO_SOURCE = "ADA Standards of Care, section 6"
# NICE NG3 §1.3: women on insulin (or glibenclamide) keep their capillary glucose above 4 mmol/L.
NICE_INSULIN_FLOOR_MGDL = mmol(4.0)  # 72.06236
NICE_INSULIN_FLOOR_SOURCE = "NICE NG3"
# Readings below a threshold, consecutive (no reading at or above it in between) and at most 60 min apart,
# are one hypoglycaemia episode (the service's rule table).
EPISODE_MAX_GAP_S = 60 * 60

# CNGOF/SFD 2010: fasting glucose > 1.30 g/L asks for an immediate insulin review.
FASTING_SEVERE_MGDL = g_per_l(1.30)
FASTING_SEVERE_SOURCE = "CNGOF/SFD 2010"
# The service's clinical reference: a reading ≥ 200 mg/dL prompts a ketone check.
KETONE_CHECK_MGDL = 200.0
KETONE_CHECK_SOURCE = "telemon clinical reference"

# ---------------------------------------------------------------------------------------------------------------
# The treatment record: ketones, blood pressure, insulin doses, the diet's trial period
# ---------------------------------------------------------------------------------------------------------------

# Blood β-hydroxybutyrate: < 0.6 mmol/L normal, 0.6–1.5 raised, > 1.5 a risk of ketoacidosis, > 3.0 ketoacidosis
# likely (Laffel L. Ketone bodies: a review of physiology, pathophysiology and application of monitoring to
# diabetes. Diabetes Metab Res Rev 1999;15:412–426): ≥ 1.5 is urgent, 0.6 to < 1.5 a warning. Urine ketones "++"
# and above are the ketone criterion of diabetic ketoacidosis (Joint British Diabetes Societies for Inpatient Care,
# The management of diabetic ketoacidosis in adults, 2nd edition 2013, revised 2021: "ketonuria more than 2+"):
# urgent; "+" is ketonuria that asks for a blood test: a warning. In pregnancy ketoacidosis occurs at lower glucose
# levels and threatens the fetus, hence no glucose condition.
KETONES_WARNING_MMOL = 0.6
KETONES_URGENT_MMOL = 1.5
KETONES_URINE_WARNING = "+"
KETONES_URINE_URGENT = "++"
KETONES_SOURCE = "Laffel, Diabetes Metab Res Rev 1999; JBDS-IP DKA guideline 2013"
# ketone_check (a reading ≥ 200 mg/dL) asks for a ketone test: answered by a ketone result within 2 h of the run
# of high readings (before or after it), the service's rule table.
KETONE_ANSWER_S = 2 * 3600
# NICE NG133 (Hypertension in pregnancy, 2019), 1.2 and 1.3: hypertension is ≥ 140 mmHg systolic or ≥ 90 mmHg
# diastolic; severe hypertension ≥ 160 / 110 mmHg (admit, treat).
BP_WARNING_SYSTOLIC, BP_WARNING_DIASTOLIC = 140.0, 90.0
BP_URGENT_SYSTOLIC, BP_URGENT_DIASTOLIC = 160.0, 110.0
BP_SOURCE = "NICE NG133 (2019)"
# A patient on insulin who logs her doses (at least one in the engine's window) and has logged none for 3 days:
# info (the service's rule table: a reading of her logbook, not a clinical threshold).
DOSES_MISSING_S = 3 * 86400
DOSES_LOOKBACK_S = 14 * 86400  # "has logged doses": one in the engine's window (alerts.load.WINDOW)
DOSES_SOURCE = "telemon rule table"
# Dose review after a hypoglycaemia: ADA level 1 (< 70 mg/dL, HYPO_L1_MGDL). The dose that preceded a reading:
# the basal one for a fasting or night reading or one before 06:00 local; else the prandial dose of the meal the
# reading follows (its stated meal when it is an after-meal reading, else its time: breakfast before 11:00, lunch
# before 16:00, dinner after), or the basal dose when the plan has no dose for that meal.
DOSE_REVIEW_NIGHT_END_MIN = 6 * 60
DOSE_REVIEW_MEAL_ENDS_MIN = (11 * 60, 16 * 60)
# The diet's trial period before a treatment review, days since the diagnosis (else the enrolment), per profile:
# CNGOF/SFD 2010 "7 à 10 jours" of diet (FR: 7, the first day a review is due); NICE NG3 (2015, updated 2020)
# §1.3 offers metformin "if blood glucose targets are not met using changes in diet and exercise within 1 to 2 weeks"
# (NICE: 7); ADA Standards of Care section 15 states no number (ADA: 14, NICE's upper bound). The week's share above
# target that asks for the review is the DECIDE working rule of pattern_above_target (≥ 30 % of at least 8).
TRIAL_DAYS = {"FR": 7, "NICE": 7, "ADA": 14}
TREATMENT_REVIEW_SOURCE = "CNGOF/SFD 2010; NICE NG3; DECIDE working rule"

# ---------------------------------------------------------------------------------------------------------------
# Treatment escalation patterns: a common working rule from the DECIDE trial
# ---------------------------------------------------------------------------------------------------------------

PATTERN_SOURCE = "DECIDE working rule"
PATTERN_WINDOW_S = 7 * 86400
PATTERN_ABOVE_PCT = 30  # ≥ 30 % of the past week's readings above target ...
PATTERN_MIN_READINGS = 8  # ... out of at least 8 readings that have a target
FASTING_PATTERN_MGDL = 115.0  # ≥ 50 % of the past week's fasting readings > 115 mg/dL ...
FASTING_PATTERN_PCT = 50
FASTING_PATTERN_MIN_READINGS = 4  # ... out of at least 4
# The service's rule table: least-squares slope of the fasting readings over 14 days > 1 mg/dL per day, ≥ 7 points.
TREND_SOURCE = "telemon rule table"
TREND_WINDOW_S = 14 * 86400
TREND_MIN_SLOPE_MGDL_PER_DAY = 1.0
TREND_MIN_POINTS = 7

# Adherence (judged against the prescribed number per day; the service's rule table: < 80 % over the last
# 7 full local days).
ADHERENCE_SOURCE = "telemon rule table"
ADHERENCE_DAYS = 7
ADHERENCE_MIN_PCT = 80

# ---------------------------------------------------------------------------------------------------------------
# Stale data
# ---------------------------------------------------------------------------------------------------------------

STALE_SOURCE = "telemon clinical reference"
CGM_STALE_WARNING_S = 15 * 60  # CGM silent 15 min: warning
CGM_STALE_URGENT_S = 30 * 60  # CGM silent 30 min: urgent
METER_SILENT_S = 48 * 3600  # meter / app patient silent for 48 h

# ---------------------------------------------------------------------------------------------------------------
# CGM in pregnancy: Battelino T et al., Clinical targets for CGM data interpretation: recommendations from the
# international consensus on time in range, Diabetes Care 2019;42:1593–1603 (pregnancy targets).
# ---------------------------------------------------------------------------------------------------------------

CGM_SOURCE = "Battelino 2019"
CGM_RANGE_LOW_MGDL = 63.0  # target range 63–140 mg/dL (3.5–7.8 mmol/L), inclusive
CGM_RANGE_HIGH_MGDL = 140.0
CGM_TIR_MIN_PCT = 70  # time in range > 70 %
CGM_TBR63_MAX_PCT = 4  # time below 63 mg/dL < 4 %
CGM_TBR54_MAX_PCT = 1  # time below 54 mg/dL < 1 %
CGM_TAR_MAX_PCT = 25  # time above 140 mg/dL < 25 %
CGM_CV_MAX_PCT = 36.0  # glycaemic variability, coefficient of variation ≤ 36 %
CGM_REVIEW_S = 14 * 86400  # 14 days of data ...
CGM_MIN_DATA_PCT = 70  # ... with ≥ 70 % of the expected readings
CGM_INTERVAL_S = 5 * 60  # expected reading interval (5-min sensors)
# Bergenstal RM et al., Glucose Management Indicator, Diabetes Care 2018;41:2275: GMI (%) = 3.31 + 0.02392 × mean.
GMI_INTERCEPT = 3.31
GMI_SLOPE = 0.02392

# Trend: rate-of-change arrows; the service's rule table: ≤ −3 mg/dL/min over the last 15 min is a rapid fall.
RAPID_FALL_SOURCE = "telemon rule table"
RAPID_FALL_MGDL_PER_MIN = -3.0
RAPID_FALL_WINDOW_S = 15 * 60
RAPID_FALL_MIN_READINGS = 3  # least-squares slope over at least 3 readings ...
RAPID_FALL_MIN_SPAN_S = 10 * 60  # ... spanning at least 10 min

# Predicted low: ≤ 55 mg/dL within 20 min, with Nightscout's AR2 forecast
# (nightscout/cgm-remote-monitor lib/plugins/ar2.js and bgnow.js).
PREDICTED_LOW_SOURCE = "Nightscout AR2"
PREDICTED_LOW_MGDL = 55.0
PREDICTED_LOW_HORIZON_MIN = 20
AR2_COEFFICIENTS = (-0.723, 1.716)  # ar2.js: AR = [-0.723, 1.716] on log(bg / BG_REF), 5-minute steps
AR2_BG_REF = 140.0  # ar2.js BG_REF ("central tendency")
AR2_BG_MIN = 36.0  # ar2.js BG_MIN: forecast points are clamped to [36, 400]
AR2_BG_MAX = 400.0
AR2_STEPS = 6  # ar2.js forecasts 6 points, 5, 10, ..., 30 min after the last reading
NIGHTSCOUT_ERROR_MGDL = 39.0  # bgnow.js: readings ≤ 39 mg/dL are Dexcom error codes, left out of the means
# A CGM patient's last reading is fresh (trend rules can judge) while cgm_stale does not fire.
CGM_FRESH_S = CGM_STALE_WARNING_S


# ---------------------------------------------------------------------------------------------------------------
# Per-patient targets
# ---------------------------------------------------------------------------------------------------------------


class Targets(NamedTuple):
    """Per-patient target arrays (mg/dL), ready for ``Cohort.target_*`` (also a (fasting, 1 h, 2 h) tuple)."""

    fasting: F64
    post_1h: F64  # NaN: no 1 h target
    post_2h: F64


def _parse_overrides(raw: Mapping[str, Any] | str | None) -> dict[str, float]:
    if raw is None:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            log.warning("target overrides are not JSON, ignored: %r", raw)
            return {}
        if not isinstance(raw, Mapping):
            log.warning("target overrides are not an object, ignored: %r", raw)
            return {}
    clean: dict[str, float] = {}
    for key, value in raw.items():
        if key not in TARGET_KEYS:
            log.warning("unknown target override %r ignored", key)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            log.warning("target override %s=%r is not a positive number of mg/dL, ignored", key, value)
            continue
        clean[key] = float(value)
    return clean


def patient_targets(profile: I8 | Sequence[int], overrides: Sequence[Mapping[str, Any] | str | None]) -> Targets:
    """Per-patient targets: the profile's, then the patient's overrides (``patients.target_overrides``, mg/dL,
    e.g. ``{"fasting": 92, "post_1h": 140, "post_2h": 120}``; a JSON string is accepted as asyncpg returns
    jsonb). Invalid override entries are logged and ignored, never fatal to a population pass."""
    codes = np.asarray(profile, dtype=np.int64)
    if len(overrides) != len(codes):
        raise ValueError("one overrides entry per patient")
    fasting = PROFILE_FASTING[codes].copy()
    post_1h = PROFILE_POST_1H[codes].copy()
    post_2h = PROFILE_POST_2H[codes].copy()
    columns = {"fasting": fasting, "post_1h": post_1h, "post_2h": post_2h}
    for i, raw in enumerate(overrides):  # only patients with overrides do any work here
        if raw:
            for key, value in _parse_overrides(raw).items():
                columns[key][i] = value
    return Targets(fasting=fasting, post_1h=post_1h, post_2h=post_2h)


def post_meal_target(minutes_after_meal: I16, profile: I8, post_1h: F64, post_2h: F64) -> tuple[F64, B]:
    """Vectorised post-meal target choice for after-meal readings (all arrays of the readings' length; the
    target arrays already gathered per reading). Returns (target mg/dL, judged against the 1 h target)."""
    has_1h = ~np.isnan(post_1h)
    unknown = minutes_after_meal < 0
    use_1h = has_1h & np.where(unknown, PROFILE_USUAL_POST_1H[profile], minutes_after_meal <= POST_1H_MAX_MINUTES)
    return np.where(use_1h, post_1h, post_2h), use_1h
