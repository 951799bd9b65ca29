"""Weight gain against the IOM 2009 ranges by pre-pregnancy BMI (telemon.weight_gain), and the logbook's column of
an insulin dose (clinician_ui.glycaemia.dose_column)."""

from __future__ import annotations

import math

import pytest

from clinician_ui import glycaemia as G
from telemon import weight_gain as W


@pytest.mark.parametrize(
    ("bmi", "name"),
    [(16.0, W.UNDERWEIGHT), (18.49, W.UNDERWEIGHT), (18.5, W.NORMAL), (24.99, W.NORMAL), (25.0, W.OVERWEIGHT),
     (29.99, W.OVERWEIGHT), (30.0, W.OBESE), (45.0, W.OBESE)],
)  # fmt: skip
def test_who_bmi_categories_at_their_boundaries(bmi: float, name: str) -> None:
    assert W.category(bmi).name == name


def test_the_iom_totals_and_rates_by_category() -> None:
    by_name = {c.name: c for c in W.CATEGORIES}
    assert by_name[W.UNDERWEIGHT].total_kg == (12.5, 18.0) and by_name[W.UNDERWEIGHT].weekly_kg == (0.44, 0.58)
    assert by_name[W.NORMAL].total_kg == (11.5, 16.0) and by_name[W.NORMAL].weekly_kg == (0.35, 0.50)
    assert by_name[W.OVERWEIGHT].total_kg == (7.0, 11.5) and by_name[W.OVERWEIGHT].weekly_kg == (0.23, 0.33)
    assert by_name[W.OBESE].total_kg == (5.0, 9.0) and by_name[W.OBESE].weekly_kg == (0.17, 0.27)
    assert W.bmi(62.5, 165) == pytest.approx(22.96, abs=0.01)


def test_the_gain_recommended_so_far() -> None:
    normal, obese = W.category(22), W.category(32)
    low, high = W.expected_so_far(normal, 10)
    assert math.isinf(low) and low < 0 and high == 2.0  # first trimester: at most 2 kg, no lower bound
    assert W.expected_so_far(normal, 24) == pytest.approx((0.5 + 0.35 * 11, 2.0 + 0.50 * 11))
    assert W.expected_so_far(normal, 40) == pytest.approx((0.5 + 0.35 * 27, 15.5))
    # the rate's upper bound never passes the whole pregnancy's: 2 + 0.27 × 27 = 9.29 > 9 kg for obesity
    assert W.expected_so_far(obese, 40)[1] == 9.0


def _weights(pairs: list[tuple[int, float]]) -> list[tuple[float, float]]:
    """(week, kg) → (gestational day, kg)."""
    return [(float(week * 7), kg) for week, kg in pairs]


def test_a_gain_within_the_range_is_not_flagged() -> None:
    found = W.assess(165, 62.0, _weights([(16, 64.0), (20, 66.2), (24, 68.0)]))
    assert found is not None and found.category.name == W.NORMAL
    assert found.status == W.IN and not found.flagged and found.reason is None
    assert found.gain_kg == pytest.approx(6.0) and found.weeks == 24
    assert found.rate_kg_per_week == pytest.approx(0.45)  # the last 4 weeks: 66.2 → 68.0 kg


def test_a_gain_above_the_range_so_far_is_flagged() -> None:
    found = W.assess(165, 62.0, _weights([(20, 68.0), (24, 71.0)]))
    assert found is not None and found.status == W.ABOVE and found.reason == W.SO_FAR and found.flagged


def test_a_gain_below_the_range_so_far_is_flagged() -> None:
    found = W.assess(165, 62.0, _weights([(24, 64.0)]))
    assert found is not None and found.status == W.BELOW and found.reason == W.SO_FAR


def test_gaining_too_fast_lately_is_flagged_while_the_total_is_still_in_range() -> None:
    # 4.2 kg at 20 weeks (range 2.95–5.5), then 0.8 kg a week to 7.4 kg at 24 weeks (range 4.35–7.5)
    found = W.assess(165, 62.0, _weights([(20, 66.2), (22, 67.8), (24, 69.4)]))
    assert found is not None
    assert found.rate_kg_per_week == pytest.approx(0.8)
    assert found.status == W.ABOVE and found.reason == W.RATE


def test_the_first_trimester_judges_only_a_gain_above_2_kg() -> None:
    lost = W.assess(165, 62.0, _weights([(10, 60.5)]))  # nausea: a loss is not flagged
    assert lost is not None and lost.status == W.IN
    gained = W.assess(165, 62.0, _weights([(10, 64.5)]))
    assert gained is not None and gained.status == W.ABOVE and gained.reason == W.SO_FAR


def test_the_rate_needs_two_weeks_of_weights_and_leaves_the_first_trimester_out() -> None:
    assert W.weekly_rate(_weights([(24, 68.0)])) is None
    assert W.weekly_rate([(160.0, 67.0), (168.0, 68.5)]) is None  # 8 days: water, not gain
    # a first-trimester weight 5 weeks before is neither recent nor of the 2nd trimester
    assert W.weekly_rate([(80.0, 60.0), (100.0, 62.0), (114.0, 63.0)]) == pytest.approx(0.5)
    noisy = [(140.0 + d, 66.0 + 0.06 * d + (0.4 if d % 2 else -0.4)) for d in range(0, 29)]
    assert W.weekly_rate(noisy) == pytest.approx(0.42, abs=0.05)  # least squares: a day's ± 0.4 kg averages out


def test_nothing_is_judged_without_height_pre_pregnancy_weight_or_weights() -> None:
    assert W.assess(None, 62.0, _weights([(24, 68.0)])) is None
    assert W.assess(165, None, _weights([(24, 68.0)])) is None
    assert W.assess(165, 62.0, []) is None


def test_implausible_heights_and_weights_are_refused_by_name() -> None:
    assert W.check_height_cm(None) is None and W.check_height_cm(165) == 165.0
    with pytest.raises(W.BodyError, match=r"height_cm: 16.5 cm is outside the plausible range 120–220 cm"):
        W.check_height_cm(16.5)
    with pytest.raises(W.BodyError, match="pre_pregnancy_weight_kg"):
        W.check_pre_pregnancy_weight_kg(620)
    with pytest.raises(W.BodyError):
        W.check_pre_pregnancy_weight_kg(math.nan)


@pytest.mark.parametrize(
    ("slot", "insulin", "minute", "column"),
    [
        ("breakfast", "rapid", 7 * 60, "breakfast"),
        ("dinner", "rapid", 12 * 60, "dinner"),  # the slot the device sent wins over the clock
        ("bedtime", "basal", 21 * 60, "other"),
        (None, "rapid", 7 * 60 + 45, "breakfast"),
        (None, "rapid", 12 * 60 + 10, "lunch"),
        (None, "premixed", 19 * 60, "dinner"),
        (None, "basal", 22 * 60, "other"),  # the evening's basal covers the night
        (None, "basal", 19 * 60, "other"),
        (None, "basal", 8 * 60, "breakfast"),  # a morning basal (detemir twice a day) beside breakfast
        (None, None, 23 * 60 + 30, "other"),
        (None, "rapid", 2 * 60, "other"),
    ],
)
def test_the_logbook_column_of_a_dose(slot: str | None, insulin: str | None, minute: int, column: str) -> None:
    assert G.dose_column(slot, insulin, minute) == column
