"""The vectorised rules agree with the plain-Python reference (tests/reference_rules.py) on random cohorts and on
real CGM traces, and reproduce Nightscout's simple alarm levels and AR2 forecast."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts import rules
from alerts.cohort import DEVICE_CGM, FLAG_INFERRED, Candidates, Cohort
from tests.reference_rules import RefResult, ns_ar2_forecast, ns_simplealarm_level, reference
from tests.support.cohorts import (
    NOW,
    TRACES,
    Patient,
    R,
    build,
    random_cohort,
    synthetic_cohort,
    synthetic_record,
    trace_cohort,
)

Key = tuple[int, str, str, str, tuple[int, ...]]

# numbers of the evidence compared with the reference's (relative tolerance: summation order may differ)
NUMBERS = {
    "fasting_trend_rising": ("slope_mgdl_per_day",),
    "cgm_rapid_fall": ("rate_mgdl_per_min",),
    "cgm_range_review": (
        "time_in_range_pct", "below_63_pct", "below_54_pct", "above_140_pct", "cv_pct", "mean_mgdl", "gmi_pct",
        "data_pct",
    ),
}  # fmt: skip


def summarise(results: list[Candidates]) -> tuple[set[Key], dict[str, set[int]], dict[tuple[str, int], Any]]:
    keys: set[Key] = set()
    evaluated: dict[str, set[int]] = {}
    evidence: dict[tuple[str, int], Any] = {}
    for cands in results:
        for i in range(len(cands)):
            p = int(cands.patient[i])
            keys.add((p, cands.rule, cands.episode[i], cands.severity[i], tuple(cands.evidence[i]["reading_ids"])))
            evidence[(cands.rule, p)] = cands.evidence[i]
        if cands.stateful:
            evaluated[cands.rule] = set(np.flatnonzero(cands.evaluated).tolist())
    return keys, evaluated, evidence


def assert_agree(c: Cohort) -> RefResult:
    results = rules.evaluate(c, materialise=False)  # evidence built on first read (as eagerly: test_rules)
    got, evaluated, evidence = summarise(results)
    ref = reference(c)
    expected = {(x.patient, x.rule, x.episode, x.severity, x.reading_ids) for x in ref.candidates}
    assert sorted(got - expected) == [] and sorted(expected - got) == []
    for rule, judged in ref.evaluated.items():
        assert evaluated[rule] == judged, rule
    for (rule, p), numbers in ref.numbers.items():
        for name in NUMBERS[rule]:
            assert math.isclose(evidence[(rule, p)][name], numbers[name], rel_tol=1e-9, abs_tol=1e-9), (rule, name)
    # the dose review's suggestions: slot, current and suggested units
    doses = {
        (int(cands.patient[i]), cands.episode[i]): (
            cands.params[i]["slot"],
            cands.params[i]["current_units"],
            cands.params[i]["suggested_units"],
        )
        for cands in results
        if cands.rule == "dose_review"
        for i in range(len(cands))
    }
    assert doses == ref.doses
    # the forecasts of every judged patient, to the mg/dL
    forecast_patients, points = rules.ar2_forecast(c)
    fresh = dict(zip(forecast_patients.tolist(), points.tolist(), strict=True))
    assert {p: fresh[p] for p in ref.forecasts} == ref.forecasts
    return ref


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_patients=st.integers(0, 20),
    long_cgm=st.sampled_from([0.0, 0.3, 0.6]),
    lookback_days=st.sampled_from([1, 7]),
)
def test_engine_agrees_with_reference_on_random_cohorts(
    seed: int, n_patients: int, long_cgm: float, lookback_days: int
) -> None:
    assert_agree(random_cohort(seed, n_patients, long_cgm=long_cgm, lookback_days=lookback_days))


def _with_inferred_contexts(c: Cohort, seed: int, share: float) -> Cohort:
    """``c`` with a random ``share`` of its readings marked as sent without a context (the engine and the
    reference then place them among the readings of their day)."""
    rng = np.random.default_rng(seed)
    c.flags[rng.random(len(c.flags)) < share] |= FLAG_INFERRED
    c.cache.clear()
    return c


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_patients=st.integers(0, 20),
    share=st.sampled_from([0.3, 0.7, 1.0]),
)
def test_engine_agrees_with_reference_on_inferred_contexts(seed: int, n_patients: int, share: float) -> None:
    assert_agree(_with_inferred_contexts(random_cohort(seed, n_patients), seed, share))


def test_inferred_contexts_change_what_fires() -> None:
    """The placement of inferred readings is not vacuous on random cohorts: it changes the fasting candidates,
    and some severe fasting days are downgraded to warnings."""
    changed = downgraded = 0
    for seed in range(30):
        plain = {(r.rule, int(p)) for r in rules.evaluate(random_cohort(seed, 12)) for p in r.patient}
        results = rules.evaluate(_with_inferred_contexts(random_cohort(seed, 12), seed, 1.0))
        placed = {(r.rule, int(p)) for r in results for p in r.patient}
        changed += plain != placed
        downgraded += sum(s == "warning" for r in results if r.rule == "fasting_severe" for s in r.severity)
    assert changed > 0 and downgraded > 0


def test_random_cohorts_exercise_every_rule() -> None:
    """The random cohorts above are not vacuous: together they make every rule fire and every stateful rule
    judge some patients and not others."""
    fired: set[str] = set()
    codes: set[str] = set()
    judged: dict[str, set[bool]] = {r: set() for r in rules.STATEFUL_RULES}
    for seed in range(40):
        for cands in rules.evaluate(random_cohort(seed, 12, long_cgm=0.5)):
            if len(cands):
                fired.add(cands.rule)
                codes.update(cands.code)
            if cands.stateful:
                judged[cands.rule] |= set(cands.evaluated.tolist())
    assert fired == {r.__name__ for r in rules.ALL_RULES}
    new_codes = {"dose_review.increase", "dose_review.reduction", "ketones_high.urine", "blood_pressure_high.severe"}
    assert new_codes <= codes
    # the dose review and the missing doses need no amount of data: they judge every patient
    everyone = {"dose_review", "doses_missing"}
    assert all(v == ({True} if rule in everyone else {True, False}) for rule, v in judged.items()), judged


def test_engine_agrees_with_reference_on_a_synthetic_treatment_record() -> None:
    """The bench's synthetic cohorts with a treatment record (plans, daily doses, blood pressures, ketones)."""
    c = synthetic_cohort(40, 20, 6, 4, 3, seed=5)
    c.record = synthetic_record(c, seed=5)
    ref = assert_agree(c)
    assert {x.rule for x in ref.candidates} >= {"ketones_high", "blood_pressure_high", "dose_review"}


