"""The companion app in a real browser at a phone's size (360 × 740, Debian's headless Chromium driven by
Playwright) against ``telemon serve`` on the test database: a patient pairs the app with the code of her pairing
sheet, records three readings and sees each judged at once and coloured in her logbook; the network goes away, she
records two more, reloads the app (the service worker opens it), and when the network comes back the queue is sent:
the database holds each of the five readings exactly once.

The record screen and the logbook are also written to ``docs/img/`` for README (when missing, or when
TELEMON_DOCS_SCREENSHOTS=1 asks to refresh them); the screenshots are not assertions."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
from playwright.async_api import Page, expect

from telemon import devices
from tests.e2e.test_dashboard_browser import ARTIFACTS, DOCS_IMG, chromium, telemon_serve
from tests.support.factories import patient_with_device
from tests.test_ui_toolkit import Team, make_clinician

pytestmark = pytest.mark.slow

PHONE = {"width": 360, "height": 740}


async def controlled_by_service_worker(page: Page, timeout_s: float = 15.0) -> None:
    """Wait until the app's service worker controls the page. Polled with ``evaluate`` of a function: Playwright's
    ``wait_for_function`` (1.65) evaluates a predicate given as text with ``eval`` in the page, which the app's
    Content-Security-Policy (``script-src 'self'``, no ``unsafe-eval``) rightly refuses."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await page.evaluate("() => navigator.serviceWorker.controller !== null"):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no service worker controls {page.url} after {timeout_s:g} s")
        await asyncio.sleep(0.1)


