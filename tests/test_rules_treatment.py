"""Crafted scenarios of the treatment record's rules: the dose review (titration protocol), the treatment review of a
diet, ketones, blood pressure, missing doses, and what a recorded result quiets (ketone check, postpartum test)."""

from __future__ import annotations

import pytest

from alerts import rules
from alerts.messages import render
from alerts.titration import DEFAULT, Protocol
from tests.support.cohorts import DAY, NOW, M, Patient, Plan, R
from tests.test_rules import TODAY, H, at, rows, run

NPH_10 = Plan(version=2, since=NOW - 5 * DAY, basal_units=10.0, basal_product="NPH")


def on_insulin(*readings: R, plan: Plan = NPH_10, **kw: object) -> Patient:
    return Patient(readings=list(readings), treatment="insulin", plan=plan, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# dose_review
# ---------------------------------------------------------------------------------------------------------------


def fasting_days(*values: float) -> list[R]:
    """One fasting reading at 05:00 UTC on each of the last days, the last one today (NOW is 06:13 UTC)."""
    n = len(values)
    return [R(t=at(k - n + 1, 5), value=v, context="fasting") for k, v in enumerate(values)]


def test_three_days_above_target_suggest_the_protocols_step() -> None:
    readings = fasting_days(101, 112, 104)
    c = run(rules.dose_review, on_insulin(*readings))
    assert rows(c) == [(0, "v2-increase", "warning", [1, 2, 3])]
    assert c.stateful and c.evaluated.tolist() == [True]
    params = c.params[0]
    assert (params["slot"], params["product"], params["current_units"], params["suggested_units"]) == (
        "basal",
        "NPH",
        10.0,
        12.0,
    )
    assert (params["plan_version"], params["days_above"], params["days_window"], params["days_required"]) == (
        2,
        3,
        3,
        3,
    )
    assert params["protocol"] == DEFAULT.as_json() and params["protocol_default"]
    assert "Davies" in params["source"] and c.code == ["dose_review.increase"]
    assert "10.0 U → 12.0 U" in render(c.code[0], params, "en")
    assert "Dose basale suggérée : 10,0 U → 12,0 U" in render(c.code[0], params, "fr", "g/L")


@pytest.mark.parametrize(
    "values",
    [
        (101, 90, 104),  # a day in target
        (101, 104),  # two days only
        (95.0 - 0.01, 101, 104),  # just below the FR target (95 mg/dL) on one day
    ],
)
def test_fewer_days_above_than_required_suggest_nothing(values: tuple[float, ...]) -> None:
    c = run(rules.dose_review, on_insulin(*fasting_days(*values)))
    assert len(c) == 0 and c.evaluated.tolist() == [True]


def test_a_retest_in_target_clears_the_day() -> None:
    readings = [*fasting_days(101, 112, 104), R(t=at(0, 5.5), value=88, context="fasting")]
    assert len(run(rules.dose_review, on_insulin(*readings))) == 0


def test_a_changed_dose_is_judged_on_its_own_days_whatever_the_plans_age() -> None:
    """Applying a suggestion (a new version with another basal dose) clears it rather than raising the next step at
    once; a plan written today whose basal dose never changed is judged on the last days all the same."""
    applied = Plan(version=3, since=at(-1, 0), basal_units=12.0, dose_since={"basal": at(-1, 0)})
    assert len(run(rules.dose_review, on_insulin(*fasting_days(101, 112, 104), plan=applied))) == 0
    new = Plan(version=1, since=NOW - 60, basal_units=10.0)
    assert rows(run(rules.dose_review, on_insulin(*fasting_days(101, 112, 104), plan=new)))[0][1] == "v1-increase"
    # another dose changed (lunch): the basal dose's days are unaffected
    other = Plan(version=4, since=at(-1, 0), basal_units=10.0, prandial={"lunch": 4.0}, dose_since={"lunch": at(-1, 0)})
    assert rows(run(rules.dose_review, on_insulin(*fasting_days(101, 112, 104), plan=other)))[0][1] == "v4-increase"


def test_the_teams_protocol_decides_and_can_silence_suggestions() -> None:
    readings = fasting_days(101, 112, 104, 99, 130)
    percent = Protocol(step_units=None, step_percent=20, window_days=5, days_required=4, max_step_units=4)
    heavy = Plan(version=1, since=NOW - 10 * DAY, basal_units=30.0, basal_product="Levemir")
    c = run(rules.dose_review, on_insulin(*readings, plan=heavy, protocol=percent))
    assert (c.params[0]["current_units"], c.params[0]["suggested_units"]) == (30.0, 34.0)  # 6 U capped at 4
    assert c.params[0]["days_above"] == 5 and not c.params[0]["protocol_default"]
    assert c.params[0]["source"] == "care team protocol"
    quiet = Protocol(suggestions_enabled=False)
    assert len(run(rules.dose_review, on_insulin(*readings, protocol=quiet))) == 0


def test_a_night_hypoglycaemia_suggests_a_basal_reduction_instead_of_an_increase() -> None:
    night = R(t=at(0, 3), value=62, context="night")
    c = run(rules.dose_review, on_insulin(*fasting_days(101, 112, 104), night))
    assert rows(c) == [(0, "v2-reduction-basal", "warning", [3])]  # the night reading, between two fasting ones
    params = c.params[0]
    assert (params["slot"], params["current_units"], params["suggested_units"]) == ("basal", 10.0, 9.0)
    assert params["hypo"]["mgdl"] == 62 and params["threshold_mgdl"] == 70.0
    assert c.code == ["dose_review.reduction"]


def test_a_hypoglycaemia_after_lunch_reduces_the_lunch_dose() -> None:
    plan = Plan(version=1, since=NOW - 9 * DAY, basal_units=10.0, prandial={"breakfast": 4.0, "lunch": 6.0})
    after_lunch = R(t=at(-1, 14), value=65, context="after_meal", meal="lunch", minutes_after_meal=120)
    c = run(rules.dose_review, on_insulin(after_lunch, plan=plan))
    assert [(p["slot"], p["product"], p["current_units"], p["suggested_units"]) for p in c.params] == [
        ("lunch", "NovoRapid", 6.0, 5.5)  # 10 % of 6 U = 0.6, a half unit
    ]
    # without a lunch dose in the plan, the basal dose preceded it
    basal_only = Plan(version=1, since=NOW - 9 * DAY, basal_units=10.0)
    assert [p["slot"] for p in run(rules.dose_review, on_insulin(after_lunch, plan=basal_only)).params] == ["basal"]
    # a reading without context at 09:30 follows breakfast
    morning = R(t=at(-1, 9.5), value=60)
    assert [p["slot"] for p in run(rules.dose_review, on_insulin(morning, plan=plan)).params] == ["breakfast"]


@pytest.mark.parametrize(
    "patient",
    [
        Patient(readings=fasting_days(101, 112, 104), treatment="diet"),  # no insulin
        on_insulin(*fasting_days(101, 112, 104), plan=Plan(version=0)),  # no plan written
        on_insulin(*fasting_days(101, 112, 104), delivery_day=TODAY - 1),  # delivered
        on_insulin(R(t=NOW - 4 * DAY, value=60)),  # before the window
        on_insulin(R(t=at(-1, 3), value=60), plan=Plan(version=2, basal_units=8.0, dose_since={"basal": at(-1, 4)})),
        on_insulin(R(t=at(0, 3), value=70, context="night")),  # 70 is not below 70
    ],
)
def test_no_dose_review(patient: Patient) -> None:
    assert len(run(rules.dose_review, patient)) == 0


# ---------------------------------------------------------------------------------------------------------------
# treatment_review
# ---------------------------------------------------------------------------------------------------------------


def week(above: int, total: int = 10) -> list[R]:
    """``total`` fasting readings of the past days, ``above`` of them above the FR target."""
    return [R(t=NOW - (k + 1) * 12 * H, value=120 if k < above else 85, context="fasting") for k in range(total)]


@pytest.mark.parametrize(
    ("treatment", "days_since_start", "above", "fires"),
    [
        ("diet", 10, 3, True),  # 30 % of 10
        ("diet", 10, 2, False),  # 20 %
        ("diet", 7, 4, True),  # the trial's first day (FR: 7 days)
        ("diet", 6, 9, False),  # still in the trial period
        ("insulin", 30, 9, False),  # treated already
    ],
)
def test_treatment_review_after_the_trial_period(
    treatment: str, days_since_start: int, above: int, fires: bool
) -> None:
    pt = Patient(readings=week(above), treatment=treatment, start_day=TODAY - days_since_start)
    c = run(rules.treatment_review, pt)
    assert [r[1:3] for r in rows(c)] == ([("current", "warning")] if fires else [])
    assert c.evaluated.tolist() == [True]
    if fires:
        assert c.params[0]["trial_days"] == 7 and c.params[0]["days_since_start"] == days_since_start


def test_treatment_review_needs_eight_readings_and_follows_the_profiles_trial() -> None:
    few = run(rules.treatment_review, Patient(readings=week(7, 7), start_day=TODAY - 30))
    assert len(few) == 0 and few.evaluated.tolist() == [False]
    ada = run(rules.treatment_review, Patient(readings=week(5), profile="ADA", start_day=TODAY - 10))
    assert len(ada) == 0  # ADA: 14 days


# ---------------------------------------------------------------------------------------------------------------
# ketones_high, ketone_check, blood_pressure_high
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "urine", "severity"),
    [(0.59, None, None), (0.6, None, "warning"), (1.49, None, "warning"), (1.5, None, "urgent"), (4.2, None, "urgent"),
     (None, "trace", None), (None, "negative", None), (None, "+", "warning"), (None, "++", "urgent"),
     (None, "+++", "urgent")],
)  # fmt: skip
def test_ketones_high(value: float | None, urine: str | None, severity: str | None) -> None:
    pt = Patient(measurements=[M(t=NOW - H, kind="ketone", value=value, urine=urine)])
    c = run(rules.ketones_high, pt)
    assert [r[2] for r in rows(c)] == ([severity] if severity else [])
    if severity:
        assert c.episode == [f"t{NOW - H}-m1"] and c.evidence[0]["measurement_ids"] == [1]
        assert c.code == [f"ketones_high.{'blood' if value is not None else 'urine'}"]


