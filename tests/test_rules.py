"""Unit tests of the guideline profiles and of every alert rule, on small hand-made cohorts."""

from __future__ import annotations

import gc
import json
import math

import numpy as np
import pytest

from alerts import profiles as P
from alerts import rules
from alerts.cohort import DEVICE_CGM, DEVICE_METER, PROFILE, Candidates
from alerts.messages import render
from tests.support.cohorts import DAY, NOW, Patient, R, build, local_day_of, random_cohort

TODAY = local_day_of(NOW)  # 2024-06-10 (UTC offset 0)
MIN = 60
H = 3600


def run(rule: rules.Rule, *patients: Patient, now: int = NOW, lookback_s: int = 7 * DAY) -> Candidates:
    cands = rule(build(list(patients), now=now, lookback_s=lookback_s))
    for ev, params in zip(cands.evidence, cands.params, strict=True):
        json.dumps(ev)  # JSON-ready
        json.dumps(params)
    assert len(text(cands, "en")) == len(text(cands, "fr")) == len(cands)
    return cands


def text(c: Candidates, lang: str, unit: str = "mg/dL") -> list[str]:
    """The candidates' messages as the API renders them (with the rule's id), spaces for the no-break ones."""
    return [
        render(code, params, lang, unit, cite_rule=True).replace("\u00a0", " ")
        for code, params in zip(c.code, c.params, strict=True)
    ]


def rows(c: Candidates) -> list[tuple[int, str, str, list[int]]]:
    """(patient, episode, severity, reading ids), sorted."""
    return sorted((int(c.patient[i]), c.episode[i], c.severity[i], c.evidence[i]["reading_ids"]) for i in range(len(c)))


def at(day: int, hour: float) -> int:
    """Epoch seconds of ``hour`` o'clock (UTC) on TODAY + ``day``."""
    return (TODAY + day) * DAY + int(hour * H)


def fasting(day: int, value: float, **kw: object) -> R:
    return R(t=at(day, 7), value=value, context="fasting", **kw)  # type: ignore[arg-type]


def post(day: int, value: float, minutes: int = 60, hour: float = 13) -> R:
    return R(t=at(day, hour), value=value, context="after_meal", minutes_after_meal=minutes)


def cgm(t: int, value: float) -> R:
    return R(t=t, value=value, kind="cgm")


# ---------------------------------------------------------------------------------------------------------------
# Profiles
# ---------------------------------------------------------------------------------------------------------------


def test_targets_are_the_guidelines_numbers_converted_exactly() -> None:
    assert (P.FR.fasting, P.FR.post_2h) == (95.0, 120.0)
    assert math.isnan(P.FR.post_1h)
    assert (P.NICE.fasting, P.NICE.post_1h, P.NICE.post_2h) == (95.482627, 140.521602, 115.299776)
    assert (P.ADA.fasting, P.ADA.post_1h, P.ADA.post_2h) == (95.0, 140.0, 120.0)
    assert P.NICE_INSULIN_FLOOR_MGDL == 72.06236
    assert P.FASTING_SEVERE_MGDL == 130.0
    assert P.mmol(5.3) == 5.3 * 18.01559 or abs(P.mmol(5.3) - 95.482627) < 1e-12


def test_postpartum_windows() -> None:
    assert (P.ADA.postpartum_start_days, P.ADA.postpartum_end_days) == (28, 84)
    assert (P.NICE.postpartum_start_days, P.NICE.postpartum_end_days) == (42, 91)
    assert (P.FR.postpartum_start_days, P.FR.postpartum_end_days) == (42, 56)


def test_overrides_on_top_of_the_profile() -> None:
    profile = np.array([PROFILE["FR"], PROFILE["NICE"], PROFILE["ADA"], PROFILE["FR"]], dtype=np.int8)
    targets = P.patient_targets(
        profile,
        [
            {"fasting": 92, "post_1h": 140},
            '{"post_2h": 110}',  # jsonb as asyncpg returns it
            {"fasting": "high", "unknown": 3, "post_1h": -5},  # invalid entries are ignored
            None,
        ],
    )
    assert targets.fasting.tolist() == [92.0, 95.482627, 95.0, 95.0]
    assert targets.post_1h[0] == 140.0 and targets.post_1h[1] == 140.521602 and math.isnan(targets.post_1h[3])
    assert targets.post_2h.tolist() == [120.0, 110.0, 120.0, 120.0]
    as_tuple = tuple(targets)
    assert as_tuple[0] is targets.fasting and as_tuple[2] is targets.post_2h


