"""The dashboard's pure parts: words and numbers in both languages and three units, judging readings against
targets (the same choices as the engine), the CGM figures, the lock-out policy, safe redirects."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest

from alerts import profiles as P
from alerts import titration
from alerts.messages import legacy
from alerts.rules import RULES_BY_ID
from clinician_ui import glycaemia as G
from clinician_ui import i18n, sessions, web
from telemon import postpartum, teams, webhooks, weight_gain

TEMPLATES = Path(__file__).resolve().parents[1] / "clinician_ui" / "templates"
DYNAMIC = {  # keys templates build from a prefix and a value
    "treatment.": ("diet", "metformin", "insulin"),
    "device.": ("meter", "app", "cgm"),
    "severity.": ("urgent", "warning", "info"),
    "slot.": G.SLOTS,
    "judge.": ("in", "above", "hypo", "none", "control"),
    "snooze.": ("1h", "4h", "24h", "72h"),
    "language.": i18n.LANGUAGES,
    "patient.target.": ("fasting", "post_1h", "post_2h"),
    "triage.filter.severity.": ("all", "warning", "urgent"),
    "action.": ("patient.review", "note.add", "alert.acknowledge", "alert.snooze", "alert.resolve"),
    "field.": ("profile", "treatment", "readings_per_day", "target_overrides"),
    "role.": teams.ROLES,
    "dose.insulin.": ("basal", "rapid", "premixed", "unknown"),
    "measures.bmi.": tuple(c.name for c in weight_gain.CATEGORIES),
    "titration.field.": tuple(
        f.name for f in dataclasses.fields(titration.Protocol) if f.name != "suggestions_enabled"
    ),
    "event.": webhooks.EVENTS,
    "hooks.state.": ("pending", "delivered", "failed"),
    "postpartum.class.": postpartum.CLASSIFICATIONS,
    "dose_review.slot.": ("basal", "breakfast", "lunch", "dinner"),
    "postpartum.test.": postpartum.TESTS,
    "postpartum.follow.": postpartum.FOLLOW_UPS,
    "postpartum.field.": ("test", "date", "unit", "fasting", "two_hour", "hba1c", "hba1c_unit"),
    "alert.reason.": ("cleared", "delivered", "postpartum_test"),
}


def test_every_text_a_template_asks_for_exists_in_both_languages() -> None:
    used: set[str] = set()
    for template in TEMPLATES.glob("*.html"):
        source = template.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']\s*[,)]""", source))
        for prefix in re.findall(r"""\bt\(\s*["']([\w.]+\.)["']\s*\+""", source):
            assert prefix in DYNAMIC, f"{template.name}: dynamic key {prefix!r} not listed in this test"
            used |= {prefix + value for value in DYNAMIC[prefix]}
    missing = sorted(k for k in used if k not in i18n.TEXTS)
    assert not missing, missing
    for key, (en, fr) in i18n.TEXTS.items():
        assert en.strip() and fr.strip(), key
        assert re.findall(r"{(\w+)}", en) == re.findall(r"{(\w+)}", fr) or set(re.findall(r"{(\w+)}", en)) == set(
            re.findall(r"{(\w+)}", fr)
        ), key


def test_every_rule_of_the_engine_has_a_name_in_both_languages() -> None:
    assert set(RULES_BY_ID) <= set(i18n.RULE_NAMES)


@pytest.mark.parametrize(
    ("mgdl", "unit", "lang", "shown"),
    [
        (95.0, "mg/dL", "en", "95\u00a0mg/dL"),
        (95.0, "g/L", "fr", "0,95\u00a0g/L"),
        (95.0, "mmol/L", "en", "5.3\u00a0mmol/L"),
        (95.0, "mmol/L", "fr", "5,3\u00a0mmol/L"),
        (P.mmol(5.3), "mmol/L", "en", "5.3\u00a0mmol/L"),  # NICE's 5.3 mmol/L reads back as itself
        (120.0, "g/L", "en", "1.20\u00a0g/L"),
        (1234.0, "mg/dL", "fr", "1\u202f234\u00a0mg/dL"),
    ],
)
def test_glucose_values_follow_unit_and_language(mgdl: float, unit: str, lang: str, shown: str) -> None:
    assert i18n.glucose(mgdl, unit, lang) == shown


def test_dates_ages_and_percentages_in_both_languages() -> None:
    day = dt.date(2027, 1, 12)
    assert i18n.day_label(day, "en") == "Tue 12 Jan" and i18n.day_label(day, "fr") == "mar. 12 janv."
    assert i18n.gestational_age(dt.date(2027, 3, 14), dt.date(2027, 1, 12), "en") == "31 w + 2 d"  # 280 − 61 days = 219
    assert i18n.gestational_age(dt.date(2027, 3, 14), dt.date(2027, 1, 12), "fr") == "31 SA + 2 j"
    assert i18n.percent(72.4, "en") == "72%" and i18n.percent(72.4, "fr") == "72\u202f%"
    now = dt.datetime(2027, 1, 12, 12, tzinfo=dt.UTC)
    assert i18n.ago(now - dt.timedelta(hours=3), now, "fr") == "il y a 3 h"
    assert i18n.ago(now - dt.timedelta(days=3), now, "en") == "3 d ago"


