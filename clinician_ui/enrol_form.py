"""The enrolment form read as people fill it in: dates as the browser's date field sends them or as typed in French
(14/03/2027), numbers with a decimal point or a decimal comma, the due date or the last period. Every field's
problem is collected (not only the first), each with a text key and its values, so that the form comes back with
every error beside its field. The rules on the pregnancy's dates are the core's (``telemon.patients``), which the
hospital API applies too."""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from alerts.profiles import LONGEST_POSTPARTUM
from telemon import patients, teams, units, weight_gain
from telemon.settings import SettingsError

LANGUAGES = ("fr", "en")
# The longest postpartum glucose test window of the guideline profiles: a due date further past has nothing left
# to follow (the hospital API refuses the same).
MAX_LENGTH = {"display_name": 200, "external_id": 64, "note": 4000, "time_zone": 64, "email": 254}
# Each field's label, which the error summary at the top of the form names.
FIELD_LABELS = {
    name: f"enrol.{name}"
    for name in (
        "team_id",
        "display_name",
        "external_id",
        "birth_year",
        "due_date",
        "last_period",
        "diagnosis_date",
        "ogtt_unit",
        "ogtt_fasting",
        "ogtt_1h",
        "ogtt_2h",
        "height_cm",
        "pre_pregnancy_weight_kg",
        "profile",
        "treatment",
        "readings_per_day",
        "time_zone",
        "language",
        "email",
        "note",
    )
}
OLDEST_BIRTH_YEAR = 1950
YOUNGEST_AGE = 10  # years: a pregnancy before is not followed here; the form refuses it as a typing error
# A number as people type it: a decimal point or a decimal comma (French), at most 3 decimals.
DECIMAL_TEXT = re.compile(r"[0-9]{1,4}(?:[.,][0-9]{1,3})?")
FRENCH_DATE = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")


@dataclass(frozen=True)
class FieldProblem:
    key: str  # a text key (clinician_ui.texts_clinic)
    values: dict[str, object] = field(default_factory=dict)


@dataclass
class Enrolment:
    """What the form gave, once every field is valid."""

    team_id: uuid.UUID
    display_name: str
    external_id: str
    due_date: dt.date
    diagnosis_date: dt.date | None
    time_zone: str
    profile: str
    treatment: str
    readings_per_day: int
    details: patients.EnrolmentDetails
    note: str
    height_cm: float | None = None
    pre_pregnancy_weight_kg: float | None = None


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _has_control(text: str, allowed: str = "") -> bool:
    """NUL, other control characters and lone surrogates: never in a name or a number (a note keeps its lines)."""
    return any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in text)


def parse_date(text: str) -> dt.date | None:
    """``2027-03-14`` (a date field) or ``14/03/2027`` (typed, day first); None when it is no date."""
    found = FRENCH_DATE.fullmatch(text)
    try:
        if found:
            return dt.date(int(found[3]), int(found[2]), int(found[1]))
        return dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def parse_decimal(text: str) -> Decimal | None:
    """A number typed with a point or a comma (spaces ignored); None when it is no such number."""
    text = text.replace(" ", "").replace("\u202f", "").replace("\u00a0", "")
    if not DECIMAL_TEXT.fullmatch(text):
        return None
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        return None


class _Reader:
    """Reads the form's fields one by one, keeping each field's problem."""

    def __init__(self, form: Mapping[str, Any]) -> None:
        self.form = form
        self.errors: dict[str, FieldProblem] = {}

    def fail(self, name: str, key: str, **values: object) -> None:
        self.errors.setdefault(name, FieldProblem(key, values))

    def text(self, name: str, *, required: bool, allowed: str = "") -> str:
        value = _text(self.form, name)
        if _has_control(value, allowed):
            self.fail(name, "field_error.control")
        elif len(value) > MAX_LENGTH[name]:
            self.fail(name, "field_error.too_long", n=MAX_LENGTH[name])
        elif required and not value:
            self.fail(name, "field_error.required")
        return value

    def date(self, name: str) -> dt.date | None:
        value = _text(self.form, name)
        if not value:
            return None
        day = parse_date(value)
        if day is None:
            self.fail(name, "field_error.date")
        return day

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = _text(self.form, name)
        if value not in choices:
            self.fail(name, "field_error.choice")
        return value

    def glucose(self, name: str, unit: str) -> float | None:
        value = _text(self.form, name)
        if not value or unit not in units.UNITS:
            return None
        typed = parse_decimal(value)
        if typed is None:
            self.fail(name, "field_error.number")
            return None
        mgdl = units.exact_mgdl(float(typed), unit)
        low, high = units.PLAUSIBLE_MGDL
        if not math.isfinite(mgdl) or not low <= mgdl <= high:
            shown = [round(units.from_mgdl(v, unit), units.DIGITS[unit]) for v in (low, high)]
            self.fail(name, "field_error.glucose_range", low=shown[0], high=shown[1], unit=unit)
            return None
        return mgdl

    def body(self, name: str, bounds: tuple[float, float], unit: str) -> float | None:
        """A height or pre-pregnancy weight (optional) within its plausible range (telemon.weight_gain)."""
        value = _text(self.form, name)
        if not value:
            return None
        typed = parse_decimal(value)
        if typed is None:
            self.fail(name, "field_error.number")
            return None
        low, high = bounds
        if not low <= float(typed) <= high:
            self.fail(name, "field_error.body_range", low=f"{low:g}", high=f"{high:g}", unit=unit)
            return None
        return float(typed)