@pytest.mark.parametrize(
    ("profile", "minutes", "overrides", "expected", "is_1h"),
    [
        ("FR", 60, None, 120.0, False),  # FR has no 1 h target
        ("FR", -1, None, 120.0, False),
        ("FR", 60, {"post_1h": 135.0}, 135.0, True),  # an override gives FR a 1 h target
        ("FR", -1, {"post_1h": 135.0}, 120.0, False),  # unknown delay: FR's usual 2 h test
        ("NICE", 60, None, 140.521602, True),
        ("NICE", 90, None, 140.521602, True),
        ("NICE", 91, None, 115.299776, False),
        ("NICE", -1, None, 140.521602, True),  # NICE's usual test is at 1 h
        ("ADA", 0, None, 140.0, True),
        ("ADA", 120, None, 120.0, False),
        ("ADA", -1, None, 140.0, True),
    ],
)
def test_post_meal_target_choice(
    profile: str, minutes: int, overrides: dict[str, float] | None, expected: float, is_1h: bool
) -> None:
    t = P.patient_targets(np.array([PROFILE[profile]], dtype=np.int8), [overrides])
    target, one_h = P.post_meal_target(
        np.array([minutes], dtype=np.int16), np.array([PROFILE[profile]], dtype=np.int8), t.post_1h, t.post_2h
    )
    assert target[0] == expected and bool(one_h[0]) is is_1h


def test_threshold_levels_strict_and_inclusive() -> None:
    values = [54.0, 55.0, 56.0, 80.0, 180.0, 181.0, 260.0, 261.0, math.nan]
    strict = rules.threshold_levels(values, 55, 80, 180, 260)
    assert strict.tolist() == [-2, -1, -1, 0, 0, 1, 1, 2, 0]
    inclusive = rules.threshold_levels(values, 55, 80, 180, 260, inclusive=True)
    assert inclusive.tolist() == [-2, -2, -1, -1, 1, 1, 2, 2, 0]


# ---------------------------------------------------------------------------------------------------------------
# Hypoglycaemia
# ---------------------------------------------------------------------------------------------------------------


def test_hypo_levels_at_the_thresholds() -> None:
    pt = Patient(readings=[R(t=at(-1, 3), value=54.0), R(t=at(-1, 9), value=53.99), R(t=at(-1, 15), value=70.0)])
    assert rows(run(rules.hypo_l2, pt)) == [(0, f"t{at(-1, 9)}", "urgent", [2])]
    assert rows(run(rules.hypo_l1, pt)) == [(0, f"t{at(-1, 3)}", "warning", [1])]


def test_hypo_run_is_one_episode_keyed_by_its_first_reading() -> None:
    t0 = at(-1, 3)
    lows = [R(t=t0, value=60), R(t=t0 + 30 * MIN, value=58), R(t=t0 + 90 * MIN, value=62)]
    first = run(rules.hypo_l1, Patient(readings=lows))
    assert rows(first) == [(0, f"t{t0}", "warning", [1, 2, 3])]
    # a later reading extends the run: same episode key, more evidence
    longer = run(rules.hypo_l1, Patient(readings=[*lows, R(t=t0 + 150 * MIN, value=65)]))
    assert rows(longer) == [(0, f"t{t0}", "warning", [1, 2, 3, 4])]
    ev = first.evidence[0]
    assert ev["target_mgdl"] == 70.0 and ev["nadir_mgdl"] == 58 and ev["values_mgdl"] == [60, 58, 62]
    assert "below 70 mg/dL" in text(first, "en")[0] and "58 mg/dL" in text(first, "en")[0]
    assert "sous 70 mg/dL" in text(first, "fr")[0] and "Règle hypo_l1" in text(first, "fr")[0]


def test_hypo_gap_of_more_than_an_hour_starts_a_new_episode() -> None:
    t0 = at(-1, 3)
    one = Patient(readings=[R(t=t0, value=60), R(t=t0 + H, value=60)])
    two = Patient(readings=[R(t=t0, value=60), R(t=t0 + H + 1, value=60)])
    assert [r[1] for r in rows(run(rules.hypo_l1, one))] == [f"t{t0}"]
    assert [r[1] for r in rows(run(rules.hypo_l1, two))] == [f"t{t0}", f"t{t0 + H + 1}"]


