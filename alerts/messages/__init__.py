"""Alert messages, rendered where they are read: ``render(code, params, language, unit)``.

The engine stores facts, never text: an alert carries a message ``code`` (its rule's name, or ``rule.variant``
where the wording differs) and ``params``: glucose values in mg/dL (``*_mgdl``), instants in UTC ISO 8601 (``*_at``)
beside the wall-clock time the patient lived them (``*_local``, her time zone), dates, counts, percentages and the
thresholds with their ``source``. Each language has one catalogue module (:mod:`alerts.messages.en`,
:mod:`alerts.messages.fr`) holding a text per code; adding a language is adding a catalogue and listing it in
:data:`alerts.messages.numbers.CATALOGUES`. Glucose values are written in the reader's unit with that unit's
decimals (:data:`telemon.units.DIGITS`).

Alerts stored before codes existed keep their stored text (:mod:`alerts.messages.legacy`), which ``render`` uses
when it is given no code.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from alerts import profiles
from alerts.messages.legacy import render_stored
from alerts.messages.numbers import CATALOGUES, LANGUAGES, decimal, glucose, glucose_number, number
from telemon import units

# Every message code the rules use (a rule's name, or rule.variant).
CODES: tuple[str, ...] = (
    "hypo_l2",
    "hypo_l1",
    "hypo_insulin_floor",
    "fasting_severe",
    "fasting_severe.unconfirmed",
    "ketone_check",
    "fasting_above_target",
    "postprandial_above_target",
    "consecutive_above_target.fasting",
    "consecutive_above_target.after_meal",
    "pattern_above_target",
    "fasting_pattern",
    "fasting_trend_rising",
    "low_adherence",
    "no_data",
    "cgm_stale",
    "cgm_predicted_low",
    "cgm_rapid_fall",
    "cgm_range_review",
    "postpartum_test_due",
    "ketones_high.blood",
    "ketones_high.urine",
    "blood_pressure_high",
    "blood_pressure_high.severe",
    "dose_review.increase",
    "dose_review.reduction",
    "treatment_review",
    "doses_missing",
)

_LABELS = {p.code: p.label for p in profiles.PROFILES.values()}

__all__ = ["CODES", "LANGUAGES", "language_of", "render", "rule_of"]


def rule_of(code: str) -> str:
    """The rule a message code belongs to."""
    return code.partition(".")[0]


def language_of(accept_language: str | None) -> str:
    """The first language of an ``Accept-Language`` header that has a catalogue (by quality), else English."""
    if not accept_language:
        return "en"
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, rest = part.strip().partition(";")
        quality = 1.0
        if rest.strip().startswith("q="):
            try:
                quality = float(rest.strip()[2:])
            except ValueError:
                quality = 0.0
        ranked.append((-quality, position, tag.strip().lower().split("-")[0]))
    for quality, _, language in sorted(ranked):
        if quality < 0 and language in CATALOGUES:
            return language
    return "en"


class _Filler(string.Formatter):
    """Fills a catalogue text with params written for one reader: ``{name:kind}`` (kinds: see the English
    catalogue's docstring)."""

    def __init__(self, language: str, unit: str) -> None:
        super().__init__()
        self.language = language
        self.unit = unit
        self.texts: Mapping[str, str] = _catalogue(language).TEXTS

    def _date(self, iso: str) -> str:
        """``2024-06-07`` as a person writes it: 7 Jun 2024, 7 juin 2024."""
        year, month, day = iso.split("-")
        return f"{int(day)} {_catalogue(self.language).MONTHS[int(month) - 1]} {year}"

    def _g(self, value: float) -> str:
        return glucose_number(_as_written(value), self.unit, self.language)

    def format_field(self, value: Any, format_spec: str) -> str:
        kind, _, arg = format_spec.partition(":")
        if kind == "":
            return str(value)
        if kind == "glucose":
            return f"{self._g(value)}\u00a0{self.unit}"
        if kind == "gnum":
            return self._g(value)
        if kind == "glucose0":
            return f"{self._g(value[0])}\u00a0{self.unit}"
        if kind == "glucose_list":
            return f"{', '.join(self._g(v) for v in value)}\u00a0{self.unit}"
        if kind == "lt_glucose_list":
            return f"{', '.join('< ' + self._g(v) for v in value)}\u00a0{self.unit}"
        if kind in ("num0", "num1"):
            return decimal(value, int(kind[-1]), self.language)
        if kind == "minus0":
            return f"−{abs(value):.0f}" if value < 0 else f"{value:.0f}"
        if kind == "int":
            return str(int(value))
        if kind == "ints":
            return ", ".join(str(int(v)) for v in value)
        if kind == "hm":
            return str(value)[-5:]
        if kind == "date":
            return self._date(str(value)[:10])
        if kind == "when":
            text = str(value)
            return self.texts["when"].format(date=self._date(text[:10]), time=text[11:16])
        if kind == "label":
            return _LABELS.get(value, str(value))
        if kind == "term":
            return self.texts.get(f"{arg}.{value}", str(value))
        if kind == "terms":
            return ", ".join(self.texts.get(f"{arg}.{v}", str(v)) for v in value)
        if kind == "list":
            return ", ".join(self.vformat(self.texts[arg], (), item) for item in value)
        raise ValueError(f"unknown placeholder kind {kind!r}")


def _catalogue(language: str) -> ModuleType:
    return CATALOGUES.get(language) or CATALOGUES["en"]


def _as_written(value: float) -> float:
    """A glucose value as a message states it before any unit: whole when it nearly is, else one decimal
    (95.5 mg/dL for 5.3 mmol/L). Values are converted to the reader's unit from this."""
    whole = round(value)
    return float(whole) if abs(value - whole) < 0.05 else float(f"{value:.1f}")


def render(
    code: str | None,
    params: Mapping[str, Any] | None,
    language: str,
    unit: str = units.MGDL,
    *,
    fallback: Mapping[str, str] | None = None,
    cite_rule: bool = False,
) -> str:
    """The message ``code`` with ``params`` in ``language`` (else English) and glucose ``unit``; ``cite_rule``
    adds the rule's id ("Rule hypo_l2."), as the API's texts do. Without a code (an alert stored before codes
    existed), the stored text ``fallback`` restated in ``unit``."""
    if unit not in units.UNITS:
        raise ValueError(f"unknown unit {unit!r}")
    if code is None or params is None:
        if not fallback:
            return ""
        return render_stored(fallback, language, unit, cite_rule=cite_rule)
    filler = _Filler(language, unit)
    texts = filler.texts
    key = code
    if params.get("count") == 1 and f"{code}#one" in texts:
        key = f"{code}#one"
    template = texts.get(key)
    if template is None:
        raise KeyError(f"no text for the message code {code!r}")
    text = filler.vformat(template, (), params)
    if cite_rule:
        text = f"{text} {filler.vformat(texts['rule.cite'], (), {'rule': rule_of(code)})}"
    return text


def fact_label(key: str, language: str) -> str:
    """The label of an evidence fact (:mod:`alerts.evidence`) in ``language``; a fact without one is named by its
    key."""
    return _catalogue(language).TEXTS.get(f"fact.{key}") or key.replace("_", " ")


def render_all(
    code: str | None,
    params: Mapping[str, Any] | None,
    unit: str = units.MGDL,
    *,
    fallback: Mapping[str, str] | None = None,
    cite_rule: bool = False,
    languages: Sequence[str] = LANGUAGES,
) -> dict[str, str]:
    """The message in every language, ``{"en": ..., "fr": ...}``."""
    return {lang: render(code, params, lang, unit, fallback=fallback, cite_rule=cite_rule) for lang in languages}


__all__ += ["fact_label", "glucose", "glucose_number", "number", "render_all"]
