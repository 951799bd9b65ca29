"""The postpartum step in a real browser (Debian's headless Chromium driven by Playwright) against ``telemon serve``:
a midwife records the delivery of a patient, then her 75 g OGTT (DESIGN §5's example, 5.2 and 8.9 mmol/L), sees it
classified as impaired glucose tolerance with its follow-up, and is offered to end the monitoring, which she does."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import expect

from tests.e2e.test_dashboard_browser import ARTIFACTS, chromium, telemon_serve
from tests.test_ui_toolkit import PASSWORD, make_clinician, make_patient, make_team

pytestmark = pytest.mark.slow

PARIS = ZoneInfo("Europe/Paris")


async def test_a_midwife_records_the_postpartum_ogtt_and_ends_the_monitoring(
    database_url: str, mqtt_url: str, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, role="midwife", language="en", unit="mmol/L")
    patient_id, _ = await make_patient(db, team, "Nora Benali", profile="ADA", due_in_days=-40)
    delivered = dt.datetime.now(PARIS).date() - dt.timedelta(days=42)
    async with telemon_serve(database_url, mqtt_url) as base, chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{base}/login")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(f"{base}/")

        # before the delivery, no postpartum section; the delivery recorded, the form is there
        await page.goto(f"{base}/patients/{patient_id}")
        await expect(page.locator("#postpartum")).to_have_count(0)
        await page.get_by_label("Delivery date").fill(delivered.isoformat())
        await page.get_by_role("button", name="Record the delivery").click()
        section = page.locator("#postpartum")
        await expect(section.get_by_role("heading", name="Postpartum glucose test")).to_be_visible()
        await expect(section.get_by_text("No postpartum test recorded yet.")).to_be_visible()
        await expect(section.get_by_label("Glucose unit")).to_have_value("mmol/L")  # the midwife's unit

        # a value out of range is refused beside its field, what was typed kept
        await section.get_by_label("Test", exact=True).select_option("ogtt_75g")
        await section.get_by_label("Fasting glucose").fill("52")
        await section.get_by_label("Glucose at 2 hours").fill("8,9")
        await section.get_by_role("button", name="Record the test").click()
        await expect(page.locator('.field-error[data-field="fasting"]')).to_have_text(
            "Fasting glucose: a plausible result is 0.6 to 33.3 mmol/L."
        )
        await expect(page.get_by_label("Glucose at 2 hours")).to_have_value("8,9")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "postpartum-refused.png"), full_page=True)

        # corrected: recorded, classified, and the end of monitoring offered
        await page.get_by_label("Fasting glucose").fill("5.2")
        await page.get_by_role("button", name="Record the test").click()
        await expect(page.locator("p.flash")).to_have_text("Postpartum test recorded.")
        result = page.locator("#postpartum-current")
        await expect(result.locator(".postpartum-classification")).to_have_text("Impaired glucose tolerance")
        await expect(result.locator(".postpartum-values")).to_have_text("fasting 5.2 mmol/L · 2 h 8.9 mmol/L")
        await expect(
            result.get_by_text("Diabetes prevention programme (intensive lifestyle intervention)")
        ).to_be_visible()
        await expect(result.get_by_text("Glucose test every year")).to_be_visible()
        offer = page.locator("#postpartum-end")
        await expect(offer.get_by_role("button", name="End monitoring")).to_be_visible()
        await page.locator("#postpartum").screenshot(path=str(ARTIFACTS / "postpartum.png"))

        await offer.get_by_role("button", name="End monitoring").click()
        await expect(page.locator("p.flash")).to_have_text("Patient archived: monitoring ended.")
        await page.goto(f"{base}/patients/{patient_id}")
        await expect(page.locator("#postpartum-end")).to_have_count(0)
        await expect(page.locator("#postpartum-current .postpartum-classification")).to_have_text(
            "Impaired glucose tolerance"
        )
        assert errors == []
        await context.close()
    actions = [r["action"] for r in await db.fetch("SELECT action FROM audit_log WHERE patient_id = $1 ORDER BY id",
                                                   patient_id)]  # fmt: skip
    assert actions.count("postpartum.test") == 1
    assert actions.index("patient.delivery") < actions.index("postpartum.test") < actions.index("patient.archive")
