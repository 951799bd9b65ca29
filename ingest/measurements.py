"""The device wire format's other item kinds: insulin doses, ketones, weight and blood pressure.

They travel in the same sync as glucose readings (``{"readings": [...]}``, each item with its ``kind``), get the
same clock correction, the same refusals by index and the same receipts, and are stored in the same transaction
in their own table (``measurements``). Their dedup key is what the device said: device, kind, device time and the
values (``Measurement.values_key``), so a re-sent sync is all duplicates.

The plausible ranges below refuse what no device measures or no person could have; they are not clinical
thresholds (those belong to the rules).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingest.wire import Rejection, Sync, brief, item_instant, text_fault

MEASUREMENT_KINDS = ("insulin", "ketone", "weight", "blood_pressure")
INSULINS = ("basal", "rapid", "premixed")
SLOTS = ("breakfast", "lunch", "dinner", "bedtime")
URINE_KETONES = ("negative", "trace", "+", "++", "+++")

# Insulin units in one dose: above 0 (a pump's smallest bolus step is 0.05 U, a half-unit pen's 0.5 U) and at most
# 160 U, the largest single injection a pen sold in Europe dials (Tresiba FlexTouch U-200 and Toujeo DoubleStar:
# 2–160 units in steps of 2; their summaries of product characteristics, section 4.2); U-100 pens stop at 60–80.
INSULIN_UNITS = (0.0, 160.0)
# Blood β-hydroxybutyrate, mmol/L. Capillary ketone strips read 0.0–8.0 (Abbott FreeStyle Optium β-Ketone test
# strips, instructions for use; above it a meter shows "Hi"), but a laboratory result (FHIR import) can pass 8 in a
# decompensated ketoacidosis, and refusing it would lose the one value that most needs an urgent alert: so the bound
# is a sanity bound, not a clinical one: ketoacidosis is diagnosed from 3.0 mmol/L (Sheikh-Ali et al., Diabetes Care
# 2008;31:643-7) and severe cases pass 10; a value above 25 mmol/L is a typing error.
BLOOD_KETONE_MMOLL = (0.0, 25.0)
# Weight, kg: a sanity bound, not a clinical one. 30 kg is a body mass index of 12 at 1.58 m, below the WHO's
# "severe thinness" (BMI under 16) for any adult; 300 kg is beyond the capacity of the scales a pregnant woman is
# weighed on (bathroom scales stop at 150–200 kg; hospital bariatric platform scales at 300 kg and more).
WEIGHT_KG = (30.0, 300.0)
KG_PER_LB = 0.45359237  # exact, by the international yard and pound agreement (1959)
# The units a weight may come in (kg per unit): grams arrive from FHIR (UCUM "g"), pounds from US scales.
WEIGHT_UNITS = {"kg": 1.0, "lb": KG_PER_LB, "g": 0.001}
# Blood pressure, mmHg: the measuring range of validated upper-arm monitors is 0–299 mmHg (Omron M3 / M6 / 5- and
# 7-series, instruction manuals, "Specifications"), so no monitor reports a systolic of 300; below 50 systolic or
# 20 diastolic no oscillometric monitor gives a reading. Diastolic at most 200: none is recorded above it
# (malignant hypertension runs at 130–150). Pulse: the same monitors show 40–180 beats/min; 30–220 leaves a margin
# for ECG and pulse-oximeter readings, 220/min being the conventional ceiling of the maximal heart rate.
SYSTOLIC_MMHG = (50.0, 299.0)
DIASTOLIC_MMHG = (20.0, 200.0)
PULSE_PER_MIN = (30.0, 220.0)
PRODUCT_LIMIT = 64


@dataclass(slots=True)
class Measurement:
    """One measurement ready to store; the order of fields is the column order of
    ``queries.MEASUREMENT_COLUMNS``. ``value`` is in the canonical unit of its kind (insulin units, blood ketones in
    mmol/L, weight in kg); ``value_raw`` and ``unit_raw`` are as sent."""

    patient_id: uuid.UUID
    device_id: str
    kind: str
    device_time: dt.datetime
    values_key: str
    measured_at: dt.datetime
    clock_offset_s: int
    value: float | None
    value_raw: float | None
    unit_raw: str | None
    urine: str | None
    insulin: str | None
    product: str | None
    slot: str | None
    systolic: float | None
    diastolic: float | None
    pulse: float | None
    source: str
    external_id: str | None
    note: str | None


@dataclass(slots=True)
class _Values:
    """What one kind's validation found; the rest of a ``Measurement`` is common to every kind."""

    value: float | None = None
    value_raw: float | None = None
    unit_raw: str | None = None
    urine: str | None = None
    insulin: str | None = None
    product: str | None = None
    slot: str | None = None
    systolic: float | None = None
    diastolic: float | None = None
    pulse: float | None = None

    def key(self) -> str:
        """What the device said, as text: the last part of the dedup key. Numbers are written as received
        (``repr`` of the float), so 8 and 8.0 units are the same dose, and 72.5 kg and 72.5 lb are not."""
        return json.dumps(
            [self.value_raw, self.unit_raw, self.urine, self.insulin, self.product, self.slot, self.systolic,
             self.diastolic, self.pulse],
            ensure_ascii=True,
        )  # fmt: skip


