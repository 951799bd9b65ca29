"""The postpartum test on the dashboard, tested by parsing the HTML: no section before the delivery; after it, the
form (the profile's test, the clinician's unit, today) records a test with French decimal commas, the result shows
its classification and follow-up and offers to end the monitoring; a refused form names every field in the
clinician's language and keeps what was typed; CSRF, roles, other teams and archived patients are refused."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from telemon import patients
from telemon.app.services import Services
from tests.test_ui_toolkit import (
    Team,
    browser,
    csrf_of,
    login,
    make_clinician,
    make_patient,
    make_team,
    parse_html,
    submit,
)

PARIS = ZoneInfo("Europe/Paris")  # the patients' time zone (make_patient)


async def _signed_in(
    http: httpx.AsyncClient, db: asyncpg.Pool, team: Team, *, role: str = "midwife", language: str = "en",
    unit: str = "mg/dL",
) -> None:  # fmt: skip
    email = await make_clinician(db, team, role=role, language=language, unit=unit)
    assert (await login(http, email)).status_code == 303


async def _deliver(db: asyncpg.Pool, patient: uuid.UUID, days_ago: int = 50) -> dt.date:
    day = dt.datetime.now(PARIS).date() - dt.timedelta(days=days_ago)
    async with db.acquire() as conn:
        await patients.record_delivery(conn, patient, day, actor="cli")
    return day


async def _tests(db: asyncpg.Pool, patient: uuid.UUID) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT test, unit, fasting_entered, two_hour_entered, classification, recorded_by FROM postpartum_tests"
        " WHERE patient_id = $1 ORDER BY id",
        patient,
    )


async def test_a_midwife_records_the_test_and_is_offered_to_end_monitoring(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    patient, _ = await make_patient(db, team, profile="NICE")
    async with browser(services) as http:
        await _signed_in(http, db, team, language="fr", unit="mmol/L")
        before = parse_html((await http.get(f"/patients/{patient}")).text)
        assert not before.select("#postpartum")
        await _deliver(db, patient)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        section = page.one("#postpartum")
        assert "glycémie à jeun" in section.text()  # NICE's test, expected
        assert section.select("p.empty")
        assert not section.select("#postpartum-end")
        # the form starts from the profile's test, the clinician's unit and today
        assert page.one("#pp-test option[selected]").get("value") == "fasting_glucose"
        assert page.one("#pp-unit option[selected]").get("value") == "mmol/L"
        assert page.one("#pp-date").get("value") == dt.datetime.now(PARIS).date().isoformat()
        assert page.one('label[for="pp-fasting"]').text() == "Glycémie à jeun"
        answer = await submit(http, page.one(".postpartum-form button"), test="ogtt_75g", fasting="5,2",
                              two_hour="8,9")  # fmt: skip
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"/patients/{patient}#postpartum"
        shown = parse_html((await http.get(f"/patients/{patient}")).text)
        result = shown.one("#postpartum-current")
        assert result.get("data-classification") == "impaired_glucose_tolerance"
        assert result.one(".postpartum-classification").text() == "Intolérance au glucose"
        assert result.one(".postpartum-timing").text() == "(7 sem. + 1 j après la naissance)"
        assert not result.select(".postpartum-early")  # NICE: 6 to 13 weeks
        assert result.one(".postpartum-values").text() == "à jeun 5,2 mmol/L · 2 h 8,9 mmol/L"
        codes = [li.get("data-follow-up") for li in result.select(".postpartum-follow-up li")]
        assert codes == ["prevention_programme", "retest_annual"]
        assert shown.one("p.flash").text() == "Test du post-partum enregistré."
        end = shown.one("#postpartum-end form")
        assert end.get("action") == f"/patients/{patient}/archive"
        assert end.one("button").text() == "Terminer la surveillance"
        # the change history names it
        assert any("test du post-partum" in td.text() for td in shown.select("#history td"))
        # ending the monitoring from there archives her (the devices page's action)
        archived = await submit(http, end.one("button"))
        assert archived.status_code == 303
        after = parse_html((await http.get(f"/patients/{patient}")).text)
        assert not after.select("#postpartum-end") and not after.select(".postpartum-form")
        assert after.one("#postpartum-current").get("data-classification") == "impaired_glucose_tolerance"
    assert await db.fetchval("SELECT archived_at IS NOT NULL FROM patients WHERE id = $1", patient)
    rows = await _tests(db, patient)
    assert [(r["test"], r["unit"], str(r["fasting_entered"]), str(r["two_hour_entered"])) for r in rows] == [
        ("ogtt_75g", "mmol/L", "5.2", "8.9")
    ]
    assert rows[0]["recorded_by"].startswith("clinician:")
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE patient_id = $1 AND action = 'postpartum.test'", patient
        )
        == 1
    )


async def test_a_refused_form_names_every_field_and_keeps_what_was_typed(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    patient, _ = await make_patient(db, team, profile="ADA")
    delivered = await _deliver(db, patient)
    async with browser(services) as http:
        await _signed_in(http, db, team)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        button = page.one(".postpartum-form button")
        answer = await submit(http, button, test="ogtt_75g", fasting="9", two_hour="abc",
                              date=(delivered - dt.timedelta(days=2)).isoformat())  # fmt: skip
        assert answer.status_code == 422, answer.text
        refused = parse_html(answer.text)
        errors = {e.get("data-field"): e.text() for e in refused.select(".field-error")}
        assert set(errors) == {"fasting", "two_hour", "date"}  # every field at once
        assert errors["fasting"] == "Fasting glucose: a plausible result is 10 to 600 mg/dL."
        assert errors["two_hour"] == "Glucose at 2 hours: enter a number (at most 3 decimals)."
        assert "follows the delivery" in errors["date"]
        assert {a.get("href") for a in refused.select("#error-summary a")} == {
            "#pp-fasting",
            "#pp-two_hour",
            "#pp-date",
        }
        assert refused.one('[name="two_hour"]').get("value") == "abc"
        assert refused.one("#pp-two_hour").get("aria-describedby") == "pp-e-two_hour"
        again = await submit(http, refused.one(".postpartum-form button"), fasting="95", two_hour="", hba1c="5,9")
        errors = {e.get("data-field"): e.text() for e in parse_html(again.text).select(".field-error")}
        assert set(errors) == {"two_hour", "hba1c", "date"}
        assert errors["two_hour"] == "Glucose at 2 hours: needed for this test."
        assert errors["hba1c"] == "HbA1c: not part of this test; leave it empty."
        hba1c = await submit(http, button, test="hba1c", hba1c="48", hba1c_unit="%")
        assert hba1c.status_code == 422
        message = parse_html(hba1c.text).one('.field-error[data-field="hba1c"]').text()
        assert message == "HbA1c: a plausible result is 3 to 20 %."
        # the same HbA1c in mmol/mol is a result (ADA: 48 mmol/mol, diabetes), here ten days after the birth
        early = (delivered + dt.timedelta(days=10)).isoformat()
        recorded = await submit(http, button, test="hba1c", hba1c="48", hba1c_unit="mmol/mol", date=early)
        assert recorded.status_code == 303
        result = parse_html((await http.get(f"/patients/{patient}")).text).one("#postpartum-current")
        assert result.one(".postpartum-classification").text() == "Diabetes"
        assert result.one(".postpartum-values").text() == "HbA1c 48 mmol/mol"
        assert "earlier than her profile's window (4 to 12 weeks" in result.one(".postpartum-early").text()
    assert [r["classification"] for r in await _tests(db, patient)] == ["diabetes"]


async def test_csrf_roles_other_teams_and_before_the_delivery(services: Services, db: asyncpg.Pool) -> None:
    team, other = await make_team(db), await make_team(db)
    patient, _ = await make_patient(db, team)
    fields = {"test": "fasting_glucose", "unit": "mg/dL", "fasting": "92"}
    url = f"/patients/{patient}/postpartum-test"
    async with browser(services) as http:
        await _signed_in(http, db, team, role="midwife")
        token = csrf_of((await http.get(f"/patients/{patient}")).text)
        assert (await http.post(url, data=fields | {"csrf_token": token})).status_code == 409  # not delivered
        await _deliver(db, patient)
        assert (await http.post(url, data=fields)).status_code == 403  # no CSRF token
    async with browser(services) as http:
        await _signed_in(http, db, team, role="nurse")
        page = await http.get(f"/patients/{patient}")
        assert not parse_html(page.text).select(".postpartum-form")
        assert parse_html(page.text).one("#postpartum-readonly").text().startswith("Midwives, diabetologists")
        assert (await http.post(url, data=fields | {"csrf_token": csrf_of(page.text)})).status_code == 403
    async with browser(services) as http:
        await _signed_in(http, db, other, role="diabetologist")
        token = csrf_of((await http.get("/")).text)
        assert (await http.post(url, data=fields | {"csrf_token": token})).status_code == 404
    assert await _tests(db, patient) == []
