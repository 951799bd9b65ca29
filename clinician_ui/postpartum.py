"""The postpartum glucose test on the dashboard: on the patient page once the delivery is recorded, the tests recorded
(the current one with its classification and follow-up), the form to record one, and the offer to end the monitoring
once a test is there (the devices page's archive action).

Tests go through ``telemon.postpartum``, the same record function as the hospital API, so both check, classify and
audit one way. A refused form comes back on a page of its own with what was typed and each field's problem beside it,
in the clinician's language; nothing is written."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from alerts import profiles
from clinician_ui import queries, sessions, web
from clinician_ui.enrol import CLINIC_ROLES
from clinician_ui.enrol_form import FieldProblem, parse_date, parse_decimal
from clinician_ui.i18n import Formatter
from clinician_ui.sessions import Clinician
from telemon import postpartum, record_queries, units
from telemon.db import Conn

router = APIRouter(include_in_schema=False)

FORM_FIELDS = ("test", "date", "unit", "fasting", "two_hour", "hba1c", "hba1c_unit")
HBA1C_UNITS = (postpartum.PERCENT, postpartum.MMOL_MOL)
# The core's field names and the form's: the form has one HbA1c field and a unit beside it.
FORM_FIELD_OF = {"hba1c_percent": "hba1c", "hba1c_mmol_mol": "hba1c"}


@dataclass(frozen=True)
class TestView:
    """One recorded test as the page shows it: its values as entered, in words."""

    test: postpartum.StoredTest
    values: list[str]
    who: str
    timing: str  # how long after the birth
    early: str | None  # said when the test came before the profile's window


@dataclass(frozen=True)
class Section:
    tests: list[TestView]  # newest first
    expected: str  # the profile's postpartum test, in words
    can_record: bool
    can_archive: bool


def _entered(value: Decimal, unit: str, lang: str) -> str:
    """A value as it was entered, with its unit ("5.2 mmol/L", "5,2 mmol/L" in French)."""
    text = format(value, "f")
    return f"{text.replace('.', ',') if lang == 'fr' else text}\u00a0{unit}"


def values_in_words(test: postpartum.StoredTest, fmt: Formatter) -> list[str]:
    """The values as entered; a glucose value entered in another unit than the clinician's is also shown in hers."""
    words: list[str] = []
    for name, value, mgdl in (("fasting", test.fasting, test.fasting_mgdl), ("two_hour", test.two_hour,
                                                                             test.two_hour_mgdl)):  # fmt: skip
        if value is None or test.unit is None or mgdl is None:
            continue
        shown = _entered(value, test.unit, fmt.lang)
        if test.unit != fmt.unit:
            shown += f" ({fmt.g(mgdl)})"
        words.append(fmt.t(f"postpartum.value.{name}", value=shown))
    for unit, value in ((postpartum.PERCENT, test.hba1c_percent), (postpartum.MMOL_MOL, test.hba1c_mmol_mol)):
        if value is not None:
            words.append(fmt.t("postpartum.value.hba1c", value=_entered(value, unit, fmt.lang)))
    return words


def empty_form(who: Clinician, profile: str, today: dt.date) -> dict[str, str]:
    """The form as first shown: the profile's own test, the clinician's unit, today."""
    test = postpartum.CRITERIA[profile].preferred_test if profile in postpartum.CRITERIA else "ogtt_75g"
    return {name: "" for name in FORM_FIELDS} | {
        "test": test,
        "unit": who.unit,
        "date": today.isoformat(),
        "hba1c_unit": postpartum.PERCENT,
    }


async def section(db: Conn, who: Clinician, p: asyncpg.Record, today: dt.date) -> dict[str, Any]:
    """What the patient page adds for the postpartum step (nothing before the delivery)."""
    if p["delivery_date"] is None:
        return {"postpartum": None}
    found = await postpartum.tests_of(db, p["id"])
    names = await _names(db, [t.recorded_by for t in found])
    fmt = web.formatter(who)
    profile = next((pr for pr in profiles.PROFILES.values() if pr.code == p["profile"]), None)

    def view(t: postpartum.StoredTest) -> TestView:
        weeks, days = divmod((t.tested_on - p["delivery_date"]).days, 7)
        early = None
        if profile is not None and (t.tested_on - p["delivery_date"]).days < profile.postpartum_start_days:
            start, end = profile.postpartum_start_days // 7, profile.postpartum_end_days // 7
            early = fmt.t("postpartum.timing.early", start=start, end=end)
        timing = fmt.t("postpartum.timing", weeks=weeks, days=days)
        return TestView(t, values_in_words(t, fmt), names.get(t.recorded_by, t.recorded_by), timing, early)

    expected = (
        "" if profile is None else (profile.postpartum_test_fr if who.language == "fr" else profile.postpartum_test_en)
    )
    active = p["archived_at"] is None and who.role in CLINIC_ROLES
    return {
        "postpartum": Section(
            tests=[view(t) for t in found],
            expected=expected,
            can_record=active,
            can_archive=active and bool(found),
        ),
        "postpartum_values": empty_form(who, p["profile"], today),
        "postpartum_errors": {},
        "hba1c_units": HBA1C_UNITS,
        "postpartum_tests": postpartum.TESTS,
        "glucose_units": units.UNITS,
    }


