"""The start and the end of a patient's monitoring in a real browser (Debian's headless Chromium driven by
Playwright) against ``telemon serve`` with the MQTT consumer and the engine, on the test database and broker.

A midwife enrols a patient from the navigation bar (French decimal commas in the OGTT), pairs her phone app and
gets the pairing sheet, which prints alone; a reading sent over HTTP with the sheet's credentials appears on the
patient page without a reload; she revokes the device and the next reading is refused; she records the delivery,
archives the patient, and the patient leaves the triage while staying in the patient list with a badge.

The enrolment form and the pairing sheet are also written to ``docs/img/`` for README (when missing, or when
TELEMON_DOCS_SCREENSHOTS=1 asks to refresh them); the screenshots are not assertions."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from tests.e2e.test_dashboard_browser import ARTIFACTS, DOCS_IMG, chromium, telemon_serve
from tests.test_ui_toolkit import PASSWORD, add_alert, make_clinician, make_team

pytestmark = pytest.mark.slow

PARIS = ZoneInfo("Europe/Paris")


async def _docs_shot(page: Page, name: str, part: Locator) -> None:
    """A screenshot of ``part`` to tests/artifacts/, and to docs/img/ for README when asked (not an assertion)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await part.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    target = DOCS_IMG / f"{name}.png"
    if not target.exists() or os.environ.get("TELEMON_DOCS_SCREENSHOTS") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        await part.screenshot(path=str(target))


def _reading(value_mmol: float) -> dict[str, object]:
    return {
        "readings": [
            {
                "id": f"e2e-{uuid.uuid4().hex[:8]}",
                "measured_at": (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=3)).isoformat(),
                "value": value_mmol,
                "unit": "mmol/L",
                "kind": "smbg",
                "context": "fasting",
            }
        ]
    }


