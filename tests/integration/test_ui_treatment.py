"""The treatment plan on the dashboard, tested by parsing the HTML: a diabetologist writes versions with the form
(French decimal comma), the history shows who, when and why, a refused form names the field and keeps what was
typed, text is escaped, a form without its CSRF token or from a midwife is refused, another team sees nothing."""

from __future__ import annotations

import datetime as dt
import uuid

import asyncpg
import httpx

from clinician_ui import web
from clinician_ui.i18n import Formatter
from telemon import treatment, units
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


async def _signed_in(
    http: httpx.AsyncClient, db: asyncpg.Pool, team: Team, role: str = "diabetologist", language: str = "en"
) -> None:
    email = await make_clinician(db, team, role=role, language=language)
    assert (await login(http, email)).status_code == 303


async def test_a_diabetologist_writes_versions_and_the_history_shows_who_when_why(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    patient, _ = await make_patient(db, team)
    async with browser(services) as http:
        await _signed_in(http, db, team, language="fr")
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        assert page.one("#treatment-link").get("href") == f"/patients/{patient}/treatment"
        form = parse_html((await http.get(f"/patients/{patient}/treatment")).text)
        assert form.select("#plan-history p.empty")
        answer = await submit(
            http,
            form.one("#plan-form button"),
            treatment="insulin",
            basal_product="NPH",
            basal_units="10,5",
            basal_time="22:00",
            prandial_product="NovoRapid",
            prandial_dinner="6",
            note="<b>glycémies à jeun hautes</b>",
        )
        assert answer.status_code == 303, answer.text
        shown = parse_html((await http.get(f"/patients/{patient}/treatment")).text)
        assert "NPH 10,5 U à 22:00" in shown.one("#plan .plan-basal").text()
        assert "Dîner 6 U" in shown.one("#plan .plan-prandial").text()
        # the form starts from the plan in force
        assert shown.one("#plan-basal-units").get("value") == "10,5"
        second = await submit(http, shown.one("#plan-form button"), basal_units="12", note="ajustement")
        assert second.status_code == 303
        final = await http.get(f"/patients/{patient}/treatment")
        assert "<b>glycémies" not in final.text and "&lt;b&gt;glycémies" in final.text
        rows = parse_html(final.text).select("#plan-history tbody tr")
        assert [r.get("data-version") for r in rows] == ["2", "1"]
        assert rows[0].one(".plan-note").text() == "ajustement"
        assert rows[0].one(".plan-who").text().startswith("Dr ")
    assert await db.fetchval("SELECT treatment FROM patients WHERE id = $1", patient) == "insulin"
    audited = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE patient_id = $1 AND action = 'treatment.plan' AND actor LIKE 'clinician:%'",
        patient,
    )
    assert audited == 2


async def test_a_refused_form_names_the_field_and_keeps_what_was_typed(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    patient, _ = await make_patient(db, team)
    async with browser(services) as http:
        await _signed_in(http, db, team)
        form = parse_html((await http.get(f"/patients/{patient}/treatment")).text)
        for fields, field, words in (
            ({"basal_units": "10.3", "basal_product": "NPH", "basal_time": "22:00"}, "basal.units", "half units"),
            ({"basal_units": "ten", "basal_product": "NPH", "basal_time": "22:00"}, "basal.units", "number"),
            ({"basal_units": "10", "basal_product": "NPH", "basal_time": "25:00"}, "basal.time", "HH:MM"),
            ({}, "basal", "basal dose"),
        ):
            answer = await submit(http, form.one("#plan-form button"), treatment="insulin", **fields)
            assert answer.status_code == 422, answer.text
            refused = parse_html(answer.text)
            error = refused.one("#plan-error")
            assert error.get("data-field") == field
            assert words in error.text()
            for name, value in fields.items():
                assert refused.one(f'[name="{name}"]').get("value") == value
        metformin = await submit(http, form.one("#plan-form button"), treatment="metformin", metformin_mg="4000")
        assert metformin.status_code == 422
        assert "250 to 3000 mg" in parse_html(metformin.text).one("#plan-error").text()
    assert await db.fetchval("SELECT count(*) FROM treatment_plans WHERE patient_id = $1", patient) == 0


async def test_csrf_roles_and_other_teams(services: Services, db: asyncpg.Pool) -> None:
    team, other = await make_team(db), await make_team(db)
    patient, _ = await make_patient(db, team)
    fields = {"treatment": "metformin", "metformin_mg": "1000"}
    async with browser(services) as http:
        await _signed_in(http, db, team, role="midwife")
        page = await http.get(f"/patients/{patient}/treatment")
        assert page.status_code == 200
        assert not parse_html(page.text).select("#plan-form")
        token = csrf_of(page.text)
        assert (await http.post(f"/patients/{patient}/treatment", data=fields)).status_code == 403
        refused = await http.post(f"/patients/{patient}/treatment", data=fields | {"csrf_token": token})
        assert refused.status_code == 403
    async with browser(services) as http:
        await _signed_in(http, db, other)
        assert (await http.get(f"/patients/{patient}/treatment")).status_code == 404
        token = csrf_of((await http.get("/")).text)
        assert (
            await http.post(f"/patients/{patient}/treatment", data=fields | {"csrf_token": token})
        ).status_code == 404
    assert await db.fetchval("SELECT count(*) FROM treatment_plans WHERE patient_id = $1", patient) == 0


def test_the_patient_page_block_shows_the_plan_in_force_when_the_page_has_it() -> None:
    """The block included in the patient page: the link always, the plan's summary when ``current_plan`` is given."""
    fmt = Formatter("en", units.MGDL, dt.datetime.now(dt.UTC))
    block = web.templates.get_template("_treatment_plan.html")
    patient = {"id": uuid.uuid4()}
    plain = parse_html(block.render(**fmt.functions(), p=patient))
    assert plain.one("#treatment-link").get("href") == f"/patients/{patient['id']}/treatment"
    assert not plain.select(".plan-summary")
    plan = treatment.Plan("insulin", basal=treatment.Basal("Levemir", 8.5, "21:30"), prandial={"breakfast": 4})
    shown = parse_html(block.render(**fmt.functions(), p=patient, current_plan=plan))
    assert shown.one(".plan-basal").text() == "Levemir 8.5 U at 21:30"
    assert shown.one(".plan-prandial").text() == "Breakfast 4 U"


async def test_the_record_form_does_not_change_a_treatment_the_plan_holds(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    patient, _ = await make_patient(db, team)
    async with db.acquire() as conn:
        await treatment.new_version(conn, patient, treatment.Plan("metformin", metformin_mg=1000), actor="cli")
    async with browser(services) as http:
        await _signed_in(http, db, team)
        token = csrf_of((await http.get(f"/patients/{patient}")).text)
        fields = {"csrf_token": token, "profile": "FR", "readings_per_day": "4", "target_fasting": ""}
        refused = await http.post(f"/patients/{patient}/settings", data=fields | {"treatment": "diet"})
        assert refused.status_code == 409
        assert "new version of the plan" in refused.text
        kept = await http.post(f"/patients/{patient}/settings", data=fields | {"treatment": "metformin"})
        assert kept.status_code == 303
    assert await db.fetchval("SELECT treatment FROM patients WHERE id = $1", patient) == "metformin"
