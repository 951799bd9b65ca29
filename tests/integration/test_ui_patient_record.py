"""What the clinician sees of the treatment record, tested by parsing the patient page: the insulin doses beside the
readings in the logbook (sent through the device contract, re-sent, some without a slot), the plan's changes on
the glucose chart, the measurements section with the informational weight-gain flag, and the height and
pre-pregnancy weight set at enrolment, on the patient page and through the hospital API."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from telemon import devices, patients, treatment
from telemon.app.services import Services
from tests.integration.test_ui_clinic import enrol, field_errors, signed_in
from tests.support.clinic import WRITE, auth, clinic_client, last_audit, new_team
from tests.support.clinic import enrol as api_enrol
from tests.support.factories import api_key
from tests.test_ui_toolkit import Node, Team, browser, login, make_clinician, make_team, parse_html, submit

PARIS = ZoneInfo("Europe/Paris")


def _paris_today() -> dt.date:
    return dt.datetime.now(PARIS).date()


def _at(days_ago: int, hour: int, minute: int = 0) -> str:
    day = _paris_today() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS).isoformat()


def _ago(days: float) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat()


async def _patient_with_app(
    db: asyncpg.Pool, team: Team, *, weeks_pregnant: int = 24, **body: float
) -> tuple[uuid.UUID, str]:
    """A patient (Europe/Paris) ``weeks_pregnant`` weeks into her pregnancy today, and her app's token."""
    due = _paris_today() + dt.timedelta(days=patients.PREGNANCY_DAYS - 7 * weeks_pregnant)
    async with db.acquire() as conn:
        record, _ = await patients.create_patient_once(
            conn,
            team_id=team.id,
            external_id=f"IPP-{uuid.uuid4().hex[:8]}",
            display_name="Inès R.",
            time_zone="Europe/Paris",
            due_date=due,
            treatment="insulin",
            **body,  # type: ignore[arg-type]
        )
        app = await devices.add_device(conn, patient_id=record.id, kind="app")
    return record.id, app.token


