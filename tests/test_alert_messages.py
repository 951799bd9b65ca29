"""Alert messages are rendered from facts (a code and params) at the edge, in the reader's language and unit:
every code has a text in every language, renders in every unit, and the rules emit only codes with a text."""

from __future__ import annotations

import re
from typing import Any

import pytest

from alerts import messages, rules
from alerts.evidence import FACTS
from alerts.messages import CODES, LANGUAGES, language_of, render
from alerts.messages.numbers import CATALOGUES
from telemon import units
from tests.support.cohorts import DAY, NOW, Patient, R, build, local_day_of, random_cohort

# One params of each code, as the rules make them (lists shortened).
SAMPLES: dict[str, dict[str, Any]] = {
    "cgm_predicted_low": {
        "threshold_mgdl": 55.0,
        "horizon_min": 20,
        "reaches_mgdl": 55.0,
        "reaches_after_min": 20,
        "forecast_mgdl": [66.0, 60.0, 57.0],
        "forecast_minutes": [5, 10, 15],
        "last_mgdl": 76.2,
        "last_at": "2024-06-10T23:38:55Z",
        "last_local": "2024-06-11 12:38",
        "source": "Nightscout AR2",
    },
    "cgm_range_review": {
        "time_in_range_pct": 18.25,
        "below_63_pct": 70.35,
        "below_54_pct": 68.02,
        "above_140_pct": 11.4,
        "cv_pct": 95.32,
        "mean_mgdl": 53.67,
        "sd_mgdl": 51.16,
        "gmi_pct": 4.59,
        "data_pct": 90.5,
        "readings": 3649,
        "failing": ["time_in_range", "below_63", "below_54"],
        "window_days": 14,
        "range_low_mgdl": 63.0,
        "range_high_mgdl": 140.0,
        "time_in_range_min_pct": 70,
        "below_63_max_pct": 4,
        "below_54_max_pct": 1,
        "above_140_max_pct": 25,
        "cv_max_pct": 36.0,
        "source": "Battelino 2019",
    },
    "cgm_rapid_fall": {
        "rate_mgdl_per_min": -3.61,
        "threshold_mgdl_per_min": -3.0,
        "window_min": 15,
        "count": 4,
        "first_mgdl": 169.0,
        "first_at": "2024-06-11T02:08:14Z",
        "first_local": "2024-06-11 15:08",
        "last_mgdl": 114.2,
        "last_at": "2024-06-11T02:23:14Z",
        "last_local": "2024-06-11 15:23",
        "source": "telemon rule table",
    },
    "cgm_stale": {
        "last_mgdl": 154.3,
        "last_at": "2024-06-11T02:23:12Z",
        "last_local": "2024-06-11 07:53",
        "warning_after_min": 15,
        "urgent_after_min": 30,
        "source": "telemon clinical reference",
    },
    "consecutive_above_target.after_meal": {
        "count": 3,
        "context": "after_meal",
        "profile": "NICE",
        "since_at": "2024-06-07T06:23:54Z",
        "since_local": "2024-06-06 20:23",
        "values_mgdl": [187.1, 120.0, 200.0],
        "targets_mgdl": [140.52, 115.3, 115.3],
    },
    "consecutive_above_target.fasting": {
        "count": 3,
        "context": "fasting",
        "profile": "NICE",
        "since_at": "2024-05-26T18:51:13Z",
        "since_local": "2024-05-26 08:51",
        "values_mgdl": [114.7, 143.8, 144.4],
        "targets_mgdl": [95.48, 95.48, 95.48],
    },
    "fasting_above_target": {
        "profile": "ADA",
        "local_date": "2024-06-10",
        "target_mgdl": 95.0,
        "readings": [{"mgdl": 96.2, "at": "2024-06-10T07:13:50Z", "local": "2024-06-10 07:13"}],
    },
    "fasting_pattern": {
        "threshold_mgdl": 115.0,
        "readings_above": 2,
        "fasting_readings": 4,
        "percent_above": 50.0,
        "threshold_percent": 50,
        "min_readings": 4,
        "window_days": 7,
        "values_mgdl": [39.8, 125.5, 80.0],
        "source": "DECIDE working rule",
    },
    "fasting_severe": {
        "threshold_mgdl": 130.0,
        "source": "CNGOF/SFD 2010",
        "local_date": "2024-06-07",
        "readings": [{"mgdl": 130.5, "at": "2024-06-07T04:11:31Z", "local": "2024-06-07 06:11"}],
    },
    "fasting_severe.unconfirmed": {
        "threshold_mgdl": 130.0,
        "source": "CNGOF/SFD 2010",
        "local_date": "2024-06-09",
        "readings": [{"mgdl": 150.0, "at": "2024-06-09T06:30:00Z", "local": "2024-06-09 06:30"}],
    },
    "fasting_trend_rising": {
        "slope_mgdl_per_day": 2.24,
        "threshold_mgdl_per_day": 1.0,
        "points": 9,
        "mean_mgdl": 124.68,
        "window_days": 14,
        "source": "telemon rule table",
    },
    "hypo_insulin_floor": {
        "threshold_mgdl": 72.06,
        "count": 1,
        "first_at": "2024-06-10T16:37:43Z",
        "first_local": "2024-06-10 08:37",
        "last_at": "2024-06-10T16:37:43Z",
        "last_local": "2024-06-10 08:37",
        "nadir_mgdl": 70.9,
        "nadir_at": "2024-06-10T16:37:43Z",
        "nadir_local": "2024-06-10 08:37",
        "source": "NICE NG3",
    },
    "hypo_l1": {
        "threshold_mgdl": 70.0,
        "count": 7,
        "first_at": "2024-06-07T08:48:12Z",
        "first_local": "2024-06-07 14:18",
        "last_at": "2024-06-07T09:18:12Z",
        "last_local": "2024-06-07 14:48",
        "nadir_mgdl": 60.4,
        "nadir_at": "2024-06-07T09:03:12Z",
        "nadir_local": "2024-06-07 14:33",
        "source": "ADA Standards of Care, section 6",
        "level_low_mgdl": 54.0,
        "level_high_mgdl": 69.0,
    },
    "hypo_l2": {
        "threshold_mgdl": 54.0,
        "count": 2260,
        "first_at": "2024-05-29T20:38:12Z",
        "first_local": "2024-05-30 02:08",
        "last_at": "2024-06-06T16:53:12Z",
        "last_local": "2024-06-06 22:23",
        "nadir_mgdl": 20.0,
        "nadir_at": "2024-05-29T21:28:12Z",
        "nadir_local": "2024-05-30 02:58",
        "source": "ADA Standards of Care, section 6",
    },
    "ketone_check": {
        "threshold_mgdl": 200.0,
        "source": "telemon clinical reference",
        "count": 1,
        "first_at": "2024-06-09T22:48:12Z",
        "first_local": "2024-06-10 04:18",
        "peak_mgdl": 201.9,
        "peak_at": "2024-06-09T22:48:12Z",
        "peak_local": "2024-06-10 04:18",
    },
    "low_adherence": {
        "readings": 17,
        "expected": 42,
        "readings_per_day": 6,
        "percent": 40.48,
        "threshold_percent": 80,
        "per_day": [5, 0, 6],
        "first_date": "2024-06-04",
        "last_date": "2024-06-10",
        "window_days": 7,
        "source": "telemon rule table",
    },
    "no_data": {
        "last_mgdl": 196.76,
        "last_at": "2024-06-08T22:47:04Z",
        "last_local": "2024-06-08 23:47",
        "threshold_hours": 48,
        "source": "telemon clinical reference",
    },
    "pattern_above_target": {
        "percent_above": 100.0,
        "readings_above": 9,
        "readings_with_target": 9,
        "threshold_percent": 30,
        "min_readings": 8,
        "window_days": 7,
        "profile": "ADA",
        "source": "DECIDE working rule",
    },
    "postpartum_test_due": {
        "delivery_date": "2024-04-12",
        "days_since_delivery": 60,
        "window_start_date": "2024-05-10",
        "window_end_date": "2024-07-05",
        "profile": "ADA",
        "source": "ADA Standards of Care, section 15",
    },
    # the treatment record
    "ketones_high.blood": {
        "kind": "blood",
        "value_mmol": 3.0,
        "urine": None,
        "at": "2024-06-07T06:39:22Z",
        "local": "2024-06-07 19:39",
        "warning_mmol": 0.6,
        "urgent_mmol": 1.5,
        "urine_warning": "+",
        "urine_urgent": "++",
        "source": "Laffel, Diabetes Metab Res Rev 1999; JBDS-IP DKA guideline 2013",
    },
    "ketones_high.urine": {
        "kind": "urine",
        "value_mmol": None,
        "urine": "++",
        "at": "2024-06-07T06:59:50Z",
        "local": "2024-06-07 06:59",
        "warning_mmol": 0.6,
        "urgent_mmol": 1.5,
        "urine_warning": "+",
        "urine_urgent": "++",
        "source": "Laffel, Diabetes Metab Res Rev 1999; JBDS-IP DKA guideline 2013",
    },
    "blood_pressure_high": {
        "systolic": 139.0,
        "diastolic": 90.0,
        "at": "2024-06-09T10:19:36Z",
        "local": "2024-06-09 15:49",
        "warning_systolic": 140.0,
        "warning_diastolic": 90.0,
        "urgent_systolic": 160.0,
        "urgent_diastolic": 110.0,
        "source": "NICE NG133 (2019)",
    },
    "blood_pressure_high.severe": {
        "systolic": 165.0,
        "diastolic": 112.0,
        "at": "2024-06-10T13:55:54Z",
        "local": "2024-06-10 19:25",
        "warning_systolic": 140.0,
        "warning_diastolic": 90.0,
        "urgent_systolic": 160.0,
        "urgent_diastolic": 110.0,
        "source": "NICE NG133 (2019)",
    },
    "doses_missing": {
        "last_dose_at": "2024-06-08T02:38:13Z",
        "last_dose_local": "2024-06-08 08:08",
        "days_without": 3,
        "threshold_days": 3,
        "source": "telemon rule table",
    },
    "dose_review.increase": {
        "plan_version": 3,
        "days_above": 3,
        "days_window": 3,
        "days_required": 3,
        "target_mgdl": 95.482627,
        "protocol": {
            "step_units": 2.0,
            "step_percent": None,
            "window_days": 3,
            "days_required": 3,
            "max_step_units": 4.0,
            "reduction_percent": 10.0,
            "reduction_units": None,
            "suggestions_enabled": True,
        },
        "protocol_default": True,
        "source": "Davies et al., Diabetes Care 2005;28:1282-8",
        "slot": "basal",
        "product": "NPH",
        "current_units": 10.0,
        "suggested_units": 12.0,
        "change_units": 2.0,
        "days": ["2024-06-08", "2024-06-09", "2024-06-10"],
    },
    "dose_review.reduction": {
        "plan_version": 4,
        "days_above": 0,
        "days_window": 3,
        "days_required": 3,
        "target_mgdl": 95.0,
        "protocol": {
            "step_units": 2.0,
            "step_percent": None,
            "window_days": 3,
            "days_required": 3,
            "max_step_units": 4.0,
            "reduction_percent": 10.0,
            "reduction_units": None,
            "suggestions_enabled": True,
        },
        "protocol_default": True,
        "source": "Davies et al., Diabetes Care 2005;28:1282-8",
        "slot": "breakfast",
        "product": "NovoRapid",
        "current_units": 4.0,
        "suggested_units": 3.5,
        "change_units": -0.5,
        "threshold_mgdl": 70.0,
        "hypo": {"mgdl": 53.9, "at": "2024-06-10T17:04:43Z", "local": "2024-06-10 09:04"},
    },
    "treatment_review": {
        "percent_above": 70.0,
        "readings_above": 7,
        "readings_with_target": 10,
        "threshold_percent": 30,
        "min_readings": 8,
        "window_days": 7,
        "trial_days": 7,
        "start_date": "2024-06-04",
        "days_since_start": 7,
        "profile": "FR",
        "source": "CNGOF/SFD 2010; NICE NG3; DECIDE working rule",
    },
    "postprandial_above_target": {
        "profile": "FR",
        "local_date": "2024-06-08",
        "readings": [
            {
                "mgdl": 161.1,
                "at": "2024-06-08T10:23:57Z",
                "local": "2024-06-08 23:23",
                "target_mgdl": 120.0,
                "target_kind": "post_1h",
            }
        ],
    },
}