def read_enrolment(
    form: Mapping[str, Any], *, team_ids: tuple[uuid.UUID, ...], today: dt.date
) -> tuple[Enrolment | None, dict[str, FieldProblem]]:
    """The enrolment the form asks for, or None with every field's problem (by field name)."""
    r = _Reader(form)
    team_text = _text(form, "team_id")
    team_id = next((t for t in team_ids if str(t) == team_text), team_ids[0] if len(team_ids) == 1 else None)
    if team_id is None:
        r.fail("team_id", "field_error.choice")
    display_name = r.text("display_name", required=True)
    external_id = r.text("external_id", required=True)
    birth_year = None
    year_text = _text(form, "birth_year")
    if year_text:
        youngest = today.year - YOUNGEST_AGE
        if year_text.isascii() and year_text.isdigit() and OLDEST_BIRTH_YEAR <= int(year_text) <= youngest:
            birth_year = int(year_text)
        else:
            r.fail("birth_year", "field_error.birth_year", low=OLDEST_BIRTH_YEAR, high=youngest)
    time_zone = r.text("time_zone", required=True)
    if time_zone and "time_zone" not in r.errors:
        try:
            patients.check_time_zone(time_zone)
        except SettingsError:
            r.fail("time_zone", "field_error.time_zone")
    due_date, last_period = r.date("due_date"), r.date("last_period")
    if last_period is not None:
        from_period = patients.due_date_from_lmp(last_period)
        if due_date is not None and due_date != from_period:
            r.fail("last_period", "field_error.dating_conflict", due=from_period.isoformat())
        due_date = from_period
    elif due_date is None and not {"due_date", "last_period"} & set(r.errors):
        r.fail("due_date", "field_error.dating_missing")
    diagnosis = r.date("diagnosis_date")
    if due_date is not None and "time_zone" not in r.errors:
        dated = "last_period" if last_period is not None else "due_date"
        try:
            patients.check_due_date(due_date, time_zone, postpartum_days=LONGEST_POSTPARTUM.postpartum_end_days)
            patients.check_diagnosis_date(diagnosis, due_date, time_zone)
        except patients.FieldError as exc:
            r.fail(exc.field if exc.field == "diagnosis_date" else dated, "field_error." + exc.code, **exc.params)
    profile = r.choice("profile", patients.PROFILES)
    treatment = r.choice("treatment", patients.TREATMENTS)
    per_day_text = _text(form, "readings_per_day")
    per_day = int(per_day_text) if per_day_text.isascii() and per_day_text.isdigit() else 0
    if not 1 <= per_day <= 12:
        r.fail("readings_per_day", "field_error.readings_per_day")
    language = r.choice("language", LANGUAGES)
    email = r.text("email", required=False) or None
    if email is not None and "email" not in r.errors:
        try:
            email = teams.check_email(email)
        except SettingsError:
            r.fail("email", "field_error.email")
    unit = r.choice("ogtt_unit", units.UNITS)
    ogtt_values = [r.glucose(name, unit) for name in ("ogtt_fasting", "ogtt_1h", "ogtt_2h")]
    note = r.text("note", required=False, allowed="\n\r\t")
    height_cm = r.body("height_cm", weight_gain.HEIGHT_CM, "cm")
    pre_pregnancy_weight_kg = r.body("pre_pregnancy_weight_kg", weight_gain.PRE_PREGNANCY_WEIGHT_KG, "kg")
    if r.errors or team_id is None or due_date is None:
        return None, r.errors
    ogtt = patients.Ogtt(unit, *ogtt_values) if any(v is not None for v in ogtt_values) else None
    return (
        Enrolment(
            team_id=team_id,
            display_name=display_name,
            external_id=external_id,
            due_date=due_date,
            diagnosis_date=diagnosis,
            time_zone=time_zone,
            profile=profile,
            treatment=treatment,
            readings_per_day=per_day,
            details=patients.EnrolmentDetails(birth_year, language, ogtt, email),
            note=note,
            height_cm=height_cm,
            pre_pregnancy_weight_kg=pre_pregnancy_weight_kg,
        ),
        {},
    )
