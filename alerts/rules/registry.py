"""The rules, in one table: name, family, severities, stateful or not, source. Everything else that lists rules
(the engine's passes, the store's confirmation, the dashboard's names) derives from :data:`RULES`.

- *stateful* rules (time-driven, patterns, stale data) use the episode ``"current"`` and report the patients they
  ``evaluated``: their alert resolves itself when the condition clears;
- *fresh_only* rules judge only a sensor whose last reading is minutes old: a backfill's old readings never make
  them fire, so, unlike the other stateful rules, they do not wait for a second evaluation to open an alert (a
  predicted low must not wait).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from dataclasses import dataclass

from alerts import profiles as P
from alerts import titration
from alerts.cohort import Candidates, Cohort
from alerts.rules.adherence import low_adherence, no_data
from alerts.rules.build import Rule
from alerts.rules.cgm import cgm_predicted_low, cgm_range_review, cgm_rapid_fall, cgm_stale
from alerts.rules.hypoglycaemia import hypo_insulin_floor, hypo_l1, hypo_l2
from alerts.rules.measurements import blood_pressure_high, ketones_high
from alerts.rules.patterns import fasting_pattern, pattern_above_target
from alerts.rules.postpartum import postpartum_test_due
from alerts.rules.targets import (
    consecutive_above_target,
    fasting_above_target,
    fasting_severe,
    ketone_check,
    postprandial_above_target,
)
from alerts.rules.treatment import dose_review, doses_missing, treatment_review
from alerts.rules.trend import fasting_trend_rising


@dataclass(frozen=True)
class RuleSpec:
    rule: Rule
    family: str
    severities: tuple[str, ...]  # the severities it may raise
    stateful: bool
    source: str
    fresh_only: bool = False
    # decision support: a person who resolves the alert (dismisses the suggestion) decides for its episode, which
    # never opens again; a new episode (a new plan version, another suggestion) may
    stays_dismissed: bool = False

    @property
    def name(self) -> str:
        return self.rule.__name__


INFO, W, U = "info", "warning", "urgent"

# In evaluation order (the order of the candidates an evaluation returns).
RULES: tuple[RuleSpec, ...] = (
    RuleSpec(hypo_l2, "hypoglycaemia", (U,), False, P.HYPO_SOURCE),
    RuleSpec(hypo_l1, "hypoglycaemia", (W,), False, P.HYPO_SOURCE),
    RuleSpec(hypo_insulin_floor, "hypoglycaemia", (W,), False, P.NICE_INSULIN_FLOOR_SOURCE),
    # urgent; a warning when the fasting context was only inferred
    RuleSpec(fasting_severe, "targets", (W, U), False, P.FASTING_SEVERE_SOURCE),
    RuleSpec(ketone_check, "targets", (W,), False, P.KETONE_CHECK_SOURCE),
    RuleSpec(fasting_above_target, "targets", (INFO,), False, "the patient's profile"),
    RuleSpec(postprandial_above_target, "targets", (INFO,), False, "the patient's profile"),
    RuleSpec(consecutive_above_target, "targets", (W,), False, "the patient's profile"),
    RuleSpec(pattern_above_target, "patterns", (W,), True, P.PATTERN_SOURCE),
    RuleSpec(fasting_pattern, "patterns", (W,), True, P.PATTERN_SOURCE),
    RuleSpec(fasting_trend_rising, "trend", (INFO,), True, P.TREND_SOURCE),
    RuleSpec(low_adherence, "adherence", (INFO,), True, P.ADHERENCE_SOURCE),
    RuleSpec(no_data, "adherence", (W,), True, P.STALE_SOURCE),
    RuleSpec(cgm_stale, "cgm", (W, U), True, P.STALE_SOURCE),
    RuleSpec(cgm_predicted_low, "cgm", (U,), True, P.PREDICTED_LOW_SOURCE, fresh_only=True),
    RuleSpec(cgm_rapid_fall, "cgm", (W,), True, P.RAPID_FALL_SOURCE, fresh_only=True),
    RuleSpec(cgm_range_review, "cgm", (W,), True, P.CGM_SOURCE),
    RuleSpec(postpartum_test_due, "postpartum", (INFO,), False, "the patient's profile"),
    RuleSpec(ketones_high, "measurements", (W, U), False, P.KETONES_SOURCE),
    RuleSpec(blood_pressure_high, "measurements", (W, U), False, P.BP_SOURCE),
    RuleSpec(dose_review, "treatment", (W,), True, titration.DEFAULT_SOURCE, stays_dismissed=True),
    RuleSpec(treatment_review, "treatment", (W,), True, P.TREATMENT_REVIEW_SOURCE),
    RuleSpec(doses_missing, "treatment", (INFO,), True, P.DOSES_SOURCE),
)

ALL_RULES: tuple[Rule, ...] = tuple(spec.rule for spec in RULES)
# The minute pass over CGM wearers: the time-critical CGM rules only (stale sensor, predicted low, rapid fall); the
# 14-day range review waits for the 5-minute pass over everyone, which runs every rule.
CGM_MINUTE_RULES: tuple[Rule, ...] = tuple(
    spec.rule for spec in RULES if spec.family == "cgm" and spec.name != "cgm_range_review"
)
RULES_BY_ID: dict[str, Rule] = {spec.name: spec.rule for spec in RULES}
SPECS_BY_ID: dict[str, RuleSpec] = {spec.name: spec for spec in RULES}
STATEFUL_RULES = frozenset(spec.name for spec in RULES if spec.stateful)
# The stateful rules whose alert opens only once a second evaluation a few minutes later confirms it: those a
# backfill in progress can set off.
CONFIRMED_RULES = sorted(spec.name for spec in RULES if spec.stateful and not spec.fresh_only)
STAYS_DISMISSED_RULES = sorted(spec.name for spec in RULES if spec.stays_dismissed)


def evaluate(c: Cohort, rules: Iterable[Rule] = ALL_RULES, *, materialise: bool = True) -> list[Candidates]:
    """Run ``rules`` on the cohort: one :class:`Candidates` per rule, in order.

    The rules decide vectorised (patients, severity, episodes, evidence readings); the evidence dicts and the
    message params are then built by a Python loop over the candidates. ``materialise=True`` (the default, what
    the engine uses: it runs this in a worker thread for big cohorts) builds them here; ``materialise=False``
    leaves them to be built when first read (:class:`Candidates`), e.g. to time the decisions alone.

    The cyclic garbage collector is paused meanwhile: building many small evidence dicts and lists otherwise
    triggers repeated full collections (about half the time of a population pass with many candidates)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        results = [rule(c) for rule in rules]
        if materialise:
            materialise_all(results)
        return results
    finally:
        if paused:
            gc.enable()


def materialise_all(results: Iterable[Candidates]) -> None:
    """Build the evidence and message params of every candidate of ``results`` (lazy ones), with the cyclic
    garbage collector paused throughout (see :func:`evaluate`)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        for r in results:
            r.materialise()
    finally:
        if paused:
            gc.enable()
