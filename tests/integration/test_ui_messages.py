"""Messages on the team's side, tested by parsing the HTML: the conversation on the patient page, sending (from a
template, in reply to an alert), escaping, CSRF, read receipts both ways, the triage's unread messages and their
filter, the team's templates, the e-mail notice, and a message reaching an open page's event stream."""

from __future__ import annotations

import dataclasses
import uuid

import asyncpg
import httpx

from clinic import messages
from telemon import devices
from telemon.app.services import Services, open_services
from telemon.settings import Settings
from tests.integration.test_ui_live import Stream, api_process, login_at
from tests.support.smtp import body_of, smtp_server
from tests.test_ui_toolkit import (
    add_alert,
    browser,
    csrf_of,
    form_of,
    login,
    make_clinician,
    make_patient,
    make_team,
    parse_html,
    submit,
)

XSS = '<script>alert("x")</script> & <b>bold</b>'


async def _app_device(db: asyncpg.Pool, patient: uuid.UUID) -> str:
    async with db.acquire() as conn:
        new = await devices.add_device(conn, patient_id=patient, kind="app")
    return new.device_id


async def _from_patient(db: asyncpg.Pool, patient: uuid.UUID, device_id: str, body: str) -> int:
    async with db.acquire() as conn, conn.transaction():
        sent = await messages.send(conn, patient, body, actor=f"device:{device_id}", device_id=device_id)
    return sent.id


async def test_a_clinician_sends_a_message_shown_escaped_with_who_sent_it(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team, "Inès B.")
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        assert page.one("#messages .empty")
        sent = await submit(http, page.one("#message-form button"), body=XSS)
        assert sent.status_code == 303 and sent.headers["location"] == f"/patients/{patient}#messages"
        html = (await http.get(f"/patients/{patient}")).text
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    shown = parse_html(html).one("#conversation li.message")
    assert shown.one(".message-body").text() == XSS
    assert shown.get("data-author") == "team" and shown.one(".author").text().startswith("Dr ")
    assert "Not read yet" in shown.one(".receipt").text()
    row = await db.fetchrow("SELECT author, clinician_id, body FROM messages WHERE patient_id = $1", patient)
    assert row["author"] == "clinician" and row["body"] == XSS
    audit = await db.fetchrow(
        "SELECT actor, detail FROM audit_log WHERE action = 'message.send' AND patient_id = $1", patient
    )
    assert audit["actor"] == f"clinician:{row['clinician_id']}"


async def test_sending_needs_the_csrf_token_a_body_and_a_patient_of_the_team(
    services: Services, db: asyncpg.Pool
) -> None:
    team, other = await make_team(db), await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team)
    stranger, _ = await make_patient(db, other)
    async with browser(services) as http:
        await login(http, email)
        token = csrf_of((await http.get(f"/patients/{patient}")).text)
        no_token = await http.post(f"/patients/{patient}/messages", data={"body": "hello"})
        assert no_token.status_code == 403
        wrong = await http.post(f"/patients/{patient}/messages", data={"body": "hello", "csrf_token": "x" * 40})
        assert wrong.status_code == 403
        empty = await http.post(f"/patients/{patient}/messages", data={"body": "   ", "csrf_token": token})
        assert empty.status_code == 422
        long = await http.post(f"/patients/{patient}/messages", data={"body": "x" * 4001, "csrf_token": token})
        assert long.status_code == 422
        nul = await http.post(f"/patients/{patient}/messages", data={"body": "a\x00b", "csrf_token": token})
        assert nul.status_code == 422
        theirs = await http.post(f"/patients/{stranger}/messages", data={"body": "hello", "csrf_token": token})
        assert theirs.status_code == 404
    assert await db.fetchval("SELECT count(*) FROM messages WHERE patient_id = ANY($1)", [patient, stranger]) == 0


