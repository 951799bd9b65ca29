"""The clinic's pages against the real app and database, tested by parsing the HTML: enrolment with its
field-level errors (French decimal comma, due date from the last period, a duplicate hospital number naming the
patient), escaping, CSRF refusal and roles; pairing sheets (shown once, with a QR code), revoke, rotate and new
codes; archiving (out of the triage, still listed and searchable with a badge) and un-archiving, audited."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx

from telemon import devices, security, units
from telemon.app.services import Services
from tests.test_ui_toolkit import (
    Node,
    Team,
    add_alert,
    browser,
    csrf_of,
    login,
    make_clinician,
    make_patient,
    make_team,
    parse_html,
    submit,
)

TODAY = dt.date.today()


def enrol_fields(**changes: str) -> dict[str, str]:
    fields = {
        "display_name": "Camille Martin",
        "external_id": f"H-{uuid.uuid4().hex[:8]}",
        "birth_year": "1992",
        "due_date": (TODAY + dt.timedelta(days=120)).isoformat(),
        "last_period": "",
        "diagnosis_date": (TODAY - dt.timedelta(days=3)).isoformat(),
        "ogtt_unit": "mmol/L",
        "ogtt_fasting": "5,3",
        "ogtt_1h": "",
        "ogtt_2h": "8,6",
        "profile": "FR",
        "treatment": "diet",
        "readings_per_day": "4",
        "time_zone": "Europe/Paris",
        "language": "fr",
        "note": "",
    }
    return fields | changes


async def enrol(http: httpx.AsyncClient, **changes: str) -> httpx.Response:
    page = parse_html((await http.get("/enrol")).text)
    return await submit(http, page.one('form[action="/enrol"] button'), **enrol_fields(**changes))


def field_errors(page: Node) -> dict[str, str]:
    return {n.get("data-field") or "": n.text() for n in page.select("p.field-error")}


async def signed_in(http: httpx.AsyncClient, db: asyncpg.Pool, team: Team, role: str = "midwife") -> None:
    email = await make_clinician(db, team, role=role)
    assert (await login(http, email)).status_code == 303


async def test_a_midwife_enrols_a_patient_with_her_ogtt_in_french_decimals(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    async with browser(services) as http:
        await signed_in(http, db, team)
        nav = parse_html((await http.get("/")).text).select('nav a[href="/enrol"]')
        assert nav and nav[0].text() == "Enrol a patient"
        form = parse_html((await http.get("/enrol")).text)
        assert form.one("#f-language").select("option[selected]")[0].get("value") == "en"  # the clinician's
        assert form.one("#f-time_zone").get("value") == "Europe/Paris"
        answer = await enrol(
            http, external_id="H-2026-0042", note="Prefers SMS <b>after</b> 6 pm", email=" camille.d@example.fr "
        )
        assert answer.status_code == 303
        patient_id = uuid.UUID(answer.headers["location"].rsplit("/", 1)[1])
        page = await http.get(answer.headers["location"])
        assert page.status_code == 200 and "Patient enrolled." in page.text
    row = await db.fetchrow(
        "SELECT p.*, (SELECT body FROM patient_notes n WHERE n.patient_id = p.id) AS note FROM patients p WHERE id = $1",
        patient_id,
    )
    assert row["team_id"] == team.id and row["external_id"] == "H-2026-0042" and row["birth_year"] == 1992
    assert row["language"] == "fr" and row["ogtt_unit"] == "mmol/L" and row["ogtt_1h_mgdl"] is None
    assert row["email"] == "camille.d@example.fr"  # where the notice of a new message goes
    assert row["ogtt_fasting_mgdl"] == units.exact_mgdl(5.3, "mmol/L")
    assert row["ogtt_2h_mgdl"] == units.exact_mgdl(8.6, "mmol/L")
    assert row["due_date"] == TODAY + dt.timedelta(days=120) and row["note"] == "Prefers SMS <b>after</b> 6 pm"
    audit = await db.fetchrow(
        "SELECT actor, detail FROM audit_log WHERE action = 'patient.create' AND patient_id = $1", patient_id
    )
    assert audit["actor"].startswith("clinician:") and audit["detail"]["ogtt"] is True


async def test_a_midwife_of_two_teams_chooses_the_team_by_name(services: Services, db: asyncpg.Pool) -> None:
    first, second = sorted([await make_team(db), await make_team(db)], key=lambda team: team.name)
    email = await make_clinician(db, first, role="midwife")
    await db.execute(
        "INSERT INTO team_memberships (team_id, clinician_id) SELECT $1, id FROM clinicians WHERE email = $2",
        second.id,
        email,
    )
    async with browser(services) as http:
        assert (await login(http, email)).status_code == 303
        form = parse_html((await http.get("/enrol")).text)
        options = [(o.get("value"), o.text()) for o in form.select('select[name="team_id"] option')]
        assert options == [(str(first.id), first.name), (str(second.id), second.name)]
        answer = await enrol(http, team_id=str(second.id))
        assert answer.status_code == 303
    patient_id = uuid.UUID(answer.headers["location"].rsplit("/", 1)[1])
    assert await db.fetchval("SELECT team_id FROM patients WHERE id = $1", patient_id) == second.id


async def test_the_due_date_comes_from_the_last_period(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    last_period = TODAY - dt.timedelta(days=100)
    async with browser(services) as http:
        await signed_in(http, db, team, role="diabetologist")
        answer = await enrol(http, due_date="", last_period=last_period.strftime("%d/%m/%Y"), ogtt_fasting="")
        assert answer.status_code == 303
    patient_id = uuid.UUID(answer.headers["location"].rsplit("/", 1)[1])
    due = await db.fetchval("SELECT due_date FROM patients WHERE id = $1", patient_id)
    assert due == last_period + dt.timedelta(days=280)


async def test_every_bad_field_is_named_beside_it_and_nothing_is_stored(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    async with browser(services) as http:
        await signed_in(http, db, team)
        answer = await enrol(
            http,
            display_name="",
            birth_year="92",
            due_date=(TODAY + dt.timedelta(days=400)).isoformat(),
            diagnosis_date="31/02/2026",
            ogtt_fasting="5.3.1",
            ogtt_2h="90",  # mmol/L: a value in mg/dL typed in the wrong unit
            readings_per_day="13",
            time_zone="Mars/Olympus",
            email="camille at home",
        )
        assert answer.status_code == 422
        page = parse_html(answer.text)
        errors = field_errors(page)
        assert set(errors) == {
            "display_name",
            "birth_year",
            "diagnosis_date",
            "ogtt_fasting",
            "ogtt_2h",
            "readings_per_day",
            "time_zone",
            "email",
        }
        assert errors["ogtt_2h"] == "Outside 0.6–33.3 mmol/L: check the value and the unit."
        assert errors["ogtt_fasting"].startswith("Not a number")
        assert page.one("#f-display_name").get("aria-invalid") == "true"
        assert page.one("#f-ogtt_fasting").get("value") == "5.3.1"  # the form comes back as typed
        assert len(page.one("#error-summary").select("li")) == 8
        # with a valid zone the due date is judged too
        late = await enrol(http, due_date=(TODAY + dt.timedelta(days=400)).isoformat())
        assert field_errors(parse_html(late.text)) == {
            "due_date": "More than 10 months (304 days) ahead: check the year and the month."
        }
        neither = await enrol(http, due_date="", last_period="")
        assert set(field_errors(parse_html(neither.text))) == {"due_date"}
        both = await enrol(http, last_period=(TODAY - dt.timedelta(days=10)).isoformat())
        assert set(field_errors(parse_html(both.text))) == {"last_period"}
    assert await db.fetchval("SELECT count(*) FROM patients WHERE team_id = $1", team.id) == 0


async def test_french_errors(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, role="midwife", language="fr")
    async with browser(services) as http:
        await login(http, email)
        answer = await enrol(http, ogtt_fasting="cinq", display_name="")
        errors = field_errors(parse_html(answer.text))
        assert errors == {"display_name": "Obligatoire.", "ogtt_fasting": "Nombre invalide (par exemple 5,3 ou 95)."}


async def test_a_duplicate_hospital_number_names_the_patient_who_has_it(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    async with browser(services) as http:
        await signed_in(http, db, team)
        first = await enrol(http, external_id="H-77", display_name="Inès <b>Roux</b>")
        existing = first.headers["location"]
        again = await enrol(http, external_id="H-77", display_name="Someone else")
        assert again.status_code == 422
        error = parse_html(again.text).one('p.field-error[data-field="external_id"]')
        assert error.text().startswith("Hospital number H-77 is already enrolled in this team:")
        link = error.one("a")
        assert link.get("href") == existing and link.text() == "Inès <b>Roux</b>"
        assert "<b>Roux" not in again.text  # escaped
    assert await db.fetchval("SELECT count(*) FROM patients WHERE team_id = $1", team.id) == 1


async def test_what_a_clinician_types_is_escaped_everywhere(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    hostile = "<script>alert(1)</script>"
    async with browser(services) as http:
        await signed_in(http, db, team)
        refused = await enrol(http, display_name=hostile, birth_year=hostile)  # back in the form, escaped
        assert refused.status_code == 422 and hostile not in refused.text
        assert parse_html(refused.text).one("#f-display_name").get("value") == hostile
        answer = await enrol(http, display_name=hostile, external_id=f"{hostile}-1", note=hostile)
        patient = answer.headers["location"]
        for path in (patient, f"{patient}/devices", "/patients?q=script"):
            page = await http.get(path)
            assert page.status_code == 200 and hostile not in page.text and "&lt;script&gt;" in page.text, path
        pairing = parse_html((await http.get(f"{patient}/devices")).text)
        sheet = await submit(http, pairing.one("form.pair-form button"), kind="app", label=hostile)
        assert sheet.status_code == 200 and hostile not in sheet.text
        assert "<script" not in sheet.text.split("<main", 1)[1].replace('<script src="/static/live.js"', "")


async def test_forms_without_the_csrf_token_or_from_another_site_are_refused(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    patient, _ = await make_patient(db, team)
    async with browser(services) as http:
        await signed_in(http, db, team)
        token = csrf_of((await http.get("/enrol")).text)
        forged = enrol_fields()
        assert (await http.post("/enrol", data=forged)).status_code == 403
        assert (await http.post("/enrol", data=forged | {"csrf_token": "x" * 43})).status_code == 403
        other_site = {"Origin": "https://evil.example"}
        assert (await http.post("/enrol", data=forged | {"csrf_token": token}, headers=other_site)).status_code == 403
        for action in ("devices", "archive"):
            assert (await http.post(f"/patients/{patient}/{action}", data={"kind": "app"})).status_code == 403
    assert await db.fetchval("SELECT count(*) FROM patients WHERE team_id = $1", team.id) == 1
    assert await db.fetchval("SELECT count(*) FROM devices WHERE patient_id = $1", patient) == 1
    assert await db.fetchval("SELECT archived_at FROM patients WHERE id = $1", patient) is None


async def test_nurses_do_not_enrol_pair_or_archive_and_other_teams_see_nothing(
    services: Services, db: asyncpg.Pool
) -> None:
    team, other = await make_team(db), await make_team(db)
    patient, device_id = await make_patient(db, team)
    async with browser(services) as http:
        await signed_in(http, db, team, role="nurse")
        assert not parse_html((await http.get("/")).text).select('nav a[href="/enrol"]')
        assert (await http.get("/enrol")).status_code == 403
        page = await http.get(f"/patients/{patient}/devices")
        assert page.status_code == 200 and not parse_html(page.text).one("main").select("form")
        token = csrf_of(page.text)
        for path in (f"/patients/{patient}/devices", f"/patients/{patient}/archive"):
            assert (await http.post(path, data={"csrf_token": token, "kind": "app"})).status_code == 403
        revoke = f"/patients/{patient}/devices/{device_id}/revoke"
        assert (await http.post(revoke, data={"csrf_token": token})).status_code == 403
    async with browser(services) as http:
        await signed_in(http, db, other, role="admin")
        assert (await http.get(f"/patients/{patient}/devices")).status_code == 404
        token = csrf_of((await http.get("/enrol")).text)
        for path in (f"/patients/{patient}/devices", f"/patients/{patient}/archive", revoke):
            assert (await http.post(path, data={"csrf_token": token, "kind": "app"})).status_code == 404
    assert await db.fetchval("SELECT active FROM devices WHERE id = $1", device_id) is True


def sheet_values(page: Node) -> dict[str, str]:
    return {n.get("data-field") or "": n.text() for n in page.select(".pairing-sheet code[data-field]")}


async def _post_reading(http: httpx.AsyncClient, token: str) -> int:
    body = {
        "readings": [
            {
                "id": uuid.uuid4().hex,
                "measured_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat(),
                "value": 5.1,
                "unit": "mmol/L",
                "kind": "smbg",
                "context": "fasting",
            }
        ]
    }
    answer = await http.post("/api/v1/readings", json=body, headers={"Authorization": f"Bearer {token}"})
    return answer.status_code


async def test_pairing_sheets_rotate_revoke_and_new_codes(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    async with browser(services) as http:
        await signed_in(http, db, team)
        patient = (await enrol(http)).headers["location"]
        devices_page = parse_html((await http.get(f"{patient}/devices")).text)
        app = await submit(http, devices_page.one("form.pair-form button"), kind="app", label="her phone")
        assert app.status_code == 200 and app.headers["cache-control"] == "no-store"
        sheet = parse_html(app.text)
        values = sheet_values(sheet)
        token, device_id = values["token"], values["device_id"]
        assert values["readings_url"] == "http://telemon.test/api/v1/readings"
        assert values["authorization"] == f"Bearer {token}"
        assert devices.normalise_pairing_code(values["pairing_code"]) is not None
        assert sheet.select(".sheet-qr svg.qr path")  # the QR code, drawn on the server
        if services.mqtt_url:
            assert values["mqtt_username"] == device_id and values["mqtt_password"] == token
        stored = await db.fetchval("SELECT token_hash FROM devices WHERE id = $1", device_id)
        assert bytes(stored) == security.secret_hash(token) and token not in str(
            await db.fetch(
                "SELECT * FROM audit_log WHERE patient_id = (SELECT patient_id FROM devices WHERE id = $1)", device_id
            )
        )
        assert await _post_reading(http, token) == 200
        listing = parse_html((await http.get(f"{patient}/devices")).text)
        row = listing.one(f'tr.device-row[data-device-id="{device_id}"]')
        assert row.one("td.readings-7d").text() == "1" and "never" not in row.text()

        cgm_page = await submit(http, listing.one("form.pair-form button"), kind="cgm")
        cgm = sheet_values(parse_html(cgm_page.text))
        assert cgm["nightscout_url"] == "http://telemon.test/ns" and cgm["api_secret"] == cgm["token"]
        assert cgm["xdrip_url"] == f"http://{cgm['token']}@telemon.test/ns/api/v1/"
        assert "readings_url" not in cgm

        rotated_page = await submit(http, row.one('form[action$="/rotate"] button'))
        new_token = sheet_values(parse_html(rotated_page.text))["token"]
        assert new_token != token and "the previous one no longer works" in rotated_page.text
        assert await _post_reading(http, token) == 401  # the old token stops at once
        assert await _post_reading(http, new_token) == 200

        code_page = await submit(http, row.one('form[action$="/pairing-code"] button'))
        assert "token" not in sheet_values(parse_html(code_page.text))
        assert sheet_values(parse_html(code_page.text))["pairing_code"] != values["pairing_code"]

        revoked = await submit(http, row.one('form[action$="/revoke"] button'))
        assert revoked.status_code == 303
        after = parse_html((await http.get(f"{patient}/devices")).text)
        assert "Device revoked" in after.text()
        assert "revoked" in after.one(f'tr.device-row[data-device-id="{device_id}"]').classes
        assert await _post_reading(http, new_token) == 403  # a known token of a revoked device
    actions = await db.fetch(
        "SELECT action FROM audit_log WHERE patient_id = (SELECT patient_id FROM devices WHERE id = $1) ORDER BY id",
        device_id,
    )
    assert {"device.add", "device.rotate", "device.pairing_code", "device.revoke", "devices.read"} <= {
        a["action"] for a in actions
    }


async def test_an_archived_patient_leaves_the_triage_stays_listed_and_is_read_only(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    patient, device_id = await make_patient(db, team, "Archived Anna")
    await add_alert(db, patient)
    async with browser(services) as http:
        await signed_in(http, db, team)
        assert "Archived Anna" in (await http.get("/")).text
        page = parse_html((await http.get(f"/patients/{patient}/devices")).text)
        done = await submit(http, page.one(f'form[action="/patients/{patient}/archive"] button'))
        assert done.status_code == 303
        assert "Archived Anna" not in (await http.get("/")).text
        listed = parse_html((await http.get("/patients?q=Anna")).text)
        assert listed.one(f'tr[data-patient-id="{patient}"] .badge.archived').text() == "archived"
        assert parse_html((await http.get(f"/patients/{patient}")).text).one("h1 .badge.archived")
        read_only = parse_html((await http.get(f"/patients/{patient}/devices")).text)
        assert not read_only.select("form.pair-form") and not read_only.select('form[action$="/revoke"]')
        token = csrf_of((await http.get("/")).text)
        refused = await http.post(f"/patients/{patient}/devices", data={"csrf_token": token, "kind": "app"})
        assert refused.status_code == 409 and "archived and read-only" in refused.text
        for action, fields in (("notes", {"body": "x"}), ("delivery", {"delivery_date": TODAY.isoformat()})):
            answer = await http.post(f"/patients/{patient}/{action}", data={"csrf_token": token, **fields})
            assert answer.status_code == 409, action
        restore = await submit(http, read_only.one(f'form[action="/patients/{patient}/unarchive"] button'))
        assert restore.status_code == 303
        assert not parse_html((await http.get(f"/patients/{patient}/devices")).text).select(".badge.archived")
    assert await db.fetchval("SELECT active FROM devices WHERE id = $1", device_id) is False
    rows = await db.fetch("SELECT action, actor FROM audit_log WHERE patient_id = $1 ORDER BY id", patient)
    made: list[Any] = [r for r in rows if r["action"] in ("patient.archive", "patient.unarchive")]
    assert [r["action"] for r in made] == ["patient.archive", "patient.unarchive"]
    assert all(r["actor"].startswith("clinician:") for r in made)
