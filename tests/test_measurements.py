"""The device contract's other item kinds (insulin, ketone, weight, blood pressure): each validated item by item
beside the glucose readings of the same sync, with a specific refusal by index, and never a crash."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.measurements import KG_PER_LB
from ingest.readings import DeviceContext, prepare

NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)
AT = "2026-11-22T07:30:00Z"


def device() -> DeviceContext:
    return DeviceContext("app-1", "app", uuid.uuid4(), "Europe/Paris", dt.date(2026, 4, 1))


def sync(*items: Any, device_time: str | None = None) -> Any:
    return prepare(
        {"device_time": device_time, "readings": list(items)}, device(), now=NOW, source="test", max_readings=50
    )


INSULIN = {"kind": "insulin", "measured_at": AT, "units": 8, "insulin": "basal", "product": "NPH", "slot": "bedtime"}
BLOOD_KETONE = {"kind": "ketone", "measured_at": AT, "value": 0.4, "unit": "mmol/L"}
URINE_KETONE = {"kind": "ketone", "measured_at": AT, "urine": "++"}
WEIGHT = {"kind": "weight", "measured_at": AT, "value": 72.5, "unit": "kg"}
PRESSURE = {"kind": "blood_pressure", "measured_at": AT, "systolic": 142, "diastolic": 91, "pulse": 80, "unit": "mmHg"}
GLUCOSE = {"measured_at": AT, "value": 92, "unit": "mg/dL", "context": "fasting"}


def test_a_sync_mixing_glucose_and_every_other_kind_keeps_each_where_it_belongs() -> None:
    prepared = sync(GLUCOSE, INSULIN, BLOOD_KETONE, URINE_KETONE, WEIGHT, PRESSURE)
    assert prepared.rejected == []
    assert [r.value_raw for r in prepared.rows] == [92]
    assert prepared.positions == [0]
    assert prepared.measured_positions == [1, 2, 3, 4, 5]
    insulin, blood, urine, weight, pressure = prepared.measurements
    assert (insulin.kind, insulin.value, insulin.insulin, insulin.product, insulin.slot) == (
        "insulin", 8.0, "basal", "NPH", "bedtime"
    )  # fmt: skip
    assert (blood.value, blood.unit_raw, blood.urine) == (0.4, "mmol/L", None)
    assert (urine.value, urine.urine) == (None, "++")
    assert (weight.value, weight.unit_raw) == (72.5, "kg")
    assert (pressure.systolic, pressure.diastolic, pressure.pulse) == (142.0, 91.0, 80.0)
    assert all(m.measured_at == dt.datetime(2026, 11, 22, 7, 30, tzinfo=dt.UTC) for m in prepared.measurements)


def test_the_dedup_key_is_what_the_device_said() -> None:
    a, b, c, d = sync(
        INSULIN, {**INSULIN, "units": 8.0}, {**INSULIN, "units": 10}, {**INSULIN, "slot": None}
    ).measurements
    assert a.values_key == b.values_key  # 8 and 8.0 units: the same dose
    assert len({a.values_key, c.values_key, d.values_key}) == 3


def test_a_weight_in_pounds_is_kept_as_sent_and_stored_in_kg() -> None:
    (weight,) = sync({**WEIGHT, "value": 160, "unit": "lb"}).measurements
    assert (weight.value_raw, weight.unit_raw) == (160.0, "lb")
    assert math.isclose(weight.value or 0, 160 * KG_PER_LB)


def test_a_weight_in_grams_is_kept_as_sent_and_stored_in_kg() -> None:
    (weight,) = sync({**WEIGHT, "value": 72500, "unit": "g"}).measurements
    assert (weight.value_raw, weight.unit_raw, weight.value) == (72500.0, "g", 72.5)


# Each plausible range at its bounds, in the unit sent: the bound itself is kept (insulin's lower bound excepted:
# a dose is above 0), a step beyond it is refused (ingest.measurements says the source of each bound).
AT_THE_BOUNDS: list[tuple[dict[str, Any], bool]] = [
    ({**INSULIN, "units": 0.05}, True),  # a pump's smallest bolus step
    ({**INSULIN, "units": 160}, True),  # Tresiba FlexTouch U-200 / Toujeo DoubleStar's largest dial
    ({**INSULIN, "units": 160.5}, False),
    ({**INSULIN, "units": -2}, False),
    ({**BLOOD_KETONE, "value": 0.0}, True),
    ({**BLOOD_KETONE, "value": 8.0}, True),  # the top of the strips' measuring range
    ({**BLOOD_KETONE, "value": 9.4}, True),  # a laboratory's result in ketoacidosis, above a strip's range
    ({**BLOOD_KETONE, "value": 25.1}, False),
    ({**WEIGHT, "value": 30}, True),
    ({**WEIGHT, "value": 29.9}, False),
    ({**WEIGHT, "value": 300}, True),
    ({**WEIGHT, "value": 300.1}, False),
    ({**WEIGHT, "value": 300 / KG_PER_LB, "unit": "lb"}, True),
    ({**WEIGHT, "value": 300 / KG_PER_LB + 0.1, "unit": "lb"}, False),
    ({**WEIGHT, "value": 30000, "unit": "g"}, True),
    ({**WEIGHT, "value": 29999, "unit": "g"}, False),
    ({**PRESSURE, "systolic": 299, "diastolic": 200}, True),
    ({**PRESSURE, "systolic": 300}, False),
    ({**PRESSURE, "systolic": 50, "diastolic": 20}, True),
    ({**PRESSURE, "systolic": 49, "diastolic": 20}, False),
    ({**PRESSURE, "systolic": 80, "diastolic": 19}, False),
    ({**PRESSURE, "systolic": 299, "diastolic": 201}, False),
    ({**PRESSURE, "pulse": 30}, True),
    ({**PRESSURE, "pulse": 29}, False),
    ({**PRESSURE, "pulse": 220}, True),
    ({**PRESSURE, "pulse": 221}, False),
]


@pytest.mark.parametrize(("item", "kept"), AT_THE_BOUNDS, ids=[repr(i) for i, _ in AT_THE_BOUNDS])
def test_each_plausible_range_at_its_bounds(item: dict[str, Any], kept: bool) -> None:
    prepared = sync(item)
    assert (len(prepared.measurements), len(prepared.rejected)) == ((1, 0) if kept else (0, 1))
    if not kept:
        assert "plausible range" in prepared.rejected[0].reason


def test_the_clock_correction_of_the_sync_applies_to_every_kind() -> None:
    ahead = (NOW + dt.timedelta(hours=1)).isoformat()
    later = (NOW + dt.timedelta(minutes=50)).isoformat()
    prepared = sync({**WEIGHT, "measured_at": later}, device_time=ahead)
    (weight,) = prepared.measurements
    assert weight.clock_offset_s == -3600
    assert weight.measured_at == NOW - dt.timedelta(minutes=10)


REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({**INSULIN, "units": 0}, "units: 0 U is outside the plausible range (above 0 to 160 U)"),
    ({**INSULIN, "units": 400}, "units: 400 U is outside the plausible range (above 0 to 160 U)"),
    ({**INSULIN, "units": "8"}, "units: expected a number, got str"),
    ({**INSULIN, "units": True}, "units: expected a number, got bool"),
    ({**INSULIN, "units": float("nan")}, "units: nan is not a finite number"),
    ({**INSULIN, "units": 10**400}, "units: an integer of 401 digits is out of range"),
    ({k: v for k, v in INSULIN.items() if k != "units"}, "units: required, a number in U"),
    ({**INSULIN, "insulin": "slow"}, "insulin: 'slow' is not one of basal, rapid, premixed"),
    ({**INSULIN, "insulin": None, "product": None}, "insulin: say which insulin: one of basal, rapid, premixed, or its product"),
    ({**INSULIN, "slot": "brunch"}, "slot: 'brunch' is not one of breakfast, lunch, dinner, bedtime"),
    ({**INSULIN, "product": "NP\x00H"}, "product: contains a NUL character"),
    ({**INSULIN, "product": "x" * 65}, "product: expected a string of at most 64 characters"),
    ({**INSULIN, "unit": "mL"}, "unit: 'mL' is not U for insulin (units)"),
    ({**BLOOD_KETONE, "value": 30}, "value: 30 mmol/L is outside the plausible range (from 0 to 25 mmol/L)"),
    ({**BLOOD_KETONE, "value": -0.1}, "value: -0.1 mmol/L is outside the plausible range (from 0 to 25 mmol/L)"),
    ({**BLOOD_KETONE, "unit": "mg/dL"}, "unit: 'mg/dL' is not one of mmol/L for blood ketones"),
    ({**BLOOD_KETONE, "urine": "+"}, "ketone: either value with unit mmol/L (blood β-hydroxybutyrate) or urine (negative, trace, +, ++, +++), not both"),
    ({"kind": "ketone", "measured_at": AT}, "ketone: either value with unit mmol/L (blood β-hydroxybutyrate) or urine (negative, trace, +, ++, +++), not neither"),
    ({**URINE_KETONE, "urine": "++++"}, "urine: '++++' is not one of negative, trace, +, ++, +++"),
    ({**WEIGHT, "value": 725}, "value: 725 kg is outside the plausible range (from 30 to 300 kg)"),
    ({**WEIGHT, "value": 12}, "value: 12 kg is outside the plausible range (from 30 to 300 kg)"),
    ({**WEIGHT, "unit": "st"}, "unit: 'st' is not one of kg, lb, g for weight"),
    ({**WEIGHT, "value": float("inf")}, "value: inf is not a finite number"),
    ({**PRESSURE, "systolic": 420}, "systolic: 420 mmHg is outside the plausible range (from 50 to 299 mmHg)"),
    ({**PRESSURE, "diastolic": 150}, "diastolic: 150 mmHg is not below the systolic 142 mmHg"),
    ({**PRESSURE, "pulse": 400}, "pulse: 400 beats/min is outside the plausible range (from 30 to 220 beats/min)"),
    ({**PRESSURE, "unit": "kPa"}, "unit: 'kPa' is not one of mmHg for blood pressure"),
    ({**PRESSURE, "systolic": None}, "systolic: required, a number in mmHg"),
    ({**WEIGHT, "measured_at": "yesterday"}, "measured_at: 'yesterday' is not an ISO 8601 date-time"),
    ({**WEIGHT, "measured_at": "2026-11-23T12:00:00Z"}, "measured_at: 2026-11-23T12:00:00+00:00 is in the future (after clock correction)"),
    ({**WEIGHT, "measured_at": "2025-01-01T00:00:00Z"}, "measured_at: 2025-01-01 is before this pregnancy began (2026-04-01)"),
    ({**WEIGHT, "id": "a\ud800"}, "id: is not valid Unicode (a lone UTF-16 surrogate)"),
    ({**WEIGHT, "note": 5}, "note: expected a string of at most 1000 characters"),
]  # fmt: skip


@pytest.mark.parametrize(("item", "reason"), REFUSALS, ids=[r for _, r in REFUSALS])
def test_a_bad_item_is_refused_by_index_with_its_reason_and_its_neighbours_kept(
    item: dict[str, Any], reason: str
) -> None:
    prepared = sync(GLUCOSE, item, WEIGHT)
    assert [(r.index, r.reason) for r in prepared.rejected] == [(1, reason)]
    assert len(prepared.rows) == 1 and prepared.measured_positions == [2]


def test_an_unknown_kind_is_still_refused_as_glucose_refuses_it() -> None:
    (refused,) = sync({**WEIGHT, "kind": "temperature"}).rejected
    assert refused.index == 0 and refused.reason.startswith("unit: 'kg' is not one of mg/dL")


JSONISH = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
        st.sampled_from([10**400, float("nan"), "\x00", "\ud800", "mmHg", "kg", "++", "basal"]),
    ),
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(st.text(max_size=4), children, max_size=3)),
    max_leaves=8,
)  # fmt: skip
FIELDS = ["measured_at", "value", "unit", "units", "insulin", "product", "slot", "urine", "systolic", "diastolic",
          "pulse", "id", "note"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from([INSULIN, BLOOD_KETONE, URINE_KETONE, WEIGHT, PRESSURE]),
    fields=st.dictionaries(st.sampled_from(FIELDS), JSONISH, max_size=4),
)
def test_whatever_a_measurement_holds_it_is_kept_or_refused_never_raised(
    base: dict[str, Any], fields: dict[str, Any]
) -> None:
    prepared = sync(GLUCOSE, {**base, **fields})
    assert len(prepared.rows) == 1
    assert len(prepared.measurements) + len(prepared.rejected) == 1
    for refused in prepared.rejected:
        assert refused.index == 1 and "\x00" not in refused.reason and "\x00" not in refused.raw
        refused.reason.encode("utf-8")
    for kept in prepared.measurements:
        assert all(math.isfinite(v) for v in (kept.value, kept.systolic, kept.diastolic, kept.pulse) if v is not None)
        for text in (kept.product, kept.external_id, kept.note, kept.unit_raw, kept.values_key):
            assert text is None or ("\x00" not in text and text.encode("utf-8"))