def test_hypo_reading_at_or_above_threshold_ends_the_run() -> None:
    t0 = at(-1, 3)
    pt = Patient(readings=[R(t=t0, value=60), R(t=t0 + 10 * MIN, value=70), R(t=t0 + 20 * MIN, value=60)])
    assert len(run(rules.hypo_l1, pt)) == 2


def test_level_1_run_holding_a_level_2_reading_is_left_to_hypo_l2() -> None:
    t0 = at(-1, 3)
    pt = Patient(readings=[R(t=t0, value=65), R(t=t0 + 10 * MIN, value=50), R(t=t0 + 20 * MIN, value=65)])
    assert len(run(rules.hypo_l1, pt)) == 0
    assert rows(run(rules.hypo_l2, pt)) == [(0, f"t{t0 + 10 * MIN}", "urgent", [2])]


def test_control_solution_is_never_glucose_and_does_not_split_a_run() -> None:
    t0 = at(-1, 3)
    pt = Patient(
        readings=[
            R(t=t0, value=60),
            R(t=t0 + 10 * MIN, value=150, flags=["control_solution"]),
            R(t=t0 + 20 * MIN, value=40, flags=["control_solution"]),
            R(t=t0 + 30 * MIN, value=61),
        ]
    )
    assert rows(run(rules.hypo_l1, pt)) == [(0, f"t{t0}", "warning", [1, 4])]
    assert len(run(rules.hypo_l2, pt)) == 0


def test_lookback_readings_are_context_only() -> None:
    cutoff = NOW - 7 * DAY
    old = Patient(readings=[R(t=cutoff - 1, value=50)])
    edge = Patient(readings=[R(t=cutoff, value=50)])
    assert len(run(rules.hypo_l2, old)) == 0
    assert len(run(rules.hypo_l2, edge)) == 1
    # a run that started before the cutoff keeps its key when a recent reading extends it
    spanning = Patient(readings=[R(t=cutoff - 20 * MIN, value=50), R(t=cutoff + 20 * MIN, value=51)])
    assert rows(run(rules.hypo_l2, spanning)) == [(0, f"t{cutoff - 20 * MIN}", "urgent", [1, 2])]


def test_glycaemic_rules_stop_once_the_delivery_has_come() -> None:
    """Monitoring ends at the delivery: once its local day has come, no reading raises a glycaemic alert, not even
    one from before the birth synced late (the delivery resolved what was open; nobody is to act on it now)."""
    readings = [R(t=at(-2, 12), value=50), R(t=at(-1, 0) + 60, value=45)]
    assert len(run(rules.hypo_l2, Patient(readings=readings))) == 2
    assert len(run(rules.hypo_l2, Patient(readings=readings, delivery_day=TODAY + 1))) == 2  # not yet
    assert len(run(rules.hypo_l2, Patient(readings=readings, delivery_day=TODAY))) == 0
    assert len(run(rules.hypo_l2, Patient(readings=readings, delivery_day=TODAY - 1))) == 0
    shifted = Patient(readings=readings, delivery_day=TODAY - 1, utc_offset_s=2 * H)
    assert len(run(rules.hypo_l2, shifted)) == 0


def test_insulin_floor_nice_on_insulin_only() -> None:
    t0 = at(-1, 3)
    readings = [R(t=t0, value=71.0), R(t=t0 + 2 * H, value=70.0), R(t=t0 + 4 * H, value=72.06236)]
    nice = Patient(readings=readings, profile="NICE", treatment="insulin")
    assert rows(run(rules.hypo_insulin_floor, nice)) == [
        (0, f"t{t0}", "warning", [1]),
        (0, f"t{t0 + 2 * H}", "warning", [2]),
    ]
    assert len(run(rules.hypo_insulin_floor, Patient(readings=readings, profile="FR", treatment="insulin"))) == 0
    assert len(run(rules.hypo_insulin_floor, Patient(readings=readings, profile="NICE", treatment="diet"))) == 0
    hypo = Patient(readings=[R(t=t0, value=71.0), R(t=t0 + 10 * MIN, value=69.9)], profile="NICE", treatment="insulin")
    assert len(run(rules.hypo_insulin_floor, hypo)) == 0  # already hypo: hypo_l1's episode