def test_every_code_has_a_sample_and_a_rule() -> None:
    assert set(SAMPLES) == set(CODES)
    assert {messages.rule_of(code) for code in CODES} == set(rules.RULES_BY_ID)


def test_every_text_exists_in_every_language_with_the_same_placeholders() -> None:
    english = CATALOGUES["en"].TEXTS
    for language, catalogue in CATALOGUES.items():
        assert set(catalogue.TEXTS) == set(english), language  # a language is one complete catalogue
        for key, text in catalogue.TEXTS.items():
            assert text.strip(), (language, key)
            assert sorted(re.findall(r"{(\\w+)", text)) == sorted(re.findall(r"{(\\w+)", english[key])), (language, key)
    for code in CODES:
        assert code in english


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("unit", units.UNITS)
def test_every_code_renders_in_every_language_and_unit(code: str, language: str, unit: str) -> None:
    text = render(code, SAMPLES[code], language, unit)
    assert text and "{" not in text and "}" not in text and "Rule" not in text and "Règle" not in text
    params = SAMPLES[code]
    if any(key.endswith("_mgdl") for key in params) or isinstance(params.get("readings"), list):
        assert f"\u00a0{unit}" in text  # glucose values are in the reader's unit
    other_units = [u for u in units.UNITS if u != unit]
    assert not any(f"\u00a0{u}" in text for u in other_units)
    cited = render(code, SAMPLES[code], language, unit, cite_rule=True)
    assert cited.startswith(text) and cited.endswith(f" {messages.rule_of(code)}.")


