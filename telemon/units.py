"""Glucose units. Canonical unit is mg/dL (DESIGN §2).

mmol/L × 18.01559 = mg/dL (the factor Tidepool and Nightscout use); g/L × 100 = mg/dL (French practice).
"""

from __future__ import annotations

MGDL = "mg/dL"
MMOLL = "mmol/L"
GL = "g/L"
UNITS = (MGDL, MMOLL, GL)

MMOLL_TO_MGDL = 18.01559
TO_MGDL = {MGDL: 1.0, MMOLL: MMOLL_TO_MGDL, GL: 100.0}

# Plausible meter range, about 10–600 mg/dL (DESIGN §3); meters report LO / HI outside it.
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


def from_mgdl(value_mgdl: float, unit: str) -> float:
    return value_mgdl / TO_MGDL[unit]


def plausible_range(unit: str) -> tuple[float, float]:
    low, high = PLAUSIBLE_MGDL
    factor = TO_MGDL[unit]
    return (round(low / factor, 2), round(high / factor, 2))


def display(value_mgdl: float, unit: str) -> str:
    """A value for people: whole mg/dL, one decimal in mmol/L, two in g/L (French practice writes 0.95 g/L)."""
    value = from_mgdl(value_mgdl, unit)
    digits = {MGDL: 0, MMOLL: 1, GL: 2}[unit]
    return f"{value:.{digits}f} {unit}"