async def _sync(http: httpx.AsyncClient, token: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    answer = await http.post("/api/v1/readings", json={"readings": items}, headers=auth(token))
    assert answer.status_code == 200, answer.text
    receipt: dict[str, Any] = answer.json()
    return receipt


def _cell(page: Node, days_ago: int, slot: str) -> Node:
    day = (_paris_today() - dt.timedelta(days=days_ago)).isoformat()
    return page.one(f'tr[data-day="{day}"]').one(f'td[data-slot="{slot}"]')


def _yesterday() -> list[dict[str, Any]]:
    """Yesterday as her app sends it: readings, the doses before each meal (two without a slot), the NPH. Made
    when the test runs, not when the module is imported (a run that crosses midnight must not move the day)."""
    return [
    {"measured_at": _at(1, 7, 30), "value": 88, "unit": "mg/dL", "context": "fasting"},
    {"kind": "insulin", "measured_at": _at(1, 7, 45), "units": 6, "insulin": "rapid", "product": "NovoRapid",
     "slot": "breakfast"},
    {"measured_at": _at(1, 9, 45), "value": 112, "unit": "mg/dL", "context": "after_meal", "meal": "breakfast"},
    {"kind": "insulin", "measured_at": _at(1, 12, 15), "units": 4.5, "insulin": "rapid"},  # no slot: by the clock
    {"measured_at": _at(1, 14, 20), "value": 131, "unit": "mg/dL"},  # no context: inferred (after lunch)
    {"kind": "insulin", "measured_at": _at(1, 19, 0), "units": 8, "insulin": "rapid", "slot": "dinner"},
    {"measured_at": _at(1, 21, 0), "value": 104, "unit": "mg/dL", "context": "after_meal", "meal": "dinner"},
    {"kind": "insulin", "measured_at": _at(1, 22, 0), "units": 12, "insulin": "basal", "product": "NPH"},
    ]  # fmt: skip


async def test_the_logbook_shows_each_dose_beside_the_readings_of_its_meal(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, token = await _patient_with_app(db, team)
    async with browser(services) as http:
        day = _yesterday()
        assert (await _sync(http, token, day))["accepted"] == 8
        assert (await _sync(http, token, day))["duplicates"] == 8  # the app re-sends its memory: nothing doubles
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)

    def doses(slot: str) -> list[str]:
        return [d.one("span.u").text() for d in _cell(page, 1, slot).select("span.dose")]

    assert doses("fasting") == []
    assert doses("breakfast") == ["6 U"] and doses("lunch") == ["4.5 U"] and doses("dinner") == ["8 U"]
    assert doses("other") == ["12 U"]  # the evening's basal, sent without a slot, in the night/bedtime column
    breakfast = _cell(page, 1, "breakfast")
    assert breakfast.one("span.dose").get("title") == "NovoRapid 6 U at 07:45"
    assert breakfast.one("span.reading span.v").text() == "112"  # beside the after-breakfast reading
    assert _cell(page, 1, "other").one("span.dose").get("title") == "NPH 12 U at 22:00"
    assert _cell(page, 1, "lunch").one("span.reading span.v").text() == "131"  # inferred after lunch, beside its dose
    assert "rapid insulin" in _cell(page, 1, "lunch").one("span.dose span.visually-hidden").text()
    assert not _cell(page, 0, "other").select("span.dose")  # today: nothing given


async def test_the_glucose_chart_marks_each_change_of_the_plan(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    english, french = await make_clinician(db, team), await make_clinician(db, team, language="fr")
    patient, _ = await _patient_with_app(db, team)
    async with db.acquire() as conn:
        await treatment.new_version(
            conn, patient, treatment.Plan("insulin", basal=treatment.Basal("NPH", 10, "22:00")), actor="test"
        )
        await treatment.new_version(
            conn,
            patient,
            treatment.Plan(
                "insulin",
                basal=treatment.Basal("NPH", 12, "22:00"),
                prandial_product="NovoRapid",
                prandial={"breakfast": 4, "dinner": 6},
            ),
            actor="test",
        )
    async with browser(services) as http:
        await login(http, english)
        chart = parse_html((await http.get(f"/patients/{patient}")).text).one("svg.glucose-chart")
    marks = chart.select("g.plan-changes g.plan-change")
    assert [m.one("title").text() for m in marks] == [
        "plan v1: NPH 10 U",
        "plan v2: NPH 12 U · NovoRapid: Breakfast 4 U, Dinner 6 U",
    ]
    assert all(m.select("line") for m in marks)
    assert "Treatment plan changed: plan v1: NPH 10 U; plan v2" in chart.one("desc").text()  # said, not only drawn
    async with browser(services) as http:
        await login(http, french)
        chart = parse_html((await http.get(f"/patients/{patient}")).text).one("svg.glucose-chart")
    assert chart.select("g.plan-change title")[0].text() == "plan v1 : NPH 10 U"
    # a patient whose plan never changed has no mark
    other, _ = await _patient_with_app(db, team)
    async with browser(services) as http:
        await login(http, english)
        assert not parse_html((await http.get(f"/patients/{other}")).text).select("svg.glucose-chart g.plan-change")


def _weights(kgs: tuple[float, float, float]) -> list[dict[str, Any]]:
    """Weights (kg) at noon, her time, 29, 15 and 1 days ago: 4 and 2 weeks before the latest, whatever the hour the
    test runs (weights are judged by her local day: at a quarter past midnight "an hour ago" is yesterday)."""
    today = dt.datetime.now(PARIS).date()
    return [
        {"kind": "weight", "value": kg, "unit": "kg",
         "measured_at": dt.datetime.combine(today - dt.timedelta(days=days), dt.time(12), PARIS).isoformat()}
        for days, kg in zip((29, 15, 1), kgs, strict=True)
    ]  # fmt: skip


async def test_the_measurements_section_flags_a_gain_too_fast_and_not_one_in_range(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    # both 165 cm and 62 kg before the pregnancy (BMI 22.8, normal: 0.35–0.50 kg/week), 24 weeks pregnant today
    fast, fast_token = await _patient_with_app(db, team, height_cm=165, pre_pregnancy_weight_kg=62)
    steady, steady_token = await _patient_with_app(db, team, height_cm=165, pre_pregnancy_weight_kg=62)
    async with browser(services) as http:
        await _sync(http, fast_token, _weights((66.2, 67.8, 69.4)))  # 0.8 kg/week lately
        await _sync(http, steady_token, _weights((66.2, 67.1, 68.0)))  # 0.45 kg/week
        await _sync(
            http,
            fast_token,
            [
                {"kind": "ketone", "measured_at": _ago(2), "value": 0.4, "unit": "mmol/L"},
                {"kind": "ketone", "measured_at": _ago(1), "urine": "trace"},
                {"kind": "blood_pressure", "measured_at": _ago(20), "systolic": 118, "diastolic": 76, "unit": "mmHg"},
                {
                    "kind": "blood_pressure",
                    "measured_at": _ago(3),
                    "systolic": 128,
                    "diastolic": 82,
                    "pulse": 76,
                    "unit": "mmHg",
                },
                {"kind": "blood_pressure", "measured_at": _ago(1), "systolic": 134, "diastolic": 86, "unit": "mmHg"},
            ],
        )
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{fast}")).text)
        calm = parse_html((await http.get(f"/patients/{steady}")).text)
    section = page.one("section#measurements")
    assert section.one("#latest-ketone").text().startswith("trace (urine)")
    pressures = [r.select("td")[1].text() for r in section.select("table.pressures tbody tr")]
    assert pressures == ["134/86 mmHg", "128/82 mmHg"]  # the last 14 days, newest first
    assert section.one("#weight-gain").text() == "+7.4 kg (before: 62.0 kg)"
    assert section.one("#bmi").text() == "22.8 kg/m² (normal)"
    recommended = section.one("#weight-recommended").text()
    assert recommended.startswith("11.5–16 kg in all; 0.35–0.50 kg/week in the 2nd and 3rd trimesters;")
    flag = section.one("#weight-flag")
    assert flag.get("role") == "note" and "flag-above" in flag.classes
    assert "faster than recommended" in flag.text() and "0.80 kg/week" in flag.text()
    assert "not an alert" in flag.text()
    assert not page.select("#alerts .badge.sev-info")  # information on the page, never an alert
    steady_section = calm.one("section#measurements")
    assert not steady_section.select("#weight-flag")
    assert steady_section.one("#weight-gain").text() == "+6.0 kg (before: 62.0 kg)"
    assert steady_section.one("#weight-rate").text() == "0.45 kg/week over the last 4 weeks"
    assert steady_section.one("#latest-ketone").text() == "None sent."
    weight_alerts = "SELECT count(*) FROM alerts WHERE patient_id = ANY($1::uuid[]) AND rule LIKE '%weight%'"
    assert await db.fetchval(weight_alerts, [fast, steady]) == 0


async def test_the_height_and_pre_pregnancy_weight_from_the_patient_page(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, language="fr", role="midwife")
    patient, token = await _patient_with_app(db, team)
    async with browser(services) as http:
        await _sync(http, token, _weights((66.2, 67.8, 69.4)))
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        assert page.one("#needs-body") and not page.select("#weight-flag")  # no BMI, no judgement
        button = page.one("form#body-form button")
        refused = await submit(http, button, height_cm="16,5", pre_pregnancy_weight_kg="62")
        assert refused.status_code == 422 and "taille (cm) : 16,5" in parse_html(refused.text).one("p.error").text()
        assert (await submit(http, button, height_cm="165", pre_pregnancy_weight_kg="62,0")).status_code == 303
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        assert page.one("input#body-height").get("value") == "165"
        assert "plus rapide que les repères" in page.one("#weight-flag").text()
        assert (await submit(http, page.one("form#body-form button"))).status_code == 303  # unchanged: no audit
        history = page.one("table.history tbody").text()
    assert "taille (cm): — → 165.0" in history
    row = await db.fetchrow("SELECT height_cm, pre_pregnancy_weight_kg FROM patients WHERE id = $1", patient)
    assert (row["height_cm"], row["pre_pregnancy_weight_kg"]) == (165.0, 62.0)
    assert (
        await db.fetchval("SELECT count(*) FROM audit_log WHERE patient_id = $1 AND action = 'patient.update'", patient)
        == 1
    )
    # a nurse sees the section but not the form
    nurse = await make_clinician(db, team, role="nurse")
    async with browser(services) as http:
        await login(http, nurse)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        assert page.one("section#measurements") and not page.select("form#body-form")


async def test_enrolment_takes_the_height_and_pre_pregnancy_weight(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    async with browser(services) as http:
        await signed_in(http, db, team)
        refused = await enrol(http, height_cm="1,65", pre_pregnancy_weight_kg="soixante")
        assert refused.status_code == 422
        errors = field_errors(parse_html(refused.text))
        assert errors["height_cm"] == "Between 120 and 220 cm."
        assert errors["pre_pregnancy_weight_kg"] == "Not a number (for example 5.3 or 95)."
        saved = await enrol(http, height_cm="158", pre_pregnancy_weight_kg="71,5")
        assert saved.status_code == 303
    patient = saved.headers["location"].rsplit("/", 1)[1]
    row = await db.fetchrow("SELECT height_cm, pre_pregnancy_weight_kg FROM patients WHERE id = $1::uuid", patient)
    assert (row["height_cm"], row["pre_pregnancy_weight_kg"]) == (158.0, 71.5)
    missing = await enrol_without_body(services, db, team)
    assert await db.fetchval("SELECT height_cm FROM patients WHERE id = $1::uuid", missing) is None


async def enrol_without_body(services: Services, db: asyncpg.Pool, team: Team) -> str:
    async with browser(services) as http:
        await signed_in(http, db, team)
        saved = await enrol(http)
        assert saved.status_code == 303
    return saved.headers["location"].rsplit("/", 1)[1]


@pytest.fixture
async def api(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with clinic_client(services) as http:
        yield http


async def test_the_hospital_api_enrols_reads_and_patches_the_body(api: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    team = await new_team(db)
    key = await api_key(db, *WRITE, teams=[team])
    patient = await api_enrol(api, key, height_cm=163.5, pre_pregnancy_weight_kg=58)
    assert (patient["height_cm"], patient["pre_pregnancy_weight_kg"]) == (163.5, 58.0)
    url = f"/api/v1/patients/{patient['id']}"
    changed = await api.patch(url, json={"pre_pregnancy_weight_kg": 60.5}, headers=auth(key))
    assert changed.status_code == 200, changed.text
    assert (changed.json()["height_cm"], changed.json()["pre_pregnancy_weight_kg"]) == (163.5, 60.5)
    audit = await last_audit(db, "patient.update", patient["id"])
    assert audit["detail"]["pre_pregnancy_weight_kg"] == [58.0, 60.5]
    for body in ({"height_cm": 16.35}, {"pre_pregnancy_weight_kg": 600}, {"height_cm": "tall"}, {"height_cm": True}):
        refused = await api.patch(url, json=body, headers=auth(key))
        assert refused.status_code == 422, body
        assert refused.json()["detail"][0]["loc"][-1] == next(iter(body)), refused.text
    cleared = await api.patch(url, json={"height_cm": None}, headers=auth(key))
    assert cleared.status_code == 200 and cleared.json()["height_cm"] is None
    assert (await api.get(url, headers=auth(key))).json()["pre_pregnancy_weight_kg"] == 60.5
    # a repeat of the enrolment that says another weight is a conflict, as for any other field
    again = await api.post(
        "/api/v1/patients",
        json={"external_id": patient["external_id"], "name": patient["name"], "timezone": patient["timezone"],
              "due_date": patient["due_date"], "pre_pregnancy_weight_kg": 70},
        headers=auth(key),
    )  # fmt: skip
    assert again.status_code == 409 and "pre_pregnancy_weight_kg" in again.json()["detail"]
