"""The dashboard in a real browser: Playwright driving Debian's headless Chromium against ``telemon serve`` (a
real uvicorn process with the MQTT consumer and the engine) on the test database and broker.

A clinician signs in, sees an alert appear live (no reload) after a reading is published over MQTT,
acknowledges it with the keyboard, opens the patient, checks a logbook cell's colour and its text, switches to
mmol/L, and prints. Screenshots go to ``tests/artifacts/``; the triage and patient screenshots are also written
to ``docs/img/`` for README."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, async_playwright, expect

from telemon.embedded import free_port
from tests.e2e.seed import PARIS, Seeded, seed
from tests.support.mqtt import forget_session, publish, publisher
from tests.test_ui_toolkit import PASSWORD, make_team

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
DOCS_IMG = ROOT / "docs" / "img"
HYPO_CELL_BACKGROUND = "rgb(248, 207, 210)"  # --hypo-bg in clinician_ui/static/app.css


@contextlib.asynccontextmanager
async def telemon_serve(database_url: str, mqtt_url: str) -> AsyncIterator[str]:
    """``telemon serve --roles api,mqtt`` in a process of its own; yields its base URL."""
    port = free_port()
    client_id = f"e2e-consumer-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "TELEMON_DATABASE_URL": database_url,
        "TELEMON_MQTT_URL": mqtt_url,
        "TELEMON_MQTT_CLIENT_ID": client_id,
        "TELEMON_LOG_LEVEL": "WARNING",
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "e2e-server.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "telemon", "serve", "--roles", "api,mqtt", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient() as http:
                for _ in range(300):
                    assert process.poll() is None, "telemon serve exited (see tests/artifacts/e2e-server.log)"
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"{base}/readyz", timeout=1)).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("telemon serve not ready")
            yield base
        finally:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            forget_session(mqtt_url, client_id)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test installs it as root)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


async def _shot(page: Page, name: str, *, docs: tuple[Locator, Locator] | None = None) -> None:
    """A full-page screenshot to tests/artifacts/; with ``docs``, that part of the page also to docs/img/ (when
    the image is missing, or TELEMON_DOCS_SCREENSHOTS=1 asks to refresh it: README shows these)."""
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    target = DOCS_IMG / f"{name}.png"
    if docs is not None and (not target.exists() or os.environ.get("TELEMON_DOCS_SCREENSHOTS") == "1"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        top, bottom = (
            await docs[0].bounding_box(),
            await docs[1].bounding_box(),
        )  # from the top of one to the end of the other
        assert top is not None and bottom is not None
        y = max(0.0, top["y"] - 8)
        clip = {"x": 0, "y": y, "width": 1440, "height": min(bottom["y"] + bottom["height"] + 8 - y, 2400)}
        await page.screenshot(path=str(target), full_page=True, clip=clip)  # type: ignore[arg-type]


def _send_hypo(mqtt_url: str, device_id: str, at: dt.datetime) -> None:
    with publisher(mqtt_url) as client:
        publish(
            client,
            device_id,
            {
                "readings": [
                    {
                        "id": "e2e-hypo",
                        "measured_at": at.isoformat(),
                        "value": 2.7,
                        "unit": "mmol/L",
                        "kind": "smbg",
                        "context": "fasting",
                    }
                ]
            },
        )


async def test_a_clinician_sees_an_alert_arrive_live_and_handles_it(
    database_url: str, mqtt_url: str, db: asyncpg.Pool
) -> None:
    seeded: Seeded = await seed(db, await make_team(db))
    async with telemon_serve(database_url, mqtt_url) as base, chromium() as browser:
        context = await browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))

        # sign in (a page asks for the login, then comes back)
        await page.goto(f"{base}/")
        await expect(page).to_have_url(f"{base}/login?next=%2F")
        await page.get_by_label("Email").fill(seeded.email)  # the browser asks for English (en-GB)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        await expect(page).to_have_url(f"{base}/")
        await expect(page.get_by_role("heading", name="Patients who need action")).to_be_visible()
        await expect(page.locator("#live-status")).to_have_text("Live updates on")
        await _shot(page, "triage-before")
        live_row = page.locator(f'tr[data-patient-id="{seeded.live_patient}"]')
        assert await live_row.locator('li[data-rule="hypo_l2"]').count() == 0

        # a reading published over MQTT: the alert appears without a reload
        await page.evaluate("window.__sameDocument = true")
        now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
        await asyncio.to_thread(_send_hypo, mqtt_url, seeded.live_device, now)
        alert = live_row.locator('li[data-rule="hypo_l2"]')
        await expect(alert).to_be_visible(timeout=30_000)
        assert await page.evaluate("window.__sameDocument === true"), "the page was reloaded"
        await expect(alert.locator("span.badge")).to_have_text("⚠ Urgent")
        await expect(alert.locator("span.message")).to_contain_text("below 54 mg/dL")
        await expect(page.locator("#announcer")).to_have_text("New alert")
        await expect(live_row).to_have_attribute("data-severity", "urgent")
        order = await page.locator("tr.triage-row").evaluate_all("rows => rows.map(r => r.dataset.severity)")
        rank = {"urgent": 2, "warning": 1, "info": 0}
        assert [rank[s] for s in order] == sorted((rank[s] for s in order), reverse=True)  # most severe first
        await _shot(page, "triage", docs=(page.locator("header.top"), page.locator("tr.triage-row").nth(2)))

        # acknowledge it from the list, with the keyboard
        button = alert.get_by_role("button", name="Acknowledge: Level 2 hypoglycaemia, Camille Durand")
        await button.focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("p.flash")).to_have_text("Alert acknowledged.")
        await expect(
            page.locator(f'tr[data-patient-id="{seeded.live_patient}"] li[data-rule="hypo_l2"]')
        ).to_have_count(0)
        status = await db.fetchval(
            "SELECT status FROM alerts WHERE patient_id = $1 AND rule = 'hypo_l2'", seeded.live_patient
        )
        assert status == "acknowledged"

        # open the patient: today's fasting cell is coloured as a hypoglycaemia, with an icon and words
        await page.goto(f"{base}/patients")
        await page.get_by_role("link", name="Camille Durand").click()
        await expect(page.get_by_role("heading", level=1)).to_contain_text("Camille Durand")
        today = dt.datetime.now(PARIS).date().isoformat()
        cell = page.locator(f'table.logbook tr[data-day="{today}"] td[data-slot="fasting"]')
        await expect(cell).to_have_class("cell cell-hypo")
        background = await cell.evaluate("node => getComputedStyle(node).backgroundColor")
        assert background == HYPO_CELL_BACKGROUND
        await expect(cell.locator("span.v")).to_have_text("49")
        await expect(cell.locator("span.icon")).to_have_text("▼")
        await expect(cell.locator("span.visually-hidden")).to_have_text("hypoglycaemia")
        in_target = page.locator("table.logbook td.cell-in").first
        assert await in_target.evaluate("node => getComputedStyle(node).backgroundColor") != background
        await _shot(page, "patient-meter")

        # switch to mmol/L from the header: every value follows
        await page.get_by_label("Unit").select_option("mmol/L")
        await page.get_by_role("button", name="Apply").click()
        await expect(page.locator("p.flash")).to_have_text("Preferences saved.")
        await expect(cell.locator("span.v")).to_have_text("2.7")
        await expect(page.locator("#logbook-title .unit-note")).to_have_text("(mmol/L)")
        await expect(page.locator("#history-alerts, #alerts").locator("p.message").first).to_contain_text("mmol/L")

        # print: the page prints without its navigation and forms
        await page.emulate_media(media="print")
        assert await page.locator("header.top").evaluate("node => getComputedStyle(node).display") == "none"
        assert await page.locator("section#edit").evaluate("node => getComputedStyle(node).display") == "none"
        await page.pdf(path=str(ARTIFACTS / "patient-summary.pdf"), format="A4", print_background=True)
        await page.emulate_media(media="screen")

        # a CGM patient: the AGP and the time in ranges (screenshot for README)
        await page.get_by_label("Unit").select_option("mg/dL")
        await page.get_by_role("button", name="Apply").click()
        await page.goto(f"{base}/patients/{seeded.cgm_patient}")
        await expect(page.locator("svg.agp-chart")).to_be_visible()
        await expect(page.locator("table.tir tbody tr")).to_have_count(4)
        await _shot(page, "patient", docs=(page.locator("#logbook"), page.locator("#cgm")))

        # keyboard: the first Tab reaches the skip link
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.className") == "skip"
        assert errors == []
        await context.close()