# ---------------------------------------------------------------------------------------------------------------
# Hyperglycaemia and targets
# ---------------------------------------------------------------------------------------------------------------


def test_fasting_severe_fr_only_strictly_above_130() -> None:
    pt = Patient(readings=[fasting(-2, 130.0), fasting(-1, 130.01), post(-1, 200.0)])
    c = run(rules.fasting_severe, pt)
    assert rows(c) == [(0, "d2024-06-09", "urgent", [2])]
    assert "130 mg/dL" in text(c, "en")[0] and "1.30 g/L" in text(c, "en", "g/L")[0]
    assert "1,30 g/L" in text(c, "fr", "g/L")[0]
    assert len(run(rules.fasting_severe, Patient(readings=[fasting(-1, 180.0)], profile="NICE"))) == 0


def test_ketone_check_at_200_one_episode_per_run() -> None:
    t0 = at(-1, 12)
    pt = Patient(readings=[R(t=t0, value=199.99), R(t=t0 + H, value=200.0), R(t=t0 + 90 * MIN, value=260.0)])
    c = run(rules.ketone_check, pt)
    assert rows(c) == [(0, f"t{t0 + H}", "warning", [2, 3])]
    assert c.evidence[0]["peak_mgdl"] == 260.0


def test_fasting_above_target_is_value_at_or_above_target_one_episode_per_local_day() -> None:
    pt = Patient(readings=[fasting(-2, 94.99), fasting(-1, 95.0), R(t=at(-1, 9), value=101, context="fasting")])
    c = run(rules.fasting_above_target, pt)
    assert rows(c) == [(0, "d2024-06-09", "info", [2, 3])]
    assert c.evidence[0]["target_mgdl"] == 95.0 and c.evidence[0]["profile"] == "FR"
    assert "target < 95 mg/dL" in text(c, "en")[0] and "cible < 95 mg/dL" in text(c, "fr")[0]
    nice = Patient(readings=[fasting(-2, 95.48), fasting(-1, 95.482627)], profile="NICE")
    assert [r[1] for r in rows(run(rules.fasting_above_target, nice))] == ["d2024-06-09"]
    override = Patient(readings=[fasting(-1, 93.0)], overrides={"fasting": 92})
    assert len(run(rules.fasting_above_target, override)) == 1


def test_above_target_days_are_local_days_given_by_the_cohort() -> None:
    # DST: the cohort's local_day says which day a reading belongs to, whatever the UTC date
    pt = Patient(
        readings=[
            R(t=at(-1, 23.5), value=100, context="fasting", local_day=TODAY, local_minute=30),
            R(t=at(0, 5), value=101, context="fasting", local_day=TODAY, local_minute=7 * 60),
        ]
    )
    assert rows(run(rules.fasting_above_target, pt)) == [(0, "d2024-06-10", "info", [1, 2])]


def test_postprandial_targets() -> None:
    fr = Patient(readings=[post(-3, 119.99, 60), post(-2, 120.0, 60), post(-1, 120.0, -1)])
    assert [r[3] for r in rows(run(rules.postprandial_above_target, fr))] == [[2], [3]]
    nice = Patient(
        profile="NICE",
        readings=[
            post(-4, 140.5, 60),  # 1 h target 140.52: in target
            post(-3, 140.521602, 60),  # at the target: above
            post(-2, 115.3, 120),  # 2 h target 115.30
            post(-1, 140.0, -1),  # unknown delay: NICE's 1 h target
        ],
    )
    c = run(rules.postprandial_above_target, nice)
    assert [r[3] for r in rows(c)] == [[2], [3]]
    assert c.evidence[0]["target_kind"] == ["post_1h"] and c.evidence[1]["target_kind"] == ["post_2h"]
    # NICE's 1 h target, 7.8 mmol/L (140.52 mg/dL), as NICE writes it
    assert "1 h target < 7.8" in text(c, "en", "mmol/L")[0] and "cible à 1 h < 7,8" in text(c, "fr", "mmol/L")[0]


