"""Every threshold of every profile, judged on a reading sent at it, just below and just above it, in mg/dL,
mmol/L and g/L: the reading goes through ingest's normalisation (``prepare``) and then through the engine's rule
and the plain-Python reference. The expected verdict is computed in exact decimal arithmetic from the guideline's
own statement ("below 4.0 mmol/L", "< 0.95 g/L", "≥ 200 mg/dL"), independently of the floating-point path."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from alerts import profiles as P
from alerts import rules
from ingest.readings import DeviceContext, prepare
from telemon.units import GL, MGDL, MMOLL, exact_mgdl
from tests.reference_rules import reference
from tests.support.cohorts import DAY, NOW, Patient, R, build, local_day_of

FACTOR = {MGDL: Decimal(1), MMOLL: Decimal("18.01559"), GL: Decimal(100)}
STEP = {MGDL: Decimal(1), MMOLL: Decimal("0.1"), GL: Decimal("0.01")}  # what meters display
TODAY = local_day_of(NOW)
INGEST_NOW = dt.datetime.fromtimestamp(NOW, dt.UTC)


@dataclass(frozen=True)
class Threshold:
    name: str
    value: Decimal  # as the guideline states it ...
    unit: str  # ... in its unit
    fires: Callable[[Decimal, Decimal], bool]  # (reading, threshold), both in mg/dL, exact
    rule: rules.Rule
    profile: str = "FR"
    treatment: str = "diet"
    context: str = "unspecified"
    minutes: int = -1


def below(v: Decimal, t: Decimal) -> bool:
    return v < t


def at_or_above(v: Decimal, t: Decimal) -> bool:
    return v >= t


def above(v: Decimal, t: Decimal) -> bool:
    return v > t


D = Decimal
THRESHOLDS = [
    Threshold("hypo level 1 < 70 mg/dL", D(70), MGDL, below, rules.hypo_l1),
    Threshold("hypo level 2 < 54 mg/dL", D(54), MGDL, below, rules.hypo_l2),
    Threshold("NICE insulin floor < 4.0 mmol/L", D("4.0"), MMOLL, below, rules.hypo_insulin_floor, "NICE", "insulin"),
    Threshold("FR fasting > 1.30 g/L", D("1.30"), GL, above, rules.fasting_severe, context="fasting"),
    Threshold("ketone check ≥ 200 mg/dL", D(200), MGDL, at_or_above, rules.ketone_check),
    Threshold("FR fasting < 0.95 g/L", D("0.95"), GL, at_or_above, rules.fasting_above_target, context="fasting"),
    Threshold("FR 2 h < 1.20 g/L", D("1.20"), GL, at_or_above, rules.postprandial_above_target, "FR",
              context="after_meal", minutes=120),
    Threshold("NICE fasting < 5.3 mmol/L", D("5.3"), MMOLL, at_or_above, rules.fasting_above_target, "NICE",
              context="fasting"),
    Threshold("NICE 1 h < 7.8 mmol/L", D("7.8"), MMOLL, at_or_above, rules.postprandial_above_target, "NICE",
              context="after_meal", minutes=60),
    Threshold("NICE 2 h < 6.4 mmol/L", D("6.4"), MMOLL, at_or_above, rules.postprandial_above_target, "NICE",
              context="after_meal", minutes=120),
    Threshold("ADA fasting < 95 mg/dL", D(95), MGDL, at_or_above, rules.fasting_above_target, "ADA",
              context="fasting"),
    Threshold("ADA 1 h < 140 mg/dL", D(140), MGDL, at_or_above, rules.postprandial_above_target, "ADA",
              context="after_meal", minutes=60),
    Threshold("ADA 2 h < 120 mg/dL", D(120), MGDL, at_or_above, rules.postprandial_above_target, "ADA",
              context="after_meal", minutes=120),
]  # fmt: skip


def neighbours(threshold: Threshold, unit: str) -> list[Decimal]:
    """The threshold restated in ``unit``: exactly (when it is a finite decimal there), and the values a meter
    would show just below and just above it, and values a millionth of that step away."""
    exact = threshold.value * FACTOR[threshold.unit] / FACTOR[unit]
    step = STEP[unit]
    values = {exact.quantize(step, rounding="ROUND_FLOOR"), exact.quantize(step, rounding="ROUND_CEILING")}
    values |= {exact - step, exact + step, exact - step / 1000000, exact + step / 1000000}
    if exact == exact.quantize(D("1e-9")):
        values.add(exact.normalize())
    return sorted(v.normalize() for v in values)


CASES = [(t, unit, value) for t in THRESHOLDS for unit in (MGDL, MMOLL, GL) for value in neighbours(t, unit)]


def stored_mgdl(value: Decimal, unit: str) -> float:
    """What ingest stores for a reading of ``value`` ``unit`` (as a device sends it, a JSON number)."""
    device = DeviceContext("meter-1", "meter", uuid.uuid4(), "UTC", dt.date(2024, 1, 1))
    # with its context: the value's normalisation is under test here, not the inference of a missing context
    item = {"measured_at": "2024-06-09T10:00:00Z", "value": float(value), "unit": unit, "context": "unspecified"}
    prepared = prepare({"readings": [item]}, device, now=INGEST_NOW, source="test", max_readings=1)
    assert not prepared.rejected, prepared.rejected
    return prepared.rows[0].value_mgdl


@pytest.mark.parametrize(("threshold", "unit", "value"), CASES, ids=[f"{t.name} @ {v} {u}" for t, u, v in CASES])
def test_every_threshold_at_below_and_above_in_every_unit(threshold: Threshold, unit: str, value: Decimal) -> None:
    expected = threshold.fires(value * FACTOR[unit], threshold.value * FACTOR[threshold.unit])
    mgdl = stored_mgdl(value, unit)
    reading = R(t=(TODAY - 1) * DAY + 7 * 3600, value=mgdl, context=threshold.context,
                minutes_after_meal=threshold.minutes)  # fmt: skip
    cohort = build([Patient(readings=[reading], profile=threshold.profile, treatment=threshold.treatment)])
    engine = threshold.rule(cohort)
    assert (len(engine) == 1) is expected, (threshold.name, value, unit, mgdl)
    ref = {c.rule for c in reference(cohort).candidates}
    assert (threshold.rule.__name__ in ref) is expected


def test_the_reported_case_a_4_mmol_reading_is_not_below_the_4_mmol_floor() -> None:
    mgdl = stored_mgdl(D("4.0"), MMOLL)
    assert mgdl == P.NICE_INSULIN_FLOOR_MGDL == 72.06236
    assert not mgdl < P.NICE_INSULIN_FLOOR_MGDL
    assert stored_mgdl(D("3.9"), MMOLL) < P.NICE_INSULIN_FLOOR_MGDL


def test_mmol_statements_of_the_mgdl_thresholds_agree_for_every_meter_reading() -> None:
    """ADA states its mg/dL thresholds with mmol/L equivalents (70 ≈ 3.9, 54 ≈ 3.0, 95 ≈ 5.3, 140 ≈ 7.8,
    120 ≈ 6.7): for every reading a meter shows in mmol/L (one decimal), the verdict in mg/dL is the verdict
    against the mmol/L statement, so a clinician working in mmol/L is never surprised."""
    pairs = [(70, "3.9"), (54, "3.0"), (95, "5.3"), (140, "7.8"), (120, "6.7")]
    checked = 0
    for tenths in range(10, 334):
        reading = D(tenths) / 10
        mgdl = stored_mgdl(reading, MMOLL)
        for mgdl_threshold, mmol_threshold in pairs:
            assert (mgdl < mgdl_threshold) is (reading < D(mmol_threshold)), (reading, mgdl_threshold)
            checked += 1
    assert checked == 324 * len(pairs)


def test_exact_mgdl_is_the_nearest_double_to_the_decimal_product() -> None:
    for text in ("4.0", "5.3", "7.8", "6.4", "3.9", "3.0", "11.1", "33.3", "0.1"):
        exact = D(text) * FACTOR[MMOLL]
        assert exact_mgdl(float(text), MMOLL) == float(exact)
    for text in ("0.95", "1.20", "1.30", "0.7", "0.54", "0.07"):
        assert exact_mgdl(float(text), GL) == float(D(text) * 100)
    assert exact_mgdl(93.5, MGDL) == 93.5
    # the binary product is not always the nearest double: 0.07 g/L × 100 is 7.000000000000001
    assert 0.07 * 100 != 7.0 and exact_mgdl(0.07, GL) == 7.0