async def test_a_midwife_enrols_pairs_revokes_and_archives(database_url: str, mqtt_url: str, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, role="midwife", language="en")
    today = dt.datetime.now(PARIS).date()
    hospital_number = f"H-{uuid.uuid4().hex[:6].upper()}"
    async with telemon_serve(database_url, mqtt_url) as base, chromium() as browser, httpx.AsyncClient() as device:
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        await page.goto(f"{base}/login")
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(f"{base}/")

        # enrol, from the navigation bar
        await page.get_by_role("navigation").get_by_role("link", name="Enrol a patient").click()
        await expect(page.get_by_role("heading", level=1)).to_have_text("Enrol a patient")
        await page.get_by_label("Name").fill("Léa Moreau")
        await page.get_by_label("Hospital number").fill(hospital_number)
        await page.get_by_label("Birth year").fill("1991")
        await page.get_by_label("Due date").fill((today + dt.timedelta(days=98)).isoformat())
        await page.get_by_label("Diagnosis date").fill((today - dt.timedelta(days=2)).isoformat())
        await page.get_by_label("Unit of the results").select_option("mmol/L")
        await page.get_by_label("Fasting").fill("5,3")
        await page.get_by_label("At 1 hour").fill("10,4")
        await page.get_by_label("At 2 hours").fill("8,7")
        await page.get_by_label("Treatment").select_option("diet")
        await page.get_by_label("Note (optional)").fill("Works nights: readings at her own meal times.")
        await page.locator("#f-note").blur()
        await _docs_shot(page, "enrol-form", page.locator("main"))
        await page.get_by_role("button", name="Enrol").click()
        await expect(page.locator("p.flash")).to_have_text("Patient enrolled. Pair her devices next.")
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Léa Moreau")
        patient_url = page.url
        patient_id = uuid.UUID(patient_url.rsplit("/", 1)[1])

        # pair her phone app: the sheet, shown once, prints alone
        await page.get_by_role("link", name="Devices, pairing and end of monitoring").click()
        await page.get_by_label("telemon phone app").check()
        await page.get_by_label("Label (optional").fill("her phone")
        await page.get_by_role("button", name="Pair and show the sheet").click()
        sheet = page.locator("article.pairing-sheet")
        await expect(sheet.get_by_role("heading", level=1)).to_have_text("Pairing sheet")
        await expect(sheet.locator(".sheet-qr svg.qr")).to_be_visible()
        token = await sheet.locator('code[data-field="token"]').inner_text()
        readings_url = await sheet.locator('code[data-field="readings_url"]').inner_text()
        device_id = await sheet.locator('code[data-field="device_id"]').inner_text()
        assert readings_url == f"{base}/api/v1/readings"
        await expect(sheet.locator('code[data-field="mqtt_username"]')).to_have_text(device_id)
        await expect(sheet.locator('code[data-field="pairing_code"]')).to_have_text(
            re.compile(r"^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$")
        )
        await _docs_shot(page, "pairing-sheet", sheet)
        await page.emulate_media(media="print")
        assert await page.locator("header.top").evaluate("node => getComputedStyle(node).display") == "none"
        assert await page.locator("#print-sheet").evaluate("node => getComputedStyle(node).display") == "none"
        assert await sheet.evaluate("node => getComputedStyle(node).display") != "none"
        await page.pdf(path=str(ARTIFACTS / "pairing-sheet.pdf"), format="A4", print_background=True)
        await page.emulate_media(media="screen")

        # a reading sent with the sheet's credentials appears on the open patient page, without a reload
        await page.goto(patient_url)
        await expect(page.locator("#live-status")).to_have_text("Live updates on")
        await page.evaluate("window.__sameDocument = true")
        sent = await device.post(readings_url, json=_reading(2.7), headers={"Authorization": f"Bearer {token}"})
        assert sent.status_code == 200 and sent.json()["accepted"] == 1
        cell = page.locator(f'table.logbook tr[data-day="{today.isoformat()}"] td[data-slot="fasting"]')
        await expect(cell.locator("span.v")).to_have_text("49", timeout=30_000)
        await expect(page.locator('#alerts [data-rule="hypo_l2"]').first).to_be_visible(timeout=30_000)
        assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
        await page.goto(f"{base}/")
        await expect(page.locator(f'tr[data-patient-id="{patient_id}"]')).to_be_visible()

        # revoke the phone: the next reading is refused
        await page.goto(f"{patient_url}/devices")
        row = page.locator(f'tr.device-row[data-device-id="{device_id}"]')
        await expect(row.locator("td.readings-7d")).to_have_text("1")
        await row.get_by_role("button", name="Revoke").click()
        await expect(page.locator("p.flash")).to_have_text("Device revoked: it can no longer send.")
        await expect(row).to_have_class("device-row revoked")
        await page.screenshot(path=str(ARTIFACTS / "devices.png"), full_page=True)
        refused = await device.post(readings_url, json=_reading(5.1), headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403  # the token is known, its device revoked

        # the delivery, then the end of monitoring: she leaves the triage, and stays in the list
        await page.goto(patient_url)
        await page.get_by_label("Delivery date").fill(today.isoformat())
        await page.get_by_role("button", name="Record the delivery").click()
        await add_alert(db, patient_id)  # an alert raised after the delivery: she is on the triage again
        await page.goto(f"{base}/")
        await expect(page.locator(f'tr[data-patient-id="{patient_id}"]')).to_be_visible()
        await page.goto(f"{patient_url}/devices")
        await expect(page.get_by_text("Delivery recorded on")).to_be_visible()
        await page.get_by_role("button", name="Archive: end monitoring").click()
        await expect(page.locator("p.flash")).to_have_text("Patient archived: monitoring ended.")
        await page.goto(f"{base}/")
        await expect(page.get_by_role("heading", name="Patients who need action")).to_be_visible()
        await expect(page.locator(f'tr[data-patient-id="{patient_id}"]')).to_have_count(0)
        await page.goto(f"{base}/patients?q={hospital_number}")
        await expect(page.locator(f'tr[data-patient-id="{patient_id}"] .badge.archived')).to_have_text("archived")
        assert errors == []
        await context.close()
    actions = {r["action"] for r in await db.fetch("SELECT action FROM audit_log WHERE patient_id = $1", patient_id)}
    assert {"patient.create", "device.add", "device.revoke", "patient.delivery", "patient.archive"} <= actions
    status = await db.fetchval("SELECT count(*) FROM alerts WHERE patient_id = $1 AND status <> 'resolved'", patient_id)
    assert status == 0