def test_consecutive_above_target_within_the_context_sequence() -> None:
    readings = [fasting(-3, 100), post(-3, 100), fasting(-2, 101), post(-2, 100), fasting(-1, 102)]
    c = run(rules.consecutive_above_target, Patient(readings=readings))
    assert rows(c) == [(0, f"t{at(-3, 7)}-fasting", "warning", [1, 3, 5])]
    broken = [fasting(-4, 100), fasting(-3, 100), fasting(-2, 90), fasting(-1, 100)]
    assert len(run(rules.consecutive_above_target, Patient(readings=broken))) == 0
    posts = [post(-1, 130, 120, hour=h) for h in (8, 13, 20)]
    assert [r[1] for r in rows(run(rules.consecutive_above_target, Patient(readings=posts)))] == [
        f"t{at(-1, 8)}-after_meal"
    ]


def test_consecutive_run_reaching_back_before_the_lookback() -> None:
    readings = [fasting(-day, 100 + day) for day in range(1, 21)] + [fasting(-21, 90)]
    c = run(rules.consecutive_above_target, Patient(readings=readings), lookback_s=2 * DAY)
    assert len(c) == 1 and c.episode[0] == f"t{at(-20, 7)}-fasting"
    assert c.evidence[0]["run_length"] == 20
    old = [fasting(-day, 100) for day in range(5, 9)]
    assert len(run(rules.consecutive_above_target, Patient(readings=old), lookback_s=2 * DAY)) == 0


# ---------------------------------------------------------------------------------------------------------------
# Patterns (stateful)
# ---------------------------------------------------------------------------------------------------------------