def _number(item: dict[str, Any], key: str, bounds: tuple[float, float], unit: str, *, above: bool = False) -> float:
    """A finite number within ``bounds`` (above the lower bound, when ``above``), or the refusal saying why."""
    value = item.get(key)
    if type(value) is bool or not isinstance(value, int | float):
        if value is None:
            raise Rejection(f"{key}: required, a number in {unit}")
        raise Rejection(f"{key}: expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise Rejection(f"{key}: {brief(value)} is out of range") from None
    if not math.isfinite(number):
        raise Rejection(f"{key}: {number} is not a finite number")
    low, high = bounds
    if (number <= low if above else number < low) or number > high:
        floor = f"above {low:g}" if above else f"from {low:g}"
        raise Rejection(f"{key}: {number:g} {unit} is outside the plausible range ({floor} to {high:g} {unit})")
    return number


def _choice(item: dict[str, Any], key: str, choices: tuple[str, ...]) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if type(value) is not str or value not in choices:
        raise Rejection(f"{key}: {brief(value)} is not one of {', '.join(choices)}")
    return value


def _unit(item: dict[str, Any], expected: tuple[str, ...], what: str) -> str:
    """The unit as sent, when it is one of ``expected`` (any case, surrounding spaces allowed)."""
    unit = item.get("unit")
    if type(unit) is not str:
        raise Rejection(f"unit: required for {what}, one of {', '.join(expected)}")
    if unit.strip().lower() not in {e.lower() for e in expected}:
        raise Rejection(f"unit: {brief(unit, 20)} is not one of {', '.join(expected)} for {what}")
    return unit


def _text(item: dict[str, Any], key: str, limit: int) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if type(value) is not str:
        raise Rejection(f"{key}: expected a string of at most {limit} characters")
    value = value.strip()
    if len(value) > limit:
        raise Rejection(f"{key}: expected a string of at most {limit} characters")
    fault = text_fault(value)
    if fault:
        raise Rejection(f"{key}: {fault}")
    return value or None


def _insulin(item: dict[str, Any]) -> _Values:
    units = _number(item, "units", INSULIN_UNITS, "U", above=True)
    if "unit" in item and item["unit"] not in ("U", "IU", "units"):
        raise Rejection(f"unit: {brief(item['unit'], 20)} is not U for insulin (units)")
    insulin, product = _choice(item, "insulin", INSULINS), _text(item, "product", PRODUCT_LIMIT)
    if insulin is None and product is None:
        raise Rejection(f"insulin: say which insulin: one of {', '.join(INSULINS)}, or its product")
    return _Values(units, units, None, None, insulin, product, _choice(item, "slot", SLOTS))


def _ketone(item: dict[str, Any]) -> _Values:
    has_blood, has_urine = item.get("value") is not None, item.get("urine") is not None
    if has_blood == has_urine:
        raise Rejection(
            "ketone: either value with unit mmol/L (blood β-hydroxybutyrate) or urine"
            f" ({', '.join(URINE_KETONES)}), not {'both' if has_blood else 'neither'}"
        )
    if has_urine:
        return _Values(urine=_choice(item, "urine", URINE_KETONES))
    unit = _unit(item, ("mmol/L",), "blood ketones")
    value = _number(item, "value", BLOOD_KETONE_MMOLL, "mmol/L")
    return _Values(value, value, unit)


def _weight(item: dict[str, Any]) -> _Values:
    unit = _unit(item, tuple(WEIGHT_UNITS), "weight")
    factor = WEIGHT_UNITS[unit.strip().lower()]
    low, high = WEIGHT_KG
    sent = _number(item, "value", (low / factor, high / factor), unit.strip())
    return _Values(sent * factor, sent, unit)


def _blood_pressure(item: dict[str, Any]) -> _Values:
    unit = item.get("unit")
    if unit is not None:
        unit = _unit(item, ("mmHg",), "blood pressure")
    systolic = _number(item, "systolic", SYSTOLIC_MMHG, "mmHg")
    diastolic = _number(item, "diastolic", DIASTOLIC_MMHG, "mmHg")
    if diastolic >= systolic:
        raise Rejection(f"diastolic: {diastolic:g} mmHg is not below the systolic {systolic:g} mmHg")
    pulse = _number(item, "pulse", PULSE_PER_MIN, "beats/min") if item.get("pulse") is not None else None
    return _Values(unit_raw=unit, systolic=systolic, diastolic=diastolic, pulse=pulse)


_BY_KIND: dict[str, Callable[[dict[str, Any]], _Values]] = {
    "insulin": _insulin,
    "ketone": _ketone,
    "weight": _weight,
    "blood_pressure": _blood_pressure,
}


def is_measurement(item: Any) -> bool:
    """Whether ``item`` says it is one of the kinds of this module (a tuple: a list as kind compares unequal)."""
    return type(item) is dict and item.get("kind") in MEASUREMENT_KINDS


def prepare_measurement(item: dict[str, Any], sync: Sync) -> Measurement:
    """Validate and normalise one item of a measurement kind, or raise ``Rejection`` with the reason."""
    kind: str = item["kind"]
    values = _BY_KIND[kind](item)
    device_time, measured_at = item_instant(item.get("measured_at"), sync)
    external_id = item.get("id")
    if type(external_id) is int and external_id.bit_length() <= 425:  # beyond 128 digits: refused below
        external_id = str(external_id)
    external_id = _text({"id": external_id}, "id", 128)
    note = item.get("note")
    if type(note) is str:
        note = note[:1000]
    note = _text({"note": note}, "note", 1000)
    device = sync.device
    return Measurement(
        device.patient_id, device.device_id, kind, device_time, values.key(), measured_at, sync.offset_s,
        values.value, values.value_raw, values.unit_raw, values.urine, values.insulin, values.product, values.slot,
        values.systolic, values.diastolic, values.pulse, sync.source, external_id, note,
    )  # fmt: skip
