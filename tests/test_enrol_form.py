"""The enrolment form's reading of what people type, and its words: every label and every reason a field can be
refused for (the core's date rules included) has a text in both languages."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import pytest

from clinician_ui import devices, enrol_form, i18n
from clinician_ui.enrol_form import parse_date, parse_decimal

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("typed", "read"),
    [("5,3", Decimal("5.3")), ("5.3", Decimal("5.3")), (" 95 ", Decimal("95")), ("0,92", Decimal("0.92"))],
)
def test_numbers_with_a_decimal_point_or_comma(typed: str, read: Decimal) -> None:
    assert parse_decimal(typed) == read


@pytest.mark.parametrize("typed", ["", "5.3.1", "cinq", "-5", "1e3", "5,", "٥", "12345"])
def test_what_is_not_a_number(typed: str) -> None:
    assert parse_decimal(typed) is None


def test_dates_from_the_date_field_or_typed_day_first() -> None:
    assert parse_date("2027-03-14") == parse_date("14/03/2027") == dt.date(2027, 3, 14)
    assert parse_date("4/3/2027") == dt.date(2027, 3, 4)
    for typed in ("31/02/2027", "2027-02-31", "03/14/2027", "2027-3-4x", "tomorrow"):
        assert parse_date(typed) is None, typed


def test_every_label_and_refusal_has_words_in_both_languages() -> None:
    keys = set(enrol_form.FIELD_LABELS.values()) | set(devices.KIND_LABELS.values())
    sources = (ROOT / "telemon" / "patients.py").read_text() + (ROOT / "clinician_ui" / "enrol_form.py").read_text()
    keys |= {"field_error." + code for code in re.findall(r'"((?:due_date|diagnosis_date)\.[a-z_]+)"', sources)}
    keys |= set(re.findall(r'"(field_error\.[a-z_.]+)"', sources))
    assert len(keys) > 25
    assert sorted(k for k in keys if k not in i18n.TEXTS) == []
