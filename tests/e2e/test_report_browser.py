"""The PDF report from the dashboard in a real browser (Debian's headless Chromium driven by Playwright) against
``telemon serve``: a diabetologist opens a patient's page and follows "PDF report (14 days)"; Chromium opens the
patient's report as a PDF, in the clinician's language and unit."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from playwright.async_api import expect

from tests.e2e.test_dashboard_browser import chromium, telemon_serve
from tests.test_ui_toolkit import PASSWORD, add_readings, make_clinician, make_patient, make_team

pytestmark = pytest.mark.slow

PARIS = ZoneInfo("Europe/Paris")


async def test_a_diabetologist_opens_the_pdf_report_from_the_patient_page(
    database_url: str, mqtt_url: str, db: asyncpg.Pool, tmp_path: Path
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, language="fr", unit="g/L")
    patient_id, device = await make_patient(db, team, "Hélène Durand")
    today = dt.datetime.now(PARIS).date()
    await add_readings(
        db,
        patient_id,
        device,
        [(dt.datetime.combine(today - dt.timedelta(days=d), dt.time(7, 30), PARIS), 92.0, "fasting", None)
         for d in range(1, 8)],
    )  # fmt: skip
    async with telemon_serve(database_url, mqtt_url) as base, chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page = await context.new_page()
        await page.goto(f"{base}/login")
        await page.locator('input[name="email"]').fill(email)
        await page.locator('input[name="password"]').fill(PASSWORD)
        await page.locator('button[type="submit"]').click()
        await expect(page).to_have_url(f"{base}/")
        await page.goto(f"{base}/patients/{patient_id}")
        link = page.get_by_role("link", name="Compte rendu PDF (14 jours)")
        await expect(link).to_be_visible()
        async with page.expect_response(lambda r: r.url.endswith("/report.pdf")) as answer_info:
            await link.click()
        answer = await answer_info.value
        assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
        # the browser shows it in its PDF viewer; the same request with her session gives the bytes to read
        again = await context.request.get(answer.url)
        path = tmp_path / "report.pdf"
        path.write_bytes(await again.body())
    assert path.read_bytes().startswith(b"%PDF-")
    text = " ".join(
        subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout.split()
    )
    assert "Compte rendu de surveillance glycémique" in text and "Hélène Durand" in text
    assert "Glycémies capillaires 7" in text and "0,92 g/L" in text
