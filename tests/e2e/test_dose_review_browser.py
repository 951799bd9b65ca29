"""A dose review suggestion applied in a real browser (Debian's headless Chromium driven by Playwright) against
``telemon serve``: a patient on NPH 10 U whose fasting glucose stayed above target for three days gets the engine's
suggestion (12 U, the default protocol); her diabetologist sees it on the patient page with the dose in force, the
suggested one, the protocol's line and the readings, clicks Apply, and the plan's history shows version 2 at 12 U,
applied from the alert. The team's titration page is then where she turns suggestions off."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import expect

from telemon import treatment
from tests.e2e.test_dashboard_browser import ARTIFACTS, chromium, telemon_serve
from tests.support import dose_review as suggestions
from tests.test_ui_toolkit import PASSWORD, make_clinician, make_patient, make_team

pytestmark = pytest.mark.slow


async def test_a_diabetologist_applies_a_dose_suggestion(database_url: str, mqtt_url: str, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, role="diabetologist", language="en")
    patient, device = await make_patient(db, team, "Léa Martin", treatment="insulin")
    alert_id = await suggestions.engine_suggestion(db, patient, device, units=10)
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

        await page.goto(f"{base}/patients/{patient}")
        card = page.locator(f"#dose-review-{alert_id}")
        await expect(card.locator(".dose-current")).to_have_text("NPH 10 U")
        await expect(card.locator(".dose-suggested")).to_have_text("NPH 12 U")
        await expect(card.locator(".dose-protocol")).to_contain_text("+2 U when fasting glucose was above target")
        readings = page.locator(f"#alert-{alert_id} .evidence-readings tbody tr")
        await expect(readings).to_have_count(3)
        await expect(readings.first).to_be_visible()  # the evidence is open on a suggestion
        await page.screenshot(path=str(ARTIFACTS / "dose-review.png"), full_page=True)

        await card.get_by_role("button", name="Apply: 12 U").click()
        await expect(page).to_have_url(f"{base}/patients/{patient}/treatment#plan-history")
        await expect(page.locator("p.flash")).to_have_text(
            "Suggestion applied: a new version of the treatment plan is in force."
        )
        newest = page.locator("#plan-history tbody tr").first
        await expect(newest).to_have_attribute("data-version", "2")
        await expect(newest.locator(".plan-basal")).to_contain_text("NPH 12 U")
        await expect(newest.locator(".plan-origin")).to_have_text(f"Dose review suggestion applied (alert {alert_id})")
        await expect(page.locator("#plan-in-force")).to_contain_text("version 2")

        # back on the patient page the suggestion says it was applied, and nothing is left to apply
        await page.goto(f"{base}/patients/{patient}")
        await expect(page.locator(f"#dose-review-{alert_id} .dose-applied")).to_have_text("Applied: plan version 2")
        await expect(page.get_by_role("button", name="Apply: 12 U")).to_have_count(0)

        # the team's protocol: suggestions turned off from the navigation bar
        await page.get_by_role("navigation").get_by_role("link", name="Titration").click()
        await expect(page.locator("#default-source")).to_contain_text("Davies")
        await page.get_by_label("Suggest dose changes for the team's patients").uncheck()
        await page.get_by_role("button", name="Save the protocol").click()
        await expect(page.locator("p.flash").first).to_have_text("Titration protocol saved.")
        await expect(page.locator("#suggestions-off")).to_be_visible()
        assert errors == []
    current = await treatment.current_plan(db, patient)
    assert current is not None and current.version == 2 and current.basal == treatment.Basal("NPH", 12.0, "22:00")
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id) == "resolved"