@pytest.mark.parametrize(
    ("code", "params", "unit", "language", "expected"),
    [
        ("hypo_l2", SAMPLES["hypo_l2"], "g/L", "en", "(ADA level 2: below 0.54\u00a0g/L)."),
        ("hypo_l1", SAMPLES["hypo_l1"], "mmol/L", "fr", "(ADA niveau 1 : de 3,0 à 3,8\u00a0mmol/L)."),
        ("hypo_insulin_floor", SAMPLES["hypo_insulin_floor"], "mg/dL", "en", "keep glucose above 72\u00a0mg/dL"),
        (  # every value of a list, and the targets after "<"
            "consecutive_above_target.after_meal",
            SAMPLES["consecutive_above_target.after_meal"] | {"values_mgdl": [130.0, 125.5, 140.0]},
            "mmol/L",
            "en",
            "7.2, 7.0, 7.8\u00a0mmol/L (targets < 7.8, < 6.4, < 6.4\u00a0mmol/L, NICE NG3)",
        ),
        ("fasting_trend_rising", SAMPLES["fasting_trend_rising"], "mmol/L", "en", "by 2.2 mg/dL per day"),  # rates stay
        ("cgm_range_review", SAMPLES["cgm_range_review"], "g/L", "fr", "temps dans la cible 0,63–1,40\u00a0g/L 18,2 %"),
        ("fasting_severe", SAMPLES["fasting_severe"], "g/L", "fr", "le 7 juin 2024 : 1,30\u00a0g/L à 06:11, au-dessus de 1,30\u00a0g/L."),
    ],
)  # fmt: skip
def test_glucose_values_are_written_in_the_readers_unit(
    code: str, params: dict[str, Any], unit: str, language: str, expected: str
) -> None:
    assert expected in render(code, params, language, unit)


