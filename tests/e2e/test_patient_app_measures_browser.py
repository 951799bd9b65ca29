"""The companion app's other kinds in a real browser at a phone's size (360 × 740, headless Chromium driven by
Playwright) against ``telemon serve`` on the test database: a patient on insulin pairs the app, the network goes
away, she records her bedtime dose (pre-filled from her plan in force, she changes the units) and her blood
pressure, reloads the app (the service worker opens it, the queue is in IndexedDB), sees both waiting in her
logbook, and when the network comes back they are sent: the receipt says so, each is stored exactly once, and her
dose stands beside her readings in the logbook. Online, she then records her weight and a urine ketone strip."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from playwright.async_api import Page, expect

from telemon import devices, treatment
from tests.e2e.test_dashboard_browser import chromium, telemon_serve
from tests.e2e.test_patient_app_browser import PHONE, _docs_shot, controlled_by_service_worker
from tests.support.factories import patient_with_device

pytestmark = pytest.mark.slow


async def _choose(page: Page, kind: str) -> None:
    await page.get_by_role("link", name="Record").click()
    await page.get_by_role("radio", name=kind, exact=True).check()


async def test_she_records_a_dose_and_a_blood_pressure_offline_and_they_are_sent_once(
    database_url: str, mqtt_url: str, db: asyncpg.Pool
) -> None:
    her = await patient_with_device(db, kind="app", profile="FR")
    await db.execute("UPDATE patients SET display_name = 'Inès Martin', language = 'en' WHERE id = $1", her.patient_id)
    async with db.acquire() as conn:
        plan = treatment.Plan(
            "insulin",
            basal=treatment.Basal("NPH", 10, "22:00"),
            prandial_product="NovoRapid",
            prandial={"breakfast": 4, "lunch": 4, "dinner": 6},
        )
        await treatment.new_version(conn, her.patient_id, plan, actor="test")
        code = await devices.new_pairing_code(conn, patient_id=her.patient_id, device_id=her.device_id, actor="test")

    async with telemon_serve(database_url, mqtt_url) as base, chromium() as browser:
        context = await browser.new_context(viewport=PHONE, has_touch=True, locale="en-GB", timezone_id="Europe/Paris")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{base}/app#pair={code.code}")
        await expect(page.get_by_role("heading", name="Record a reading")).to_be_visible()
        await controlled_by_service_worker(page)

        # five large choices at a phone's width, nothing wider than the screen
        kinds = page.locator("#kinds label")
        await expect(kinds).to_have_count(5)
        for k in range(5):
            box = await kinds.nth(k).bounding_box()
            assert box is not None and box["height"] >= 48
        assert await page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

        await context.set_offline(True)
        await expect(page.locator("#network")).to_contain_text("Offline")

        # the bedtime dose of her plan, pre-filled; she injected 12 units tonight
        await _choose(page, "Insulin dose")
        await page.get_by_label("Injection", exact=True).select_option(label="Bedtime: NPH 10 U")
        units = page.get_by_label("Units injected")
        await expect(units).to_have_value("10")
        await expect(page.get_by_label("Injection time")).to_have_value("bedtime")
        await expect(page.get_by_label("Product")).to_have_value("NPH")
        await expect(page.locator("#dose-plan")).to_contain_text("Prescribed: 10 U")
        await units.fill("12")
        await _docs_shot(page, "app-dose")
        await page.get_by_role("button", name="Save the dose").click()
        saved = page.locator("#measure-saved")
        await expect(saved).to_contain_text("Saved: NPH 12 U (Bedtime)")
        await expect(saved).to_contain_text("Saved on the phone")

        # her blood pressure; a swapped pair is refused on the phone, with what to do
        await _choose(page, "Blood pressure")
        await page.get_by_label("Systolic (high)").fill("91")
        await page.get_by_label("Diastolic (low)").fill("142")
        await page.get_by_role("button", name="Save the blood pressure").click()
        await expect(page.locator("#bp-error")).to_contain_text("the high one first")
        await page.get_by_label("Systolic (high)").fill("142")
        await page.get_by_label("Diastolic (low)").fill("91")
        await page.get_by_label("Pulse (optional)").fill("80")
        await page.get_by_role("button", name="Save the blood pressure").click()
        await expect(saved).to_contain_text("Blood pressure 142/91 mmHg, pulse 80/min")
        await expect(page.locator("#queue-count")).to_have_text("2 entry(ies) waiting for the network")
        assert await db.fetchval("SELECT count(*) FROM measurements WHERE patient_id = $1", her.patient_id) == 0

        reloaded = await page.reload()
        assert reloaded is not None and reloaded.from_service_worker
        await expect(page.locator("#queue-count")).to_have_text("2 entry(ies) waiting for the network")
        await page.get_by_role("link", name="My logbook").click()
        await expect(page.locator("#logbook .dose.pending")).to_have_count(1)
        measures = page.locator("#measures")
        await expect(measures.locator("li.pending")).to_have_count(2)

        # back online: the queue goes, the receipt says what the server stored
        await context.set_offline(False)
        await expect(page.locator("#receipt")).to_contain_text("2 stored, 0 already there, 0 refused", timeout=20_000)
        await expect(measures.locator("li.pending")).to_have_count(0)
        await expect(measures.locator("li[data-kind=blood_pressure]")).to_contain_text("142/91 mmHg, pulse 80/min")
        dose = page.locator("#logbook .dose:not(.pending)")
        await expect(dose).to_have_count(1)
        await expect(dose).to_contain_text("12 U")
        await _docs_shot(page, "app-measures")
        rows = await db.fetch(
            "SELECT kind, value, insulin, product, slot, systolic, diastolic, pulse, external_id FROM measurements"
            " WHERE patient_id = $1 ORDER BY measured_at",
            her.patient_id,
        )
        first = rows[0]
        assert (first["kind"], first["value"], first["insulin"], first["product"], first["slot"]) == (
            "insulin", 12.0, "basal", "NPH", "bedtime"
        )  # fmt: skip
        assert [(r["systolic"], r["diastolic"], r["pulse"]) for r in rows][1] == (142, 91, 80)
        assert len({r["external_id"] for r in rows}) == 2 and all(r["external_id"].startswith("app-") for r in rows)

        # online: her weight and a urine ketone strip, sent at once
        await _choose(page, "Weight")
        await page.get_by_label("My weight").fill("72,5")
        await page.get_by_role("button", name="Save the weight").click()
        await expect(page.locator("#receipt")).to_contain_text("1 stored", timeout=20_000)
        await _choose(page, "Ketones")
        await page.get_by_role("radio", name="Urine (strip)").check()
        await page.get_by_label("Urine strip result").select_option(label="Trace")
        await page.get_by_role("button", name="Save the ketones").click()
        await expect(saved).to_contain_text("Urine ketones: Trace")
        for _ in range(100):  # sent at once: stored within seconds
            if await db.fetchval("SELECT count(*) FROM measurements WHERE patient_id = $1", her.patient_id) == 4:
                break
            await asyncio.sleep(0.2)
        stored = await db.fetch(
            "SELECT kind, value, unit_raw, urine FROM measurements WHERE patient_id = $1 AND kind IN ('weight', 'ketone')",
            her.patient_id,
        )
        assert {(r["kind"], r["value"], r["unit_raw"], r["urine"]) for r in stored} == {
            ("weight", 72.5, "kg", None),
            ("ketone", None, None, "trace"),
        }
        assert errors == []
        await context.close()
