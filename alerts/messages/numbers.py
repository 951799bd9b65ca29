"""Numbers and glucose values written for people, in a language's conventions and the reader's unit.

The decimals of each unit are :data:`telemon.units.DIGITS`; the decimal mark and the thousands separator are the
language's (its catalogue's ``DECIMAL`` and ``THOUSANDS``).
"""

from __future__ import annotations

import math
from types import ModuleType

from alerts.messages import en, fr
from telemon import units

CATALOGUES: dict[str, ModuleType] = {"en": en, "fr": fr}
LANGUAGES = tuple(CATALOGUES)


def number(value: float, digits: int, lang: str) -> str:
    """``1,234.5`` in English, ``1 234,5`` in French (narrow no-break space)."""
    rendered = f"{value:,.{digits}f}"
    if rendered.startswith("-") and float(rendered.replace(",", "")) == 0:
        rendered = rendered[1:]  # no "-0.0"
    catalogue = CATALOGUES.get(lang, en)
    if catalogue.DECIMAL != "." or catalogue.THOUSANDS != ",":
        rendered = rendered.replace(",", "\0").replace(".", catalogue.DECIMAL).replace("\0", catalogue.THOUSANDS)
    return rendered


def glucose_number(value_mgdl: float, unit: str, lang: str) -> str:
    """The number alone, in ``unit``, with that unit's precision."""
    return number(units.from_mgdl(value_mgdl, unit), units.DIGITS[unit], lang)


def glucose(value_mgdl: float | None, unit: str, lang: str) -> str:
    """``95 mg/dL``, ``5,3 mmol/L``, ``0,95 g/L`` (a no-break space before the unit)."""
    if value_mgdl is None or math.isnan(value_mgdl):
        return "—"
    return f"{glucose_number(value_mgdl, unit, lang)}\u00a0{unit}"


def decimal(value: float, digits: int, lang: str) -> str:
    """A rate or a percentage in a message: fixed decimals, the language's decimal mark, no grouping."""
    return f"{value:.{digits}f}".replace(".", CATALOGUES.get(lang, en).DECIMAL)
