"""The alert rules: pure, vectorised functions from a :class:`~alerts.cohort.Cohort` to
:class:`~alerts.cohort.Candidates`, one module per family, listed in one table (:mod:`alerts.rules.registry`).

- :mod:`~alerts.rules.hypoglycaemia`: ADA levels 1 and 2, NICE's floor on insulin;
- :mod:`~alerts.rules.targets`: severe fasting hyperglycaemia, ketone check, readings above target, runs of them;
- :mod:`~alerts.rules.patterns`: the week's escalation patterns; :mod:`~alerts.rules.trend`: the fasting trend;
- :mod:`~alerts.rules.adherence`: adherence and silence of meters; :mod:`~alerts.rules.cgm`: the sensor rules;
- :mod:`~alerts.rules.postpartum`: the postpartum test;
- :mod:`~alerts.rules.measurements`: ketones and blood pressure; :mod:`~alerts.rules.treatment`: the dose review,
  the treatment review of a diet, missing insulin doses;
- :mod:`~alerts.rules.segments`: what they share (index subsets, windows, segment sums, runs);
- :mod:`~alerts.rules.build`: turning a decision into candidates (evidence and message params, no text).
"""

from alerts.rules.adherence import low_adherence, no_data
from alerts.rules.build import Rule
from alerts.rules.cgm import ar2_forecast, ar2_points, cgm_predicted_low, cgm_range_review, cgm_rapid_fall, cgm_stale
from alerts.rules.hypoglycaemia import (
    HIGH,
    IN_RANGE,
    LOW,
    URGENT_HIGH,
    URGENT_LOW,
    hypo_insulin_floor,
    hypo_l1,
    hypo_l2,
    threshold_levels,
)
from alerts.rules.measurements import blood_pressure_high, ketones_high
from alerts.rules.patterns import fasting_pattern, pattern_above_target
from alerts.rules.postpartum import postpartum_test_due
from alerts.rules.registry import (
    ALL_RULES,
    CGM_MINUTE_RULES,
    CONFIRMED_RULES,
    RULES,
    RULES_BY_ID,
    SPECS_BY_ID,
    STATEFUL_RULES,
    STAYS_DISMISSED_RULES,
    RuleSpec,
    evaluate,
    materialise_all,
)
from alerts.rules.segments import derived as _derived
from alerts.rules.targets import (
    consecutive_above_target,
    fasting_above_target,
    fasting_severe,
    ketone_check,
    postprandial_above_target,
)
from alerts.rules.treatment import dose_review, doses_missing, treatment_review
from alerts.rules.trend import fasting_trend_rising

__all__ = [
    "ALL_RULES",
    "CGM_MINUTE_RULES",
    "CONFIRMED_RULES",
    "HIGH",
    "IN_RANGE",
    "LOW",
    "RULES",
    "RULES_BY_ID",
    "SPECS_BY_ID",
    "STATEFUL_RULES",
    "STAYS_DISMISSED_RULES",
    "URGENT_HIGH",
    "URGENT_LOW",
    "Rule",
    "RuleSpec",
    "_derived",
    "ar2_forecast",
    "ar2_points",
    "blood_pressure_high",
    "cgm_predicted_low",
    "cgm_range_review",
    "cgm_rapid_fall",
    "cgm_stale",
    "consecutive_above_target",
    "dose_review",
    "doses_missing",
    "evaluate",
    "fasting_above_target",
    "fasting_pattern",
    "fasting_severe",
    "fasting_trend_rising",
    "hypo_insulin_floor",
    "hypo_l1",
    "hypo_l2",
    "ketone_check",
    "ketones_high",
    "low_adherence",
    "materialise_all",
    "no_data",
    "pattern_above_target",
    "postpartum_test_due",
    "postprandial_above_target",
    "threshold_levels",
    "treatment_review",
]