@pytest.mark.parametrize(
    ("message", "unit", "lang", "expected"),
    [
        (
            "ADA level 2: below 54 mg/dL (3.0 mmol/L). Rule hypo_l2.",
            "g/L", "en", "ADA level 2: below 0.54\u00a0g/L. Rule hypo_l2.",
        ),
        (
            "ADA niveau 1 : de 54 à 69 mg/dL (3,0–3,9 mmol/L)",
            "mmol/L", "fr", "ADA niveau 1 : de 3,0 à 3,8\u00a0mmol/L",
        ),
        (  # every value of a list, and the targets after "<"
            "readings since 08:00: 130, 125.5, 140 mg/dL (targets < 120, < 140 mg/dL)",
            "mmol/L", "en", "readings since 08:00: 7.2, 7.0, 7.8\u00a0mmol/L (targets < 6.7, < 7.8\u00a0mmol/L)",
        ),
        (  # rates, percentages and times are left alone
            "rising by 1.5 mg/dL per day; fall of -3.2 mg/dL/min; 35 % at 07:30",
            "mmol/L", "en", "rising by 1.5 mg/dL per day; fall of -3.2 mg/dL/min; 35 % at 07:30",
        ),
        (
            "keep glucose above 4.0 mmol/L (72.1 mg/dL)",
            "mg/dL", "en", "keep glucose above 72\u00a0mg/dL",
        ),
        (
            "time in range 63–140 mg/dL 71.0 %",
            "g/L", "fr", "time in range 0,63–1,40\u00a0g/L 71.0 %",
        ),
    ],
)  # fmt: skip
def test_engine_messages_are_restated_in_the_clinicians_unit(message: str, unit: str, lang: str, expected: str) -> None:
    assert legacy.localize_glucose_text(message, unit, lang) == expected  # the stored text of an older alert


def test_judging_follows_the_profiles_targets_and_the_engines_after_meal_choice() -> None:
    fr = G.targets_for("FR", "diet", {})
    assert G.judge(fr, 94.9, "fasting", None, None).status == G.IN
    assert G.judge(fr, 95.0, "fasting", None, None).status == G.ABOVE  # "< 95" is the target
    assert G.judge(fr, 119.0, "after_meal", "lunch", 60).target == 120.0  # FR has only a 2 h target
    assert G.judge(fr, 69.9, "bedtime", None, None) == G.Judgement(G.HYPO, None)
    assert G.judge(fr, 150.0, "bedtime", None, None) == G.Judgement(G.NONE, None)
    assert G.judge(fr, 150.0, "fasting", None, None, ["control_solution"]).status == G.CONTROL
    assert G.judge(fr, 20.0, "fasting", None, None, ["lo"]).status == G.HYPO
    ada = G.targets_for("ADA", "diet", {})
    assert G.judge(ada, 130.0, "after_meal", "dinner", 60).status == G.IN  # 1 h target 140
    assert G.judge(ada, 130.0, "after_meal", "dinner", 120).status == G.ABOVE  # 2 h target 120
    assert G.judge(ada, 130.0, "after_meal", "dinner", None).target == 140.0  # unknown delay: ADA's usual 1 h
    nice_insulin = G.targets_for("NICE", "insulin", {})
    assert G.judge(nice_insulin, 71.0, "fasting", None, None).status == G.HYPO  # NICE: above 4.0 mmol/L on insulin
    assert G.judge(G.targets_for("NICE", "diet", {}), 71.0, "fasting", None, None).status == G.IN
    overridden = G.targets_for("FR", "diet", {"fasting": 92.0})
    assert overridden.fasting == 92.0 and overridden.defaults[0] == 95.0
    assert G.judge(overridden, 93.0, "fasting", None, None).status == G.ABOVE


def test_readings_are_placed_in_slots_by_context_meal_or_local_time() -> None:
    assert G.slot_of("fasting", None, 7) == "fasting"
    assert G.slot_of("after_meal", "lunch", 9) == "lunch"
    assert [G.slot_of("after_meal", None, h) for h in (9, 13, 20)] == ["breakfast", "lunch", "dinner"]
    assert G.slot_of("after_meal", "snack", 16) == "other"
    assert G.slot_of("before_meal", "dinner", 19) == "other"


def test_adherence_counts_the_last_seven_full_local_days() -> None:
    today = dt.date(2027, 1, 12)
    days = [today - dt.timedelta(days=d) for d in (0, 1, 1, 7, 8)]  # today and 8 days ago do not count
    adherence = G.adherence(days, today, 4)
    assert (adherence.readings, adherence.expected) == (3, 28)


def test_time_in_ranges_uses_the_pregnancy_bounds_inclusively() -> None:
    values = np.array([53.9, 54.0, 62.9, 63.0, 140.0, 140.1, 100.0, 100.0, 100.0, 100.0])
    tir = G.time_in_ranges(values, 10 * 300)
    assert tir is not None
    assert (tir.very_low, tir.low, tir.in_range, tir.high) == (10.0, 20.0, 60.0, 10.0)
    assert tir.goals == {"very_low": False, "low": False, "in_range": False, "high": True}
    assert tir.coverage == 100.0
    assert abs(tir.gmi - (3.31 + 0.02392 * values.mean())) < 1e-9


def test_the_lock_out_doubles_from_the_threshold_up_to_a_ceiling() -> None:
    delays = [sessions.lock_seconds(n, 5) for n in range(1, 12)]
    assert delays[:4] == [None] * 4
    assert delays[4:] == [30.0, 60.0, 120.0, 240.0, 480.0, 900.0, 900.0]


@pytest.mark.parametrize(
    ("target", "safe"),
    [("/patients/1?x=2", "/patients/1?x=2"), ("https://evil.example/", "/"), ("//evil.example", "/"),
     ("/\\evil.example", "/"), ("javascript:alert(1)", "/"), ("", "/")],
)  # fmt: skip
def test_redirects_stay_on_this_site(target: str, safe: str) -> None:
    assert web.safe_next(target) == safe