async def test_a_template_fills_the_box_in_the_patients_language(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, language="en")
    patient, _ = await make_patient(db, team)
    await db.execute("UPDATE patients SET language = 'fr' WHERE id = $1", patient)
    found = await messages.templates(db, team.id, "en")
    call = next(t for t in found if t.title_en == "Please call the unit")
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        titles = [o.text() for o in page.select("#message-template option")]
        assert "Please call the unit" in titles  # titles in the clinician's language
        use = page.one("#template-picker button")
        action, fields = form_of(use)  # a GET form: the page again, with the template in the box
        chosen = await http.get(action, params=[(k, str(call.id) if k == "template" else v) for k, v in fields])
        assert chosen.status_code == 200
        filled = parse_html(chosen.text)
        assert filled.one("#message-body").text() == call.body_fr
        sent = await submit(http, filled.one("#message-form button"))
        assert sent.status_code == 303
    assert await db.fetchval("SELECT body FROM messages WHERE patient_id = $1", patient) == call.body_fr


async def test_reply_to_the_patient_from_an_alert_links_the_alert(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team)
    other, _ = await make_patient(db, team)
    alert = await add_alert(db, patient)
    foreign_alert = await add_alert(db, other)
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        link = page.one(f'#alerts a.reply[href*="reply_to={alert}"]').get("href") or ""
        replying = parse_html((await http.get(link)).text)
        assert replying.one('#message-form input[name="alert_id"]').get("value") == str(alert)
        assert "Level 2 hypoglycaemia" in replying.one("#message-form .replying").text()
        sent = await submit(http, replying.one("#message-form button"), body="Please eat 15 g of sugar and call us.")
        assert sent.status_code == 303
        after = parse_html((await http.get(f"/patients/{patient}")).text)
        assert after.one("#conversation a.about-alert").get("href") == f"#alert-{alert}"
        # another patient's alert is not a reply of this conversation
        ignored = parse_html((await http.get(f"/patients/{patient}?reply_to={foreign_alert}")).text)
        assert not ignored.select('#message-form input[name="alert_id"]')
        token = csrf_of((await http.get(f"/patients/{patient}")).text)
        forged = await http.post(
            f"/patients/{patient}/messages",
            data={"body": "x", "alert_id": str(foreign_alert), "csrf_token": token},
        )
        assert forged.status_code == 404
    assert await db.fetchval("SELECT alert_id FROM messages WHERE patient_id = $1", patient) == alert