@cache
def cached_trace(name: str, after_end_s: int, align_ends: bool) -> Cohort:
    return trace_cohort(name, after_end_s=after_end_s, align_ends=align_ends)


@pytest.mark.parametrize("name", sorted(TRACES))
@pytest.mark.parametrize(
    ("after_end_s", "align_ends"),
    [(60, False), (60, True), (1000, True), (2000, True)],
    ids=["end", "aligned", "stale", "urgent"],
)
def test_engine_agrees_with_reference_on_real_traces(name: str, after_end_s: int, align_ends: bool) -> None:
    c = cached_trace(name, after_end_s, align_ends)
    c.cache.clear()
    ref = assert_agree(c)
    assert ref.candidates, "a real trace raises alerts"


def test_real_traces_raise_cgm_alerts() -> None:
    counts: dict[str, int] = {}
    for name in TRACES:
        for after, align in ((60, True), (1000, True)):
            for cands in rules.evaluate(cached_trace(name, after, align)):
                counts[cands.rule] = counts.get(cands.rule, 0) + len(cands)
    for rule in ("hypo_l2", "hypo_l1", "ketone_check", "cgm_stale", "cgm_range_review", "cgm_predicted_low"):
        assert counts.get(rule, 0) > 0, rule


# ---------------------------------------------------------------------------------------------------------------
# Nightscout equivalence
# ---------------------------------------------------------------------------------------------------------------

NS_THRESHOLDS = {"bg_high": 260, "bg_target_top": 180, "bg_target_bottom": 80, "bg_low": 55}


def test_threshold_levels_reproduce_nightscout_simplealarms() -> None:
    boundaries = [t + d for t in (55, 80, 180, 260) for d in (-0.5, -0.01, 0, 0.01, 0.5)]
    values = sorted({*np.arange(40.0, 401.0, 0.5).tolist(), *boundaries})
    levels = rules.threshold_levels(values, 55, 80, 180, 260)
    expected = [ns_simplealarm_level([{"mills": 0, "mgdl": v}], 60_000, NS_THRESHOLDS) for v in values]
    assert levels.tolist() == expected
    assert set(expected) == {-2, -1, 0, 1, 2}


@st.composite
def cgm_tails(draw: st.DrawFn) -> list[tuple[int, float]]:
    """The last few CGM readings before ``NOW``: spacing 0–20 min (gaps, duplicates, 1-min sensors), values
    including Dexcom error codes and sensor limits."""
    n = draw(st.integers(1, 7))
    gaps = draw(
        st.lists(
            st.sampled_from([0, 30, 60, 149, 150, 151, 240, 300, 301, 449, 450, 451, 600, 750, 1200]),
            min_size=n,
            max_size=n,
        )
    )
    values = draw(
        st.lists(
            st.one_of(st.sampled_from([13.0, 38.0, 39.0, 40.0, 400.0]), st.floats(40, 400).map(lambda v: round(v, 1))),
            min_size=n,
            max_size=n,
        )
    )
    age = draw(st.sampled_from([0, 60, 299, 900]))
    t = NOW - age
    out = []
    for gap, value in zip(gaps, values, strict=True):
        out.append((t, value))
        t -= gap
    return out[::-1]


@settings(max_examples=150, deadline=None)
@given(tails=st.lists(cgm_tails(), min_size=1, max_size=12))
def test_ar2_forecast_equals_nightscout(tails: list[list[tuple[int, float]]]) -> None:
    patients = [Patient(readings=[R(t=t, value=v, kind="cgm") for t, v in tail], devices=DEVICE_CGM) for tail in tails]
    c = build(patients)
    got_patients, points = rules.ar2_forecast(c)
    got = dict(zip(got_patients.tolist(), points.tolist(), strict=True))
    for p, tail in enumerate(tails):
        entries = [{"mills": t * 1000, "mgdl": v} for t, v in sorted(tail, key=lambda x: x[0])]
        predicted = ns_ar2_forecast(entries, NOW * 1000)["predicted"]
        if predicted and not any(math.isnan(x) for x in predicted):
            assert got[p] == predicted
        else:
            assert p not in got