def test_the_rules_emit_only_codes_with_a_text_and_json_params() -> None:
    seen: set[str] = set()
    for seed in range(3):
        for result in rules.evaluate(random_cohort(seed, 30)):
            for code, params in zip(result.code, result.params, strict=True):
                assert messages.rule_of(code) == result.rule and code in CODES
                assert render(code, params, "fr", units.MMOLL)
                seen.add(code)
    assert len(seen) > 10


def test_an_inferred_fasting_context_gives_the_unconfirmed_wording() -> None:
    today = local_day_of(NOW)
    readings = [
        R(t=(today - 1) * DAY + 1800, value=100),
        R(t=(today - 1) * DAY + 6 * 3600 + 1800, value=150, context="fasting", flags=["context_inferred"]),
    ]
    c = rules.fasting_severe(build([Patient(readings=readings)]))
    assert c.code == ["fasting_severe.unconfirmed"] and c.severity == ["warning"]
    assert render(c.code[0], c.params[0], "en", units.MGDL).startswith("Possible severe fasting hyperglycaemia")


def test_a_stored_text_is_the_fallback_of_an_alert_without_a_code() -> None:
    stored = {
        "en": "Level 2 hypoglycaemia: below 54 mg/dL (3.0 mmol/L). Rule hypo_l2.",
        "fr": "Sous 54 mg/dL. Règle hypo_l2.",
    }
    assert render(None, None, "en", units.GL, fallback=stored) == "Level 2 hypoglycaemia: below 0.54\u00a0g/L."
    assert render(None, None, "fr", units.MGDL, fallback=stored, cite_rule=True) == "Sous 54\u00a0mg/dL. Règle hypo_l2."
    assert render(None, None, "de", units.MGDL, fallback={"en": "x"}) == "x"
    assert render(None, None, "en", units.MGDL) == ""