async def test_the_triage_lists_an_unread_message_until_the_patient_page_is_read(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    writer, _ = await make_patient(db, team, "Writes Without Alert")
    alerted, _ = await make_patient(db, team, "Has An Alert")
    await add_alert(db, alerted, severity="warning", rule="fasting_above_target")
    device = await _app_device(db, writer)
    first = await _from_patient(db, writer, device, "I forgot my meter at work")
    await _from_patient(db, writer, device, "Measured at 8 pm instead")
    async with browser(services) as http:
        await login(http, email)
        triage = parse_html((await http.get("/")).text)
        listed = [r.get("data-patient-id") for r in triage.select("tr.triage-row")]
        assert str(writer) in listed and str(alerted) in listed
        row = triage.one(f'tr.triage-row[data-patient-id="{writer}"]')
        assert "2 unread messages" in row.one(".unread-messages").text()
        only = parse_html((await http.get("/?messages=1")).text)
        assert [r.get("data-patient-id") for r in only.select("tr.triage-row")] == [str(writer)]
        assert only.one('input[name="messages"]').attrs.get("checked") is not None

        page = parse_html((await http.get(f"/patients/{writer}")).text)
        shown = page.one(f"#message-{first}")
        assert shown.get("data-author") == "patient" and "Writes Without Alert" in shown.one(".author").text()
        assert "Read by Dr " in shown.one(".receipt").text()  # read by the one who opened the page

        after = parse_html((await http.get("/")).text)
        assert str(writer) not in [r.get("data-patient-id") for r in after.select("tr.triage-row")]
        assert not parse_html((await http.get("/?messages=1")).text).select("tr.triage-row")
    read = await db.fetchrow("SELECT read_at, read_by FROM messages WHERE id = $1", first)
    assert read["read_at"] is not None and read["read_by"].startswith("clinician:")


async def test_admins_and_diabetologists_edit_the_templates_others_read_them(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    doctor = await make_clinician(db, team, role="diabetologist")
    nurse = await make_clinician(db, team, role="nurse")
    async with browser(services) as http:
        await login(http, nurse)
        html = (await http.get("/messages/templates")).text
        page = parse_html(html)
        assert page.select("section.template") and not page.select("form.grid-form")
        forbidden = await http.post(
            "/messages/templates",
            data={"csrf_token": csrf_of(html), "title_en": "a", "title_fr": "a", "body_en": "b", "body_fr": "b"},
        )
        assert forbidden.status_code == 403
    async with browser(services) as http:
        await login(http, doctor)
        page = parse_html((await http.get("/messages/templates")).text)
        add = page.one("#new-template button")
        created = await submit(
            http, add, title_en="Ketones", title_fr="Cétones", body_en="Check ketones.", body_fr="Mesurez les cétones."
        )
        assert created.status_code == 303
        page = parse_html((await http.get("/messages/templates")).text)
        titles = [n.get("value") for n in page.select('input[name="title_en"]')]
        assert "Ketones" in titles
        ketones = next(
            s for s in page.select("section.template") if s.one('input[name="title_en"]').get("value") == "Ketones"
        )
        changed = await submit(http, ketones.select("button")[0], body_fr="<b>x</b>")
        assert changed.status_code == 303
        assert (
            await db.fetchval(
                "SELECT body_fr FROM message_templates WHERE team_id = $1 AND title_en = 'Ketones'", team.id
            )
            == "<b>x</b>"
        )
        gone = await submit(http, ketones.one('button[name="delete"]'))
        assert gone.status_code == 303
    assert (
        await db.fetchval("SELECT count(*) FROM message_templates WHERE team_id = $1 AND title_en = 'Ketones'", team.id)
        == 0
    )


async def test_the_patient_gets_an_email_notice_without_the_message(settings: Settings, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team, "Notice Patient")
    await db.execute("UPDATE patients SET email = 'patient@example.org', language = 'en' WHERE id = $1", patient)
    with smtp_server() as (url, inbox):
        changed = dataclasses.replace(settings, smtp_url=url, smtp_from="telemon@chu.example")
        async with open_services(changed) as services, browser(services) as http:
            await login(http, email)
            page = parse_html((await http.get(f"/patients/{patient}")).text)
            sent = await submit(http, page.one("#message-form button"), body="Your fasting glucose is 140 mg/dL")
            assert sent.status_code == 303
            notice = await inbox.wait()
    assert notice["To"] == "patient@example.org"
    text = body_of(notice)
    assert "new message" in text and "140" not in text and "Notice Patient" not in text
    assert "140" not in notice["Subject"]


async def test_a_message_from_the_patient_reaches_the_open_page_live(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team, "Live Writer")
    device = await _app_device(db, patient)
    async with api_process(services) as base, httpx.AsyncClient() as http:
        await login_at(http, base, email)
        async with Stream(http, base) as stream:
            sent = await _from_patient(db, patient, device, "Can I eat rice tonight?")
            event = await stream.wait_for(lambda kind, data: kind == "message" and data.get("id") == sent)
            assert event == {"patient_id": str(patient), "id": sent, "author": "patient"}
            # the page's own live refresh shows it (and reads it: the receipt reaches the stream too)
            fresh = await http.get(f"{base}/patients/{patient}", headers={"X-Telemon-Live": "1"})
            assert parse_html(fresh.text).one(f"#message-{sent} .message-body").text() == "Can I eat rice tonight?"
            receipt = await stream.wait_for(lambda kind, data: kind == "message" and data.get("read") == "patient")
            assert receipt == {"patient_id": str(patient), "read": "patient"}
