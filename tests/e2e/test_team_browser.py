"""Team administration in a real browser: Chromium against ``telemon serve`` with a real SMTP server (aiosmtpd)
started by the test. An administrator invites a midwife; the invitation e-mail arrives; its link opens the page
where the midwife chooses her name and password; she signs in; the administrator deactivates her, and the
midwife's open session is refused at her next page."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import expect

from tests.e2e.test_dashboard_browser import ARTIFACTS, chromium, telemon_serve
from tests.support.smtp import body_of, link_in, smtp_server
from tests.test_ui_toolkit import PASSWORD, make_clinician, make_team

pytestmark = pytest.mark.slow

MIDWIFE_PASSWORD = "sage-femme de garde 2026"


async def test_an_admin_invites_a_midwife_who_signs_in_until_deactivated(
    database_url: str, mqtt_url: str, db: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = await make_team(db)
    admin_email = await make_clinician(db, team, role="admin", language="en")
    midwife_email = f"lea.{team.id.hex[:8]}@chu.example"
    with smtp_server() as (smtp_url, inbox):
        monkeypatch.setenv("TELEMON_SMTP_URL", smtp_url)  # telemon serve inherits the test's environment
        monkeypatch.setenv("TELEMON_SMTP_FROM", "telemon@chu.example")
        async with telemon_serve(database_url, mqtt_url) as base, chromium() as browser:
            errors: list[str] = []
            admin_context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
            admin = await admin_context.new_page()
            admin.on("pageerror", lambda exc: errors.append(str(exc)))
            await admin.goto(f"{base}/login")
            await admin.fill("#email", admin_email)
            await admin.fill("#password", PASSWORD)
            await admin.click("form.stacked button[type=submit]")
            await admin.get_by_role("link", name="Team", exact=True).click()
            await expect(admin).to_have_url(f"{base}/team")

            await admin.fill("#invite-email", midwife_email)
            await admin.select_option("#invite-role", "midwife")
            await admin.select_option("#invite-language", "en")
            await admin.get_by_role("button", name="Send the invitation").click()
            await expect(admin.locator("p.flash")).to_have_text("The invitation is sent.")
            invited = admin.locator(f'tr.invitation[data-email="{midwife_email}"]')
            await expect(invited).to_contain_text("invited, link valid until")

            message = await inbox.wait()
            assert message["To"] == midwife_email and "Midwife" in body_of(message)
            link = link_in(message)
            assert link.startswith(f"{base}/welcome/")

            midwife_context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
            midwife = await midwife_context.new_page()
            midwife.on("pageerror", lambda exc: errors.append(str(exc)))
            await midwife.goto(link)
            await expect(midwife.locator("h1")).to_have_text(f"Join {team.name}")
            await midwife.fill("#display_name", "Léa Martin")
            await midwife.select_option("#language", "en")
            await midwife.fill("#password", MIDWIFE_PASSWORD)
            await midwife.fill("#password_again", MIDWIFE_PASSWORD)
            await midwife.screenshot(path=str(ARTIFACTS / "team-welcome.png"), full_page=True)
            await midwife.get_by_role("button", name="Create my account").click()
            await expect(midwife.locator("#account-done")).to_have_text("Your account is ready: sign in.")
            await midwife.click("#sign-in")
            await midwife.fill("#email", midwife_email)
            await midwife.fill("#password", MIDWIFE_PASSWORD)
            await midwife.click("form.stacked button[type=submit]")
            await expect(midwife).to_have_url(f"{base}/")
            await expect(midwife.locator("header.top .who")).to_contain_text("Léa Martin")
            assert await midwife.locator('nav a[href="/team"]').count() == 0  # not an administrator

            await admin.reload()
            row = admin.locator(f'tr.member[data-email="{midwife_email}"]')
            await expect(row).to_contain_text("Midwife")
            await admin.screenshot(path=str(ARTIFACTS / "team.png"), full_page=True)
            await row.get_by_role("button", name="Deactivate").click()
            await expect(admin.locator("p.flash")).to_have_text(
                "The clinician is deactivated; her sessions have ended."
            )
            await expect(admin.locator(f'tr.member[data-email="{midwife_email}"]')).to_have_attribute(
                "data-status", "deactivated"
            )

            await midwife.goto(f"{base}/patients")
            await expect(midwife).to_have_url(f"{base}/login?next=%2Fpatients")
            await expect(midwife.locator("#email")).to_be_visible()
            assert errors == []
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE action IN ('clinician.invite', 'clinician.create', 'clinician.deactivate')"
            " AND (detail->>'team_id' = $1 OR detail->>'clinician_id' IN"
            " (SELECT id::text FROM clinicians WHERE lower(email) = lower($2)))",
            str(team.id),
            midwife_email,
        )
        == 3
    )