def test_old_or_postpartum_results_open_nothing() -> None:
    old = Patient(measurements=[M(t=NOW - 8 * DAY, kind="ketone", value=3.0)])
    delivered = Patient(measurements=[M(t=NOW - H, kind="ketone", value=3.0)], delivery_day=TODAY - 2)
    assert len(run(rules.ketones_high, old, delivered)) == 0
    bp = Patient(measurements=[M(t=NOW - H, kind="blood_pressure", systolic=170, diastolic=115)], delivery_day=TODAY)
    assert len(run(rules.blood_pressure_high, bp)) == 0


@pytest.mark.parametrize(
    ("after_s", "quiet"),
    [(-2 * 3600 - 1, False), (-2 * 3600, True), (0, True), (2 * 3600, True), (2 * 3600 + 1, False)],
)
def test_a_ketone_result_within_two_hours_answers_the_ketone_check(after_s: int, quiet: bool) -> None:
    high = R(t=NOW - 5 * H, value=250)
    pt = Patient(readings=[high], measurements=[M(t=high.t + after_s, kind="ketone", urine="negative")])
    assert len(run(rules.ketone_check, pt)) == (0 if quiet else 1)


@pytest.mark.parametrize(
    ("systolic", "diastolic", "severity"),
    [(139, 89, None), (140, 80, "warning"), (120, 90, "warning"), (159, 109, "warning"), (160, 80, "urgent"),
     (150, 110, "urgent"), (165, 112, "urgent")],
)  # fmt: skip
def test_blood_pressure_high(systolic: float, diastolic: float, severity: str | None) -> None:
    pt = Patient(measurements=[M(t=NOW - H, kind="blood_pressure", systolic=systolic, diastolic=diastolic)])
    c = run(rules.blood_pressure_high, pt)
    assert [r[2] for r in rows(c)] == ([severity] if severity else [])
    if severity == "urgent":
        assert c.code == ["blood_pressure_high.severe"] and "NICE NG133" in render(c.code[0], c.params[0], "en")


# ---------------------------------------------------------------------------------------------------------------
# doses_missing, postpartum test recorded
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("treatment", "last_dose_ago_s", "fires"),
    [("insulin", 3 * DAY, True), ("insulin", 3 * DAY - 1, False), ("insulin", 13 * DAY, True),
     ("insulin", 15 * DAY, False), ("insulin", None, False), ("diet", 5 * DAY, False)],
)  # fmt: skip
def test_doses_missing(treatment: str, last_dose_ago_s: int | None, fires: bool) -> None:
    doses = [] if last_dose_ago_s is None else [M(t=NOW - last_dose_ago_s, kind="insulin", value=10, insulin="basal")]
    c = run(rules.doses_missing, Patient(treatment=treatment, measurements=doses))
    assert [r[1:3] for r in rows(c)] == ([("current", "info")] if fires else [])
    assert c.stateful and c.evaluated.tolist() == [True]


def test_a_recorded_postpartum_test_quiets_the_reminder() -> None:
    due = Patient(profile="ADA", delivery_day=TODAY - 40)
    tested = Patient(profile="ADA", delivery_day=TODAY - 40, postpartum_tested=True)
    assert [r[0] for r in rows(run(rules.postpartum_test_due, due, tested))] == [0]
