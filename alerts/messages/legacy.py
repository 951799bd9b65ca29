"""Alerts stored before messages were stored as facts: their English and French text, with glucose values in
mg/dL, is all there is. It is shown as it was: the values restated in the reader's unit, the rule's id left out
(the reader sees the rule's name beside the message)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping

from alerts.messages.numbers import glucose_number
from telemon import units

_NUM = r"\d+(?:[.,]\d+)?"
_CMP = r"(?:[<>≤≥]\s?)?"
_SEP = r"(?:\s*[–-]\s*|,\s+|\s+(?:to|à)\s+)"
_UNIT = r"mg/dL|mmol/L|g/L"
# A glucose quantity: one number, a list or a range of numbers (each maybe after < ≤ > ≥), then a glucose unit;
# not a rate (mg/dL/min, mg/dL per day); maybe followed by the same restated in another unit in parentheses.
_QUANTITY = re.compile(
    rf"(?<![\w.,:/-])(?P<body>{_CMP}{_NUM}(?:{_SEP}{_CMP}{_NUM})*)\s?(?P<unit>{_UNIT})"
    r"(?![\w/])(?!\s*(?:per|par)\b)"
    rf"(?P<alt>\s\({_CMP}{_NUM}(?:{_SEP}{_CMP}{_NUM})*\s?(?:{_UNIT})\))?"
)
_NUMBER = re.compile(_NUM)
_WORD_SEP = re.compile(r"\s+(?:to|à)\s+")
# The stored texts end with the rule's id ("Rule hypo_l2." / "Règle hypo_l2.").
_RULE_ID = re.compile(r"\s*(?:Rule|Règle)\s+[a-z][a-z0-9_]*\.?\s*$")


@functools.lru_cache(maxsize=20_000)  # the same alerts are shown again and again
def localize_glucose_text(message: str, unit: str, lang: str) -> str:
    """Restate the glucose values of a stored text in ``unit`` with the language's decimal mark:
    ``below 54 mg/dL (3.0 mmol/L)`` → ``below 3,0 mmol/L``, ``130, 125 mg/dL`` → ``1,30, 1,25 g/L``. Every number
    of a list or range before a glucose unit is converted; a parenthesised restatement in another unit is dropped
    (the value now reads in the reader's unit). Rates (``mg/dL/min``, ``mg/dL per day``), percentages and
    numbers written without a unit are left as they are."""

    def convert(match: re.Match[str]) -> str:
        source = match["unit"]

        def number_of(token: re.Match[str]) -> str:
            mgdl = units.to_mgdl(float(token[0].replace(",", ".")), source)
            return glucose_number(mgdl, unit, lang)

        body = _NUMBER.sub(number_of, match["body"])
        body = _WORD_SEP.sub(" à " if lang == "fr" else " to ", body)
        return f"{body}\u00a0{unit}"

    return _QUANTITY.sub(convert, message)


def render_stored(text: Mapping[str, str], language: str, unit: str | None, *, cite_rule: bool) -> str:
    """A stored text in ``language`` (else English, else any): in ``unit`` unless None (as stored), with its
    rule's id only when ``cite_rule``."""
    chosen = text.get(language) or text.get("en") or next(iter(text.values()), "")
    if not cite_rule:
        chosen = _RULE_ID.sub("", chosen)
    return chosen if unit is None else localize_glucose_text(chosen, unit, language)