async def _docs_shot(page: Page, name: str) -> None:
    """The phone's screen to tests/artifacts/, and to docs/img/ for README when asked (not an assertion)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    target = DOCS_IMG / f"{name}.png"
    if not target.exists() or os.environ.get("TELEMON_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(target), full_page=True)


async def _record(page: Page, value: str, context: str, *, meal: str | None = None, minutes: str = "") -> None:
    await page.get_by_role("link", name="Record").click()
    await page.get_by_label("Glucose (g/L)").fill(value)
    await page.get_by_label("When").select_option(label=context)
    if meal is not None:
        await page.get_by_label("Meal", exact=True).select_option(label=meal)
        await page.get_by_label("Minutes after the start of the meal").fill(minutes)
    await page.get_by_role("button", name="Save the reading").click()


async def test_a_patient_pairs_records_offline_and_nothing_is_lost_or_doubled(
    database_url: str, mqtt_url: str, db: asyncpg.Pool
) -> None:
    her = await patient_with_device(db, kind="app", profile="FR")
    await db.execute("UPDATE patients SET display_name = 'Léa Moreau', language = 'en' WHERE id = $1", her.patient_id)
    async with db.acquire() as conn:
        code = await devices.new_pairing_code(conn, patient_id=her.patient_id, device_id=her.device_id, actor="test")

    async with telemon_serve(database_url, mqtt_url) as base, chromium() as browser:
        context = await browser.new_context(
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=False,
            has_touch=True,
            locale="en-GB",
            timezone_id="Europe/Paris",
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # pairing with the code of her sheet
        await page.goto(f"{base}/app")
        await expect(page.get_by_role("heading", name="Connect the app")).to_be_visible()
        await page.get_by_label("Pairing code").fill(code.code)
        await page.get_by_role("button", name="Connect").click()
        await expect(page.get_by_role("heading", name="Record a reading")).to_be_visible()
        assert await page.evaluate("localStorage.getItem('telemon.token') !== null")
        # the service worker controls the page before the network goes away
        await controlled_by_service_worker(page)

        # three readings, each judged at once against her own targets (fasting < 0.95 g/L, FR)
        judgement = page.locator("#judgement")
        await _record(page, "0,82", "Fasting (on waking)")
        await expect(judgement).to_contain_text("0.82 g/L — in target")
        await expect(judgement).to_have_class("judgement reading reading-in")
        await _record(page, "1,05", "Fasting (on waking)")
        await expect(judgement).to_contain_text("above target")
        await _record(page, "1,10", "After a meal", meal="Lunch", minutes="120")
        await expect(judgement).to_contain_text("in target (target: below 1.20 g/L)")
        await expect(page.locator("#receipt")).to_contain_text("1 stored")
        await expect(page.locator("#queue-count")).to_have_text("")
        await _docs_shot(page, "app-record")

        await page.get_by_role("link", name="My logbook").click()
        logbook = page.locator("#logbook")
        await expect(logbook.locator(".reading:not(.pending)")).to_have_count(3)
        await expect(logbook.locator(".reading-in")).to_have_count(2)
        await expect(logbook.locator(".reading-above")).to_have_count(1)
        await expect(logbook.locator("td.cell-above[data-slot=fasting]")).to_have_count(1)
        await expect(logbook.locator("td.cell-in[data-slot=lunch]")).to_have_count(1)
        await expect(page.locator("#targets")).to_contain_text("< 0.95 g/L")
        await _docs_shot(page, "app-logbook")

        # offline: two more, kept on the phone, through a reload
        await context.set_offline(True)
        await expect(page.locator("#network")).to_contain_text("Offline")
        await _record(page, "0,90", "Fasting (on waking)")
        await expect(judgement).to_contain_text("Saved on the phone")
        await _record(page, "0,55", "Bedtime")
        await expect(judgement).to_contain_text("hypoglycaemia")
        await expect(page.locator("#queue-count")).to_have_text("2 entry(ies) waiting for the network")
        assert await db.fetchval("SELECT count(*) FROM readings WHERE patient_id = $1", her.patient_id) == 3

        reloaded = await page.reload()
        assert reloaded is not None and reloaded.from_service_worker
        await expect(page.locator("#queue-count")).to_have_text("2 entry(ies) waiting for the network")
        await page.get_by_role("link", name="My logbook").click()
        await expect(logbook.locator(".reading.pending")).to_have_count(2)
        await expect(logbook.locator(".reading:not(.pending)")).to_have_count(3)  # as last loaded

        # back online: the queue goes, in order, and the receipt says what the server stored
        await context.set_offline(False)
        await expect(page.locator("#receipt")).to_contain_text("2 stored, 0 already there, 0 refused", timeout=20_000)
        await expect(logbook.locator(".reading.pending")).to_have_count(0)
        await expect(logbook.locator(".reading:not(.pending)")).to_have_count(5)
        await expect(logbook.locator(".reading-hypo")).to_have_count(1)

        rows = await db.fetch(
            "SELECT external_id, value_raw, unit_raw FROM readings WHERE patient_id = $1 ORDER BY measured_at",
            her.patient_id,
        )
        assert [(r["value_raw"], r["unit_raw"]) for r in rows] == [
            (0.82, "g/L"),
            (1.05, "g/L"),
            (1.10, "g/L"),
            (0.90, "g/L"),
            (0.55, "g/L"),
        ]
        assert len({r["external_id"] for r in rows}) == 5
        assert all(r["external_id"].startswith("app-") for r in rows)
        assert errors == []
        await context.close()


async def test_a_patient_pairs_from_the_qr_code_and_talks_with_her_team(
    database_url: str, mqtt_url: str, db: asyncpg.Pool
) -> None:
    """The QR code of the pairing sheet opens ``/app#pair=<code>``; a message of the team appears in the open app
    at once (pushed on her event stream: the app's poll is once a minute), marked new, and her reply reaches the
    team's conversation."""
    from clinic import messages  # the conversation's store, which the messages' domain owns

    her = await patient_with_device(db, kind="app", profile="NICE")
    await db.execute("UPDATE patients SET language = 'en' WHERE id = $1", her.patient_id)
    team = Team(her.team_id, "")
    email = await make_clinician(db, team)
    clinician_id = await db.fetchval("SELECT id FROM clinicians WHERE email = $1", email)
    async with db.acquire() as conn:
        code = await devices.new_pairing_code(conn, patient_id=her.patient_id, device_id=her.device_id, actor="test")

    async with telemon_serve(database_url, mqtt_url) as base, chromium() as browser:
        context = await browser.new_context(viewport=PHONE, has_touch=True, locale="en-GB")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{base}/app#pair={code.code}")
        await expect(page.get_by_role("heading", name="Record a reading")).to_be_visible()
        await expect(page.get_by_label("Glucose (mmol/L)")).to_be_visible()  # NICE: her unit is mmol/L
        await page.get_by_role("link", name="Messages").click()
        await expect(page.locator("#conversation")).to_contain_text("No message yet.")

        async with db.acquire() as conn, conn.transaction():
            await messages.send(
                conn, her.patient_id, "Please measure after lunch too.", actor="test", clinician_id=clinician_id
            )
        team_message = page.locator(".message.from-team")
        await expect(team_message).to_contain_text("Please measure after lunch too.", timeout=8_000)
        await expect(team_message).to_have_class("message from-team new")
        await expect(page.locator("#unread")).to_have_text("1")

        await page.get_by_label("Your message").fill("Done, thank you.")
        await page.get_by_role("button", name="Send").click()
        await expect(page.locator(".message.from-me")).to_contain_text("Done, thank you.")
        await expect(page.locator("#conversation li").last).to_contain_text("Done, thank you.")  # newest last
        stored = await db.fetch("SELECT author, body FROM messages WHERE patient_id = $1 ORDER BY id", her.patient_id)
        assert [(r["author"], r["body"]) for r in stored] == [
            ("clinician", "Please measure after lunch too."),
            ("patient", "Done, thank you."),
        ]
        # she has seen it: leaving the conversation clears the mark
        await page.get_by_role("link", name="Record").click()
        await page.get_by_role("link", name="Messages").click()
        await expect(page.locator(".message.new")).to_have_count(0, timeout=15_000)
        assert errors == []
        await context.close()