def week(values: list[float], context: str = "fasting") -> list[R]:
    """One reading a day over the past days (newest last), within the 7-day window."""
    n = len(values)
    return [
        R(t=NOW - (n - i) * (6 * DAY // n) - H, value=v, context=context, minutes_after_meal=120)
        for i, v in enumerate(values)
    ]


def test_pattern_above_target_30_percent_of_at_least_8() -> None:
    fires = Patient(readings=week([100, 100, 100, 80, 80, 80, 80, 80, 80, 80]))  # 3 of 10 = 30 %
    below = Patient(readings=week([100, 100, 80, 80, 80, 80, 80, 80]))  # 2 of 8
    few = Patient(readings=week([100] * 7))
    delivered = Patient(readings=week([100] * 10), delivery_day=TODAY)
    c = run(rules.pattern_above_target, fires, below, few, delivered)
    assert rows(c) == [(0, "current", "warning", [1, 2, 3])]
    assert c.stateful and c.evaluated.tolist() == [True, True, False, True]
    assert c.evidence[0]["percent_above"] == 30.0


def test_fasting_pattern_half_above_115_of_at_least_4() -> None:
    fires = Patient(readings=week([116, 120, 115, 100]))
    at_115 = Patient(readings=week([116, 115, 115, 100]))
    few = Patient(readings=week([130, 130, 130]))
    c = run(rules.fasting_pattern, fires, at_115, few)
    assert rows(c) == [(0, "current", "warning", [1, 2, 3, 4])]
    assert c.evaluated.tolist() == [True, True, False]


def test_fasting_trend_slope_strictly_above_1_per_day() -> None:
    def daily(slope: float, n: int = 7) -> Patient:
        return Patient(readings=[R(t=NOW - k * DAY, value=90 - slope * k, context="fasting") for k in range(n)])

    c = run(rules.fasting_trend_rising, daily(1.5), daily(1.0), daily(3.0, n=6))
    assert [r[0] for r in rows(c)] == [0]
    assert c.evaluated.tolist() == [True, True, False]
    assert abs(c.evidence[0]["slope_mgdl_per_day"] - 1.5) < 1e-9


# ---------------------------------------------------------------------------------------------------------------
# Adherence and silence
# ---------------------------------------------------------------------------------------------------------------


def adherence_patient(per_day: list[int], **kw: object) -> Patient:
    """``per_day[k]`` meter readings on local day today-7+k, plus a first reading 10 days ago."""
    readings = [R(t=at(-10, 8), value=90)]
    for k, count in enumerate(per_day):
        readings += [R(t=at(-7 + k, 8 + j), value=90) for j in range(count)]
    return Patient(readings=readings, readings_per_day=4, **kw)  # type: ignore[arg-type]


def test_low_adherence_below_80_percent_of_the_last_7_full_days() -> None:
    low = adherence_patient([4, 4, 4, 4, 3, 3, 0])  # 22 < 22.4
    ok = adherence_patient([4, 4, 4, 4, 4, 3, 0])  # 23
    new = Patient(readings=[R(t=NOW - 6 * DAY, value=90)])
    cgm_only = adherence_patient([0] * 7, devices=DEVICE_CGM)
    c = run(rules.low_adherence, low, ok, new, cgm_only)
    assert [r[0] for r in rows(c)] == [0]
    assert c.evidence[0]["readings"] == 22 and c.evidence[0]["expected"] == 28
    assert c.evidence[0]["per_day"] == [4, 4, 4, 4, 3, 3, 0]
    assert c.evaluated.tolist() == [True, True, False, True]


def test_low_adherence_counts_neither_today_nor_control_solution() -> None:
    pt = adherence_patient([4, 4, 4, 4, 4, 2, 0])
    pt.readings += [R(t=at(0, 5), value=90) for _ in range(5)]  # today
    pt.readings += [R(t=at(-1, 20), value=90, flags=["control_solution"])]
    assert len(run(rules.low_adherence, pt)) == 1


def test_no_data_after_48_hours_for_meter_patients_without_cgm() -> None:
    silent = Patient(readings=[R(t=NOW - 48 * H - 1, value=90)])
    edge = Patient(readings=[R(t=NOW - 48 * H, value=90)])
    with_cgm = Patient(readings=[R(t=NOW - 72 * H, value=90)], devices=DEVICE_METER | DEVICE_CGM)
    never = Patient()
    c = run(rules.no_data, silent, edge, with_cgm, never)
    assert rows(c) == [(0, "current", "warning", [1])]
    assert c.evaluated.tolist() == [True, True, True, False]


# ---------------------------------------------------------------------------------------------------------------
# CGM
# ---------------------------------------------------------------------------------------------------------------


def test_cgm_stale_15_and_30_minutes() -> None:
    ages = [900, 901, 1800, 1801]
    patients = [Patient(readings=[cgm(NOW - a, 100)], devices=DEVICE_CGM) for a in ages]
    c = run(rules.cgm_stale, *patients, Patient(devices=DEVICE_CGM), Patient(readings=[R(t=NOW - DAY, value=90)]))
    assert [(r[0], r[2]) for r in rows(c)] == [(1, "warning"), (2, "warning"), (3, "urgent")]
    assert c.evaluated.tolist() == [True, True, True, True, False, True]


@pytest.mark.parametrize(
    "rule", [rules.cgm_stale, rules.cgm_predicted_low, rules.cgm_rapid_fall, rules.cgm_range_review]
)
def test_cgm_rules_without_a_cgm_wearer_judge_everyone_and_fire_for_none(rule: rules.Rule) -> None:
    """The shortcut for cohorts without a CGM wearer answers as the full rule does: a sensor since removed (CGM
    readings, meter device only) and a delivered CGM wearer are judged, so their open alerts resolve."""
    falling = [cgm(NOW - 900, 120), cgm(NOW - 600, 90), cgm(NOW - 300, 60)]
    cohort = [
        Patient(readings=falling),
        Patient(readings=falling, devices=DEVICE_CGM, delivery_day=NOW // DAY - 1),
        Patient(readings=[R(t=NOW - DAY, value=90)]),
    ]
    shortcut, full = rule(build(cohort)), rule.__wrapped__(build(cohort))  # type: ignore[attr-defined]
    assert len(shortcut) == len(full) == 0
    assert shortcut.evaluated.tolist() == full.evaluated.tolist() == [True, True, True]


def ar2_by_hand(prev: float, curr: float) -> list[float]:
    """ar2.js on two readings 5 minutes apart, written out."""
    y0, y1 = math.log(prev / 140), math.log(curr / 140)
    out = []
    for _ in range(6):
        y0, y1 = y1, -0.723 * y0 + 1.716 * y1
        out.append(float(min(400, max(36, math.floor(140 * math.exp(y1) + 0.5)))))
    return out


def test_ar2_forecast_and_predicted_low() -> None:
    falling = Patient(readings=[cgm(NOW - 600, 90), cgm(NOW - 300, 70)], devices=DEVICE_CGM)
    flat = Patient(readings=[cgm(NOW - 600, 100), cgm(NOW - 300, 100)], devices=DEVICE_CGM)
    stale = Patient(readings=[cgm(NOW - 3000, 100), cgm(NOW - 2700, 60)], devices=DEVICE_CGM)
    cohort = build([falling, flat, stale])
    patients, points = rules.ar2_forecast(cohort)
    assert patients.tolist() == [0, 1]
    assert points[0].tolist() == ar2_by_hand(90, 70)
    assert points[1].tolist() == ar2_by_hand(100, 100)  # drifts towards 140 (the coefficients sum to 0.993)
    c = rules.cgm_predicted_low(cohort)
    assert min(ar2_by_hand(90, 70)[:4]) <= 55
    assert rows(c) == [(0, "current", "urgent", [1, 2])]
    assert c.evaluated.tolist() == [True, True, False]
    assert c.evidence[0]["forecast_mgdl"] == ar2_by_hand(90, 70)


def test_ar2_interpolates_readings_more_than_9_minutes_apart() -> None:
    # 100 then 80 fifteen minutes later (bgnow's buckets reach 17.5 min back): the value 5 minutes before
    # the last is on the line between them
    pt = Patient(readings=[cgm(NOW - 1000, 100), cgm(NOW - 100, 80)], devices=DEVICE_CGM)
    _, points = rules.ar2_forecast(build([pt]))
    assert points[0].tolist() == ar2_by_hand(80 - (80 - 100) / 15 * 5, 80)
    # twenty minutes apart: no previous bucket, no forecast (as Nightscout)
    far = Patient(readings=[cgm(NOW - 1300, 100), cgm(NOW - 100, 80)], devices=DEVICE_CGM)
    assert len(rules.ar2_forecast(build([far]))[0]) == 0


def test_cgm_rapid_fall() -> None:
    def trace(rate: float, n: int = 4) -> Patient:
        return Patient(
            readings=[cgm(NOW - 60 - 300 * k, 120 - rate * 5 * (n - 1 - k)) for k in range(n)], devices=DEVICE_CGM
        )

    c = run(rules.cgm_rapid_fall, trace(4.0), trace(2.0), trace(4.0, n=2))
    assert [r[0] for r in rows(c)] == [0]
    assert abs(c.evidence[0]["rate_mgdl_per_min"] + 4.0) < 1e-9
    assert c.evaluated.tolist() == [True, True, False]


def fortnight(values: np.ndarray, step: int = 300) -> Patient:
    n = len(values)
    return Patient(readings=[cgm(NOW - step * (n - 1 - k), float(v)) for k, v in enumerate(values)], devices=DEVICE_CGM)


def test_cgm_range_review() -> None:
    n = 14 * 288
    in_range = fortnight(np.full(n, 100.0) + np.tile([0.0, 5.0], n // 2))
    high = np.full(n, 100.0)
    high[: int(0.25 * n)] = 150.0  # above 140 for exactly 25 %
    below_54 = np.full(n, 100.0)
    below_54[: math.ceil(0.01 * n)] = 53.0  # 1 % below 54 (and below 63)
    sparse = np.full(int(0.69 * n), 100.0)
    one_minute = fortnight(np.full(9 * 1440, 100.0), step=60)  # many readings, 9 days of slots: not enough data
    c = run(rules.cgm_range_review, in_range, fortnight(high), fortnight(below_54), fortnight(sparse), one_minute)
    assert [r[0] for r in rows(c)] == [1, 2]
    assert c.evaluated.tolist() == [True, True, True, False, False]
    ev = c.evidence[0]
    assert ev["failing"] == ["above_140"] and ev["above_140_pct"] == 25.0
    assert abs(ev["gmi_pct"] - (3.31 + 0.02392 * ev["mean_mgdl"])) < 1e-12
    assert set(c.evidence[1]["failing"]) == {"below_54"}


# ---------------------------------------------------------------------------------------------------------------
# Postpartum, registry
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "days", "due"),
    [("ADA", 27, False), ("ADA", 28, True), ("ADA", 84, True), ("ADA", 85, False), ("FR", 41, False),
     ("FR", 42, True), ("FR", 56, True), ("FR", 57, False), ("NICE", 42, True), ("NICE", 91, True),
     ("NICE", 92, False)],
)  # fmt: skip
def test_postpartum_test_due(profile: str, days: int, due: bool) -> None:
    c = run(rules.postpartum_test_due, Patient(profile=profile, delivery_day=TODAY - days))
    assert [r[1:3] for r in rows(c)] == ([("postpartum", "info")] if due else [])
    assert not c.stateful


def test_no_delivery_no_postpartum_alert() -> None:
    assert len(run(rules.postpartum_test_due, Patient(profile="ADA"))) == 0


def test_registry_and_empty_cohorts() -> None:
    assert [r.__name__ for r in rules.ALL_RULES] == [
        "hypo_l2", "hypo_l1", "hypo_insulin_floor", "fasting_severe", "ketone_check", "fasting_above_target",
        "postprandial_above_target", "consecutive_above_target", "pattern_above_target", "fasting_pattern",
        "fasting_trend_rising", "low_adherence", "no_data", "cgm_stale", "cgm_predicted_low", "cgm_rapid_fall",
        "cgm_range_review", "postpartum_test_due", "ketones_high", "blood_pressure_high", "dose_review",
        "treatment_review", "doses_missing",
    ]  # fmt: skip
    for cohort in (build([]), build([Patient(), Patient(devices=DEVICE_CGM | DEVICE_METER)])):
        results = rules.evaluate(cohort)
        assert [r.rule for r in results] == [r.__name__ for r in rules.ALL_RULES]
        assert all(len(r) == 0 for r in results)
        for r in results:
            assert r.stateful == (r.rule in rules.STATEFUL_RULES)
            if r.stateful:
                assert len(r.evaluated) == cohort.n_patients


# ---------------------------------------------------------------------------------------------------------------
# Lazy evidence and messages
# ---------------------------------------------------------------------------------------------------------------


def test_evidence_and_messages_are_built_on_first_read_and_equal_the_eager_ones() -> None:
    cohort = random_cohort(3, 12, long_cgm=0.5)
    eager = rules.evaluate(cohort)
    assert all(r.materialised for r in eager)
    cohort.cache.clear()
    lazy = rules.evaluate(cohort, materialise=False)
    assert sum(len(r) for r in lazy) > 0
    assert not any(r.materialised for r in lazy if len(r))
    for e, z in zip(eager, lazy, strict=True):
        assert z.patient.tolist() == e.patient.tolist() and z.evaluated.tolist() == e.evaluated.tolist()
        # reading any column builds them all, once
        assert z.episode == e.episode and z.materialised
        assert (z.severity, z.evidence, z.code, z.params) == (
            e.severity,
            e.evidence,
            e.code,
            e.params,
        )
        assert z.episode is z.episode
    rules.materialise_all(lazy)  # nothing left to build
    # the builders keep what they need of a cohort nobody else holds any more
    orphans = rules.evaluate(random_cohort(3, 12, long_cgm=0.5), materialise=False)
    gc.collect()
    rules.materialise_all(orphans)
    assert [r.evidence for r in orphans] == [r.evidence for r in eager]


def test_candidates_take_columns_or_a_builder() -> None:
    none = np.zeros(0, dtype=np.int64)
    c = Candidates("r", np.array([4]), ["info"], ["current"], [{"reading_ids": []}], ["r"], [{"n": 1}])
    assert c.materialised and len(c) == 1 and c.params == [{"n": 1}] and not c.stateful and len(c.evaluated) == 0
    with pytest.raises(ValueError):
        Candidates("r", np.array([4]), ["info"], [], [{}], ["r"], [{}])  # columns of different lengths
    with pytest.raises(ValueError):
        Candidates("r", none)  # neither columns nor a builder
    with pytest.raises(ValueError):
        Candidates("r", none, [], [], [], [], [], build=lambda: ([], [], [], [], []))
    calls: list[int] = []

    def build() -> tuple[list[str], list[str], list[dict[str, object]], list[str], list[dict[str, object]]]:
        calls.append(1)
        return ["urgent"], ["t1"], [{"reading_ids": [1]}], ["r"], [{}]

    lazy = Candidates("r", np.array([0]), build=build)
    assert not lazy.materialised and calls == [] and "lazy" in repr(lazy)
    assert lazy.severity == ["urgent"] and lazy.evidence == [{"reading_ids": [1]}] and calls == [1]
    assert lazy.materialise() is lazy and calls == [1]
    wrong = Candidates("r", np.array([0, 1]), build=build)
    with pytest.raises(ValueError):
        wrong.materialise()
