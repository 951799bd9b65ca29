"""English texts of the alert messages: one entry per message code, filled by :func:`alerts.messages.render`.

Placeholders are ``{param:kind}``: ``glucose`` (a value in the reader's unit, with its unit), ``gnum`` (the number
alone), ``glucose_list`` / ``lt_glucose_list`` (a list, the unit once at the end), ``glucose0`` (the first of a
list), ``num0`` / ``num1`` (decimals), ``minus0``, ``int``, ``ints``, ``hm`` (the time of a wall-clock time),
``date`` (a date, ``7 Jun 2024``), ``when`` (a wall-clock time of the patient's day, ``07:53 on 11 Jun
2024``), ``label`` (a profile's name), ``term:PREFIX`` / ``terms:PREFIX`` (the entry ``PREFIX.value``), ``list:KEY`` (each
item filled by the entry ``KEY``). A code with a ``#one`` entry uses it when its ``count`` is 1.
"""

from __future__ import annotations

DECIMAL = "."
THOUSANDS = ","
NBSP = "\u00a0"

_L2 = "ADA level 2: below {threshold_mgdl:glucose}"
_L1 = "ADA level 1: {level_low_mgdl:gnum} to {level_high_mgdl:glucose}"
_FLOOR = "NICE NG3: on insulin, keep glucose above {threshold_mgdl:glucose}"
_MANY = "{count:int} readings below {threshold_mgdl:glucose} from {first_local:when} to {last_local:when}"
_ONE = "1 reading below {threshold_mgdl:glucose} at {first_local:when}"
_NADIR = ", lowest {nadir_mgdl:glucose} at {nadir_local:when}"

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