async def _names(db: Conn, actors: list[str]) -> dict[str, str]:
    ids = []
    for actor in actors:
        try:
            ids.append(uuid.UUID(actor.removeprefix("clinician:")))
        except ValueError:
            continue
    rows = await db.fetch(queries.CLINICIAN_NAMES, ids) if ids else []
    return {f"clinician:{r['id']}": r["display_name"] for r in rows}


def entry_of_form(form: Mapping[str, Any]) -> tuple[postpartum.Entry, dict[str, FieldProblem]]:
    """The entry a form asks for, and the problems of what is no number or no date (the core judges the rest)."""
    problems: dict[str, FieldProblem] = {}

    def number(name: str) -> Decimal | None:
        text = web.field(form, name)
        if not text:
            return None
        value = parse_decimal(text)
        if value is None:
            problems[name] = FieldProblem("postpartum.error.number")
        return value

    date_text = web.field(form, "date")
    tested_on = parse_date(date_text) if date_text else None
    if date_text and tested_on is None:
        problems["date"] = FieldProblem("postpartum.error.date")
    test = web.field(form, "test")
    glucose_unit = web.field(form, "unit")
    hba1c = number("hba1c")
    hba1c_unit = web.field(form, "hba1c_unit")
    if hba1c is not None and hba1c_unit not in HBA1C_UNITS:
        problems["hba1c_unit"] = FieldProblem("postpartum.error.hba1c_unit")
    # every value typed goes to the core, which refuses one the test is not made of (a fasting value left in the
    # form when the test became an HbA1c): a value typed is never dropped silently
    entry = postpartum.Entry(
        test=test,
        unit=glucose_unit if glucose_unit in units.UNITS else None,
        fasting=number("fasting"),
        two_hour=number("two_hour"),
        hba1c_percent=hba1c if hba1c_unit == postpartum.PERCENT else None,
        hba1c_mmol_mol=hba1c if hba1c_unit == postpartum.MMOL_MOL else None,
        tested_on=tested_on,
    )
    return entry, problems


def problems_of(refused: postpartum.TestRefused, fmt: Formatter) -> dict[str, FieldProblem]:
    """The core's refusals as the form's field problems (text key and values, numbers and dates written in the
    clinician's language)."""
    found: dict[str, FieldProblem] = {}
    for problem in refused.problems:
        name = FORM_FIELD_OF.get(problem.field, problem.field)
        key = "postpartum.error." + problem.code.removeprefix("postpartum.")
        values = dict(problem.params)
        unit = str(values.get("unit", ""))
        for bound in ("low", "high"):
            number = values.get(bound)
            if isinstance(number, int | float | Decimal):
                values[bound] = fmt.num(float(number), units.DIGITS.get(unit, 0))
        if isinstance(values.get("delivery"), str):
            values["delivery"] = fmt.date(dt.date.fromisoformat(str(values["delivery"])))
        found.setdefault(name, FieldProblem(key, values))
    return found


async def _patient(db: Conn, who: Clinician, patient_id: uuid.UUID) -> asyncpg.Record:
    row: asyncpg.Record | None = await db.fetchrow(record_queries.PATIENT, patient_id, list(who.team_ids))
    if row is None:
        raise web.PageError(404, "error.not_found")
    return row


@router.post("/patients/{patient_id}/postpartum-test", response_model=None)
async def record_test(patient_id: uuid.UUID, request: Request, who: Clinician = Depends(web.clinician)) -> Response:
    form = await web.form_of(request, who)
    pid = patient_id
    values = {name: web.field(form, name) for name in FORM_FIELDS}
    async with web.connection(request) as db:
        p = await _patient(db, who, pid)
        if who.role not in CLINIC_ROLES:
            raise web.PageError(403, "error.forbidden")
        if p["archived_at"] is not None:
            raise web.PageError(409, "error.archived")
        if p["delivery_date"] is None:
            raise web.PageError(409, "postpartum.error.not_delivered")
        entry, problems = entry_of_form(form)
        fmt = web.formatter(who)
        try:  # every field's problem at once: the core's, and the form's own (no number, no date) over them
            today = dt.datetime.now(ZoneInfo(p["time_zone"])).date()
            postpartum.check(entry, delivery_date=p["delivery_date"], today=today)
        except postpartum.TestRefused as refused:
            problems = problems_of(refused, fmt) | problems
        if not problems:
            try:
                await postpartum.record(db, pid, entry, actor=who.actor)
            except postpartum.TestRefused as refused:
                problems = problems_of(refused, fmt)
            except postpartum.RecordRefused as exc:
                key = "postpartum.error.not_delivered" if exc.reason == "not_delivered" else "error.archived"
                raise web.PageError(409, key) from None
        if problems:
            return await _form_page(request, db, who, p, values, problems)
    await sessions.flash(web.pool(request), who, "postpartum.saved")
    return web.redirect(f"/patients/{pid}#postpartum")


async def _form_page(
    request: Request,
    db: Conn,
    who: Clinician,
    p: asyncpg.Record,
    values: dict[str, str],
    problems: dict[str, FieldProblem],
) -> HTMLResponse:
    today = dt.datetime.now(ZoneInfo(p["time_zone"])).date()
    context = await section(db, who, p, today)
    context |= {"p": p, "postpartum_values": values, "postpartum_errors": problems, "today": today}
    return web.render(request, "postpartum.html", context, who=who, status_code=422)