@pytest.mark.parametrize(
    ("header", "language"),
    [(None, "en"), ("fr-FR,fr;q=0.9,en;q=0.8", "fr"), ("de, en;q=0.5", "en"), ("de", "en"), ("en;q=0.2, fr;q=0.7", "fr"),
     ("fr;q=x", "en"), ("FR", "fr")],
)  # fmt: skip
def test_the_language_is_taken_from_accept_language(header: str | None, language: str) -> None:
    assert language_of(header) == language


def test_every_fact_of_the_evidence_has_a_kind() -> None:
    keys: set[str] = set()
    for seed in range(3):
        for result in rules.evaluate(random_cohort(seed, 30)):
            for evidence in result.evidence:
                keys |= set(evidence)
    assert keys - set(FACTS) == set()
    assert messages.fact_label("nadir_mgdl", "fr") == "la plus basse" and messages.fact_label("test", "en") == "test"


def test_dates_and_times_read_as_a_person_writes_them() -> None:
    """A date is "7 Jun 2024", never ISO; a wall-clock time of the patient's day says its day: "at 03:21 on 30
    Nov 2024", « le 30 nov. 2024 à 03:21 »."""
    params = {**SAMPLES["hypo_l2"], "count": 1, "first_local": "2024-11-30 03:21", "nadir_local": "2024-11-30 03:21"}
    assert "at 03:21 on 30 Nov 2024" in render("hypo_l2", params, "en", "mmol/L")
    assert "le 30 nov. 2024 à 03:21" in render("hypo_l2", params, "fr", "mmol/L")
    for code, sample in SAMPLES.items():
        for language in ("en", "fr"):
            text = render(code, sample, language, "mg/dL")
            assert not re.search(r"\d{4}-\d{2}-\d{2}", text), (code, language, text)