TEXTS: dict[str, str] = {
    "when": "{time} on {date}",  # a wall-clock time of the patient's day
    "rule.cite": "Rule {rule}.",
    # hypoglycaemia
    "hypo_l2": f"Level 2 hypoglycaemia: {_MANY}{_NADIR} ({_L2}).",
    "hypo_l2#one": f"Level 2 hypoglycaemia: {_ONE}{_NADIR} ({_L2}).",
    "hypo_l1": f"Level 1 hypoglycaemia: {_MANY}{_NADIR} ({_L1}).",
    "hypo_l1#one": f"Level 1 hypoglycaemia: {_ONE}{_NADIR} ({_L1}).",
    "hypo_insulin_floor": f"Below the glucose floor on insulin: {_MANY}{_NADIR} ({_FLOOR}).",
    "hypo_insulin_floor#one": f"Below the glucose floor on insulin: {_ONE}{_NADIR} ({_FLOOR}).",
    # severe highs
    "fasting_severe": (
        "Severe fasting hyperglycaemia on {local_date:date}: {readings:list:at_time}, above {threshold_mgdl:glucose}. "
        "Insulin treatment to review now (CNGOF/SFD 2010)."
    ),
    "fasting_severe.unconfirmed": (
        "Possible severe fasting hyperglycaemia on {local_date:date}: {readings:list:at_time}, above "
        "{threshold_mgdl:glucose}, sent without a context and taken as fasting from the time of day: confirm it was "
        "fasting (CNGOF/SFD 2010)."
    ),
    "ketone_check": (
        "Glucose at or above {threshold_mgdl:glucose}: {count:int} readings from {first_local:when}, highest "
        "{peak_mgdl:glucose} at {peak_local:when}. Check for ketones (threshold ≥ {threshold_mgdl:glucose})."
    ),
    "ketone_check#one": (
        "Glucose at or above {threshold_mgdl:glucose}: 1 reading from {first_local:when}, highest {peak_mgdl:glucose} "
        "at {peak_local:when}. Check for ketones (threshold ≥ {threshold_mgdl:glucose})."
    ),
    # targets
    "fasting_above_target": (
        "Fasting glucose above target on {local_date:date}: {readings:list:at_time} (target < {target_mgdl:glucose}, "
        "{profile:label})."
    ),
    "postprandial_above_target": (
        "After-meal glucose above target on {local_date:date}: {readings:list:at_time_target}; {profile:label} targets."
    ),
    "consecutive_above_target.fasting": (
        "{count:int} consecutive fasting readings above target since {since_local:when}: {values_mgdl:glucose_list} "
        "(target < {targets_mgdl:glucose0}, {profile:label})."
    ),
    "consecutive_above_target.after_meal": (
        "{count:int} consecutive after-meal readings above target since {since_local:when}: {values_mgdl:glucose_list} "
        "(targets {targets_mgdl:lt_glucose_list}, {profile:label})."
    ),
    # patterns and trend
    "pattern_above_target": (
        "{percent_above:num0} % of the past {window_days:int} days' readings are above target ({readings_above:int} "
        "of {readings_with_target:int} fasting and after-meal readings, {profile:label} targets). At least "
        "{threshold_percent:int} % of at least {min_readings:int} readings suggests escalating the treatment "
        "(DECIDE working rule)."
    ),
    "fasting_pattern": (
        "{readings_above:int} of {fasting_readings:int} fasting readings of the past {window_days:int} days are above "
        "{threshold_mgdl:glucose} ({percent_above:num0} %): {values_mgdl:glucose_list}. At least half of at least "
        "{min_readings:int} suggests escalating the treatment (DECIDE working rule)."
    ),
    "fasting_trend_rising": (
        "Fasting glucose is rising by {slope_mgdl_per_day:num1} mg/dL per day over the past {window_days:int} days "
        "(least-squares slope of {points:int} fasting readings, mean {mean_mgdl:glucose}; threshold > "
        "{threshold_mgdl_per_day:num0} mg/dL per day)."
    ),
    # adherence and silence
    "low_adherence": (
        "{readings:int} meter readings over the last {window_days:int} full days ({first_date:date} to {last_date:date}) for "
        "{expected:int} prescribed ({readings_per_day:int} a day): {percent:num0} %, below {threshold_percent:int} %. "
        "Per day: {per_day:ints}."
    ),
    "no_data": (
        "No reading since {last_local:when} (last: {last_mgdl:glucose}). The meter or app has been silent for more than "
        "{threshold_hours:int} h."
    ),
    # CGM
    "cgm_stale": (
        "CGM silent since {last_local:when} (last reading {last_mgdl:glucose}; warning after {warning_after_min:int} min, "
        "urgent after {urgent_after_min:int} min)."
    ),
    "cgm_predicted_low": (
        "Predicted low: the AR2 forecast (Nightscout) reaches {reaches_mgdl:glucose} {reaches_after_min:int} min "
        "after the last CGM reading ({last_mgdl:glucose} at {last_local:when}); forecast at {forecast_minutes:ints} min: "
        "{forecast_mgdl:glucose_list} (threshold ≤ {threshold_mgdl:glucose} within {horizon_min:int} min)."
    ),
    "cgm_rapid_fall": (
        "Glucose falling fast: {rate_mgdl_per_min:num1} mg/dL per minute over the last {window_min:int} min "
        "({count:int} CGM readings, {first_mgdl:glucose} at {first_local:hm} to {last_mgdl:glucose} at {last_local:when}; "
        "threshold ≤ {threshold_mgdl_per_min:minus0} mg/dL/min)."
    ),
    "cgm_range_review": (
        "CGM review over the last {window_days:int} days ({data_pct:num0} % of data): time in range "
        "{range_low_mgdl:gnum}–{range_high_mgdl:glucose} {time_in_range_pct:num1} % (target > "
        "{time_in_range_min_pct:int} %), below 63 {below_63_pct:num1} % (< {below_63_max_pct:int} %), below 54 "
        "{below_54_pct:num1} % (< {below_54_max_pct:int} %), above 140 {above_140_pct:num1} % (< "
        "{above_140_max_pct:int} %), CV {cv_pct:num1} % (≤ {cv_max_pct:num0} %), mean {mean_mgdl:glucose}, GMI "
        "{gmi_pct:num1} %. Outside the pregnancy targets (Battelino 2019): {failing:terms:failing}."
    ),
    # after delivery
    "postpartum_test_due": (
        "Postpartum glucose test due: delivery on {delivery_date:date} ({days_since_delivery:int} days ago); "
        "{profile:label} asks for a {profile:term:postpartum_test}, by {window_end_date:date}."
    ),
    # the treatment record (alerts.rules.treatment, alerts.rules.measurements)
    "dose_review.increase": (
        "Dose review: fasting glucose at or above {target_mgdl:glucose} on {days_above:int} of the last "
        "{days_window:int} days on plan version {plan_version:int}. Suggested {slot:term:dose_slot} dose "
        "{current_units:num1} U → {suggested_units:num1} U, to be confirmed by a clinician (titration protocol)."
    ),
    "dose_review.reduction": (
        "Dose review: hypoglycaemia {hypo[mgdl]:glucose} at {hypo[local]:when} (below {threshold_mgdl:glucose}) on "
        "plan version {plan_version:int}. Suggested {slot:term:dose_slot} dose {current_units:num1} U → "
        "{suggested_units:num1} U, to be confirmed by a clinician (titration protocol)."
    ),
    "treatment_review": (
        "Diet for {days_since_start:int} days (trial period {trial_days:int} days) and {percent_above:num0} % of the "
        "past {window_days:int} days' readings above target ({readings_above:int} of {readings_with_target:int}, "
        "{profile:label}): review the treatment (at least {threshold_percent:int} %, DECIDE working rule)."
    ),
    "ketones_high.blood": (
        "Blood ketones {value_mmol:num1} mmol/L at {local:when} (raised from {warning_mmol:num1}, a risk of "
        "ketoacidosis from {urgent_mmol:num1} mmol/L)."
    ),
    "ketones_high.urine": (
        "Urine ketones {urine} at {local:when} (raised from {urine_warning}, a risk of ketoacidosis from "
        "{urine_urgent})."
    ),
    "blood_pressure_high": (
        "Blood pressure {systolic:num0}/{diastolic:num0} mmHg at {local:when}: hypertension (from "
        "{warning_systolic:num0}/{warning_diastolic:num0} mmHg, NICE NG133)."
    ),
    "blood_pressure_high.severe": (
        "Severe hypertension: {systolic:num0}/{diastolic:num0} mmHg at {local:when} (from {urgent_systolic:num0}/"
        "{urgent_diastolic:num0} mmHg, NICE NG133)."
    ),
    "doses_missing": "No insulin dose logged for {days_without:int} days: the last one at {last_dose_local:when}.",
    # items and terms
    "at_time": "{mgdl:glucose} at {local:hm}",
    "at_time_target": "{mgdl:glucose} at {local:hm} ({target_kind:term:target} < {target_mgdl:glucose})",
    "target.fasting": "fasting target",
    "target.post_1h": "1 h target",
    "target.post_2h": "2 h target",
    "failing.time_in_range": "time in range < 70 %",
    "failing.below_63": "below 63 ≥ 4 %",
    "failing.below_54": "below 54 ≥ 1 %",
    "failing.above_140": "above 140 ≥ 25 %",
    "failing.cv": "CV > 36 %",
    "postpartum_test.FR": "75 g oral glucose tolerance test at the postnatal visit (6–8 weeks)",
    "postpartum_test.NICE": "fasting plasma glucose test (6–13 weeks after the birth)",
    "postpartum_test.ADA": "75 g oral glucose tolerance test (4–12 weeks postpartum)",
    "dose_slot.basal": "basal",
    "dose_slot.breakfast": "breakfast",
    "dose_slot.lunch": "lunch",
    "dose_slot.dinner": "dinner",
    # labels of the evidence's facts (alerts.evidence); a fact without one is named by its key
    "fact.target_mgdl": "target",
    "fact.threshold_mgdl": "threshold",
    "fact.nadir_mgdl": "lowest",
    "fact.peak_mgdl": "highest",
    "fact.mean_mgdl": "mean",
    "fact.sd_mgdl": "standard deviation",
    "fact.mean_now_mgdl": "mean now",
    "fact.mean_5min_ago_mgdl": "mean 5 min before",
    "fact.episode_start": "episode start",
    "fact.episode_end": "episode end",
    "fact.local_date": "date",
    "fact.first_date": "from",
    "fact.last_date": "to",
    "fact.window_start_date": "from",
    "fact.window_end_date": "to",
    "fact.readings": "readings",
    "fact.expected": "expected",
    "fact.readings_per_day": "prescribed per day",
    "fact.readings_above": "readings above target",
    "fact.readings_with_target": "readings with a target",
    "fact.percent": "share",
    "fact.percent_above": "share above target",
    "fact.threshold_percent": "threshold",
    "fact.time_in_range_pct": "time in range",
    "fact.below_63_pct": "below 63 mg/dL",
    "fact.below_54_pct": "below 54 mg/dL",
    "fact.above_140_pct": "above 140 mg/dL",
    "fact.cv_pct": "variability (CV)",
    "fact.gmi_pct": "GMI",
    "fact.data_pct": "sensor data",
    "fact.window_days": "days",
    "fact.run_length": "consecutive readings",
    "fact.profile": "profile",
    "fact.target_kind": "target",
    "fact.slope_mgdl_per_day": "slope, mg/dL per day",
    "fact.threshold_mgdl_per_day": "threshold, mg/dL per day",
    "fact.rate_mgdl_per_min": "rate, mg/dL per min",
    "fact.threshold_mgdl_per_min": "threshold, mg/dL per min",
    "fact.horizon_min": "horizon (min)",
    "fact.max_gap_s": "longest gap within an episode",
    "fact.model": "model",
}
