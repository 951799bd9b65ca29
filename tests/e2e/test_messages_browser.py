"""The team's side of the conversation in a real browser (headless Chromium driven by Playwright) against
``telemon serve``: a diabetologist replies to the patient from an alert with a template, the patient's answer (sent
through her app's API) appears on the open patient page without a reload, and the triage, open in another tab,
lists her unread reply live, until the patient page is read.

The conversation is written to ``docs/img/messages.png`` for README (when missing, or when
TELEMON_DOCS_SCREENSHOTS=1 asks to refresh it); the screenshot is not an assertion."""

from __future__ import annotations

import os

import asyncpg
import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.test_dashboard_browser import ARTIFACTS, DOCS_IMG, chromium, telemon_serve
from tests.support.factories import patient_with_device
from tests.test_ui_toolkit import PASSWORD, Team, add_alert, make_clinician

pytestmark = pytest.mark.slow


async def test_a_reply_from_an_alert_and_the_patients_answer_arrive_live(
    database_url: str, mqtt_url: str, db: asyncpg.Pool
) -> None:
    her = await patient_with_device(db, kind="app")
    await db.execute("UPDATE patients SET display_name = 'Maëlle R.', language = 'en' WHERE id = $1", her.patient_id)
    email = await make_clinician(db, Team(her.team_id, ""), language="en")
    alert = await add_alert(db, her.patient_id)
    async with telemon_serve(database_url, mqtt_url) as base, chromium() as browser, httpx.AsyncClient() as app:
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{base}/login")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(f"{base}/")

        # from the alert: reply to the patient, with a template, the alert linked
        await page.goto(f"{base}/patients/{her.patient_id}")
        await page.locator(f'#alerts a.reply[href*="reply_to={alert}"]').click()
        await expect(page.locator("#message-form .replying")).to_contain_text("Replying about the alert")
        await page.get_by_label("Template").select_option(label="Please call the unit")
        await page.get_by_role("button", name="Use this template").click()
        await expect(page.get_by_label("Message", exact=True)).to_have_value(
            "Please call the diabetes unit today so that we can talk about your readings."
        )
        await page.get_by_role("button", name="Send to the patient").click()
        await expect(page.locator("p.flash")).to_have_text("Message sent.")
        sent = page.locator("#conversation li.from-team")
        await expect(sent).to_contain_text("Please call the diabetes unit today")
        await expect(sent.locator("a.about-alert")).to_have_attribute("href", f"#alert-{alert}")
        assert await db.fetchval("SELECT alert_id FROM messages WHERE patient_id = $1", her.patient_id) == alert

        # the triage in another tab, and the patient page open: her answer comes live to both
        triage = await context.new_page()
        await triage.goto(f"{base}/")
        await expect(triage.locator("#live-status")).to_have_text("Live updates on")
        await expect(page.locator("#live-status")).to_have_text("Live updates on")
        await page.evaluate("window.__sameDocument = true")
        # her app reads the conversation (the receipt reaches the team), then answers
        headers = {"Authorization": f"Bearer {her.token}"}
        read = await app.get(f"{base}/api/v1/me/messages", headers=headers)
        assert read.status_code == 200 and read.json()["items"][0]["author"] == "team"
        await expect(sent.locator(".receipt")).to_contain_text("Read by the patient", timeout=20_000)
        answer = await app.post(f"{base}/api/v1/me/messages", json={"body": "I will call at 2 pm."}, headers=headers)
        assert answer.status_code == 201
        row = triage.locator(f'tr[data-patient-id="{her.patient_id}"] .unread-messages')
        await expect(row).to_contain_text("1 unread message", timeout=20_000)
        await expect(page.locator("#conversation li.from-patient")).to_contain_text(
            "I will call at 2 pm.", timeout=20_000
        )
        assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.locator("#messages").screenshot(path=str(ARTIFACTS / "messages.png"))
        if not (DOCS_IMG / "messages.png").exists() or os.environ.get("TELEMON_DOCS_SCREENSHOTS") == "1":
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            await page.locator("#messages").screenshot(path=str(DOCS_IMG / "messages.png"))

        # the page that showed her answer read it: the triage no longer lists her for it
        await expect(row).to_have_count(0, timeout=20_000)
        answered = await db.fetchrow(
            "SELECT read_at, read_by FROM messages WHERE patient_id = $1 AND author = 'patient'", her.patient_id
        )
        assert answered["read_at"] is not None and answered["read_by"].startswith("clinician:")
        assert errors == []
        await context.close()
