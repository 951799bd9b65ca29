"""What an alert's evidence holds, named once: the kind of each fact the rules put in it, so that whoever shows
evidence (the dashboard, an integration) formats it from this table rather than guessing from the key's name.

Kinds: ``glucose`` (mg/dL, shown in the reader's unit), ``percent``, ``instant`` (epoch seconds, UTC), ``seconds``
(a duration), ``number`` (a count or a rate in the unit its name says), ``text`` (a code, a date, a word),
``readings`` (the parallel lists ``reading_ids``, ``values_mgdl``, ``measured_at``: the readings themselves) and
``hidden`` (ids, lists and nested figures that the readings or other facts already show). The labels are the
message catalogues' ``fact.<key>`` entries (:mod:`alerts.messages`).
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["glucose", "percent", "instant", "seconds", "number", "text", "readings", "hidden"]

FACTS: dict[str, Kind] = {
    # every alert: the readings it rests on
    "reading_ids": "readings",
    "values_mgdl": "readings",
    "measured_at": "readings",
    # thresholds and targets (a list when each reading has its own)
    "target_mgdl": "glucose",
    "target_kind": "text",
    "profile": "text",
    # runs of readings (hypoglycaemia, ketone check)
    "nadir_mgdl": "glucose",
    "nadir_reading_id": "hidden",
    "peak_mgdl": "glucose",
    "peak_reading_id": "hidden",
    "episode_start": "instant",
    "episode_end": "instant",
    "max_gap_s": "seconds",
    # days and contexts
    "local_date": "text",
    "context": "text",
    "context_inferred": "text",
    "downgraded": "text",
    "run_length": "number",
    # patterns and trend
    "readings_with_target": "number",
    "readings_above": "number",
    "fasting_readings": "number",
    "percent_above": "percent",
    "threshold_percent": "percent",
    "min_readings": "number",
    "window_days": "number",
    "slope_mgdl_per_day": "number",
    "threshold_mgdl_per_day": "number",
    "points": "hidden",
    "min_points": "number",
    "mean_mgdl": "glucose",
    # adherence and silence
    "readings": "number",
    "expected": "number",
    "readings_per_day": "number",
    "percent": "percent",
    "per_day": "hidden",
    "first_date": "text",
    "last_date": "text",
    "threshold_s": "seconds",
    "warning_after_s": "seconds",
    "urgent_after_s": "seconds",
    # CGM
    "forecast_mgdl": "hidden",
    "forecast_minutes": "hidden",
    "horizon_min": "number",
    "mean_now_mgdl": "glucose",
    "mean_5min_ago_mgdl": "glucose",
    "model": "text",
    "rate_mgdl_per_min": "number",
    "threshold_mgdl_per_min": "number",
    "window_s": "seconds",
    "time_in_range_pct": "percent",
    "below_63_pct": "percent",
    "below_54_pct": "percent",
    "above_140_pct": "percent",
    "cv_pct": "percent",
    "gmi_pct": "percent",
    "data_pct": "percent",
    "sd_mgdl": "glucose",
    "failing": "hidden",
    "first_reading_id": "hidden",
    "last_reading_id": "hidden",
    "targets": "hidden",
    # after delivery
    "delivery_date": "text",
    "days_since_delivery": "number",
    "window_start_date": "text",
    "window_end_date": "text",
    "test": "text",
    # the treatment record: measurements (not readings), plans, the diet's trial period
    "measurement_ids": "hidden",
    "measurement_at": "hidden",
    "ketone_mmol": "number",
    "ketone_urine": "text",
    "systolic_mmhg": "number",
    "diastolic_mmhg": "number",
    "plan_version": "number",
    "current_units": "number",
    "suggested_units": "number",
    "trial_days": "number",
    "start_date": "text",
    "days_since_start": "number",
    # what evidence written by older engines may still hold
    "pos": "hidden",
    "owner": "hidden",
    "used": "hidden",
    "interpolated": "hidden",
}
