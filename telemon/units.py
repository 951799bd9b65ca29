"""Glucose units. Canonical unit is mg/dL: readings are stored and compared in it, shown in the reader's unit.

mmol/L × 18.01559 = mg/dL (the factor Tidepool and Nightscout use); g/L × 100 = mg/dL (French practice).
"""

from __future__ import annotations

from decimal import Decimal

MGDL = "mg/dL"
MMOLL = "mmol/L"
GL = "g/L"
UNITS = (MGDL, MMOLL, GL)

MMOLL_TO_MGDL = 18.01559
TO_MGDL = {MGDL: 1.0, MMOLL: MMOLL_TO_MGDL, GL: 100.0}
# The factors as exact decimals (exact_mgdl; forms that show a stored value as it was entered).
DECIMAL_TO_MGDL = {MGDL: Decimal(1), MMOLL: Decimal("18.01559"), GL: Decimal(100)}

# The decimals a person reads in each unit: whole mg/dL, one decimal in mmol/L, two in g/L (French practice writes
# targets as 0.95 g/L). Every glucose value shown or rendered (dashboard, alert messages) uses these.
DIGITS = {MGDL: 0, MMOLL: 1, GL: 2}

# Plausible meter range, about 10–600 mg/dL; meters report LO / HI outside it.
PLAUSIBLE_MGDL = (10.0, 600.0)

_SPELLINGS = {
    "mg/dl": MGDL,
    "mgdl": MGDL,
    "mg/100ml": MGDL,
    "mg_dl": MGDL,
    "mg per dl": MGDL,
    "mmol/l": MMOLL,
    "mmoll": MMOLL,
    "mmol": MMOLL,
    "mmol_l": MMOLL,
    "mm": MMOLL,
    "g/l": GL,
    "gl": GL,
    "g_l": GL,
}


def canonical_unit(text: str) -> str | None:
    """The unit named by ``text`` in any usual spelling (``mg/dl``, ``mmol/l``, ``g/l`` …), or None."""
    return _SPELLINGS.get(text.strip().lower())


def to_mgdl(value: float, unit: str) -> float:
    return value * TO_MGDL[unit]


def exact_mgdl(value: float, unit: str) -> float:
    """``value`` in ``unit``, in mg/dL: the double nearest to the exact decimal product of the value as written
    (its shortest representation, which is what a device or a form sent) and the factor. 4.0 mmol/L is
    72.06236 mg/dL, 5.3 mmol/L 95.482627, 0.7 g/L 70.

    Every reading (ingest) and every threshold or target (alerts.profiles, the patient form) goes through this
    function, so a reading and a threshold stated in the same unit compare in mg/dL exactly as they compare in
    their own unit: the decimal products keep the order of the decimals, rounding to the nearest double keeps it
    (it is monotonic, and two products of values of a few significant digits are never within one ulp), and
    equal values give the same double. ``value * factor`` in binary floating point, or a product rounded to a
    few decimals (72.062 for 4.0 mmol/L), lands on either side of the threshold of the same value and turns a
    reading "at" a guideline threshold into one "below" it. The decimal product costs about half a microsecond;
    meters send few distinct values (one decimal in mmol/L, two in g/L), so the results are kept (a bounded
    table per unit) and ingest pays a dictionary look-up. mg/dL values are returned as they are."""
    if unit == MGDL:
        return value
    known = _EXACT[unit]
    found = known.get(value)
    if found is None:
        found = float(Decimal(repr(value)) * DECIMAL_TO_MGDL[unit])
        if len(known) < _EXACT_KEPT:
            known[value] = found
    return found


# exact_mgdl's results per unit, at most _EXACT_KEPT each (a value that is not kept is computed again).
_EXACT: dict[str, dict[float, float]] = {MMOLL: {}, GL: {}}
_EXACT_KEPT = 8192


def from_mgdl(value_mgdl: float, unit: str) -> float:
    return value_mgdl / TO_MGDL[unit]
