"""A Nightscout upload telemon refuses is answered as Nightscout would (200, an empty list), so the uploader's user
sees nothing: the refusals are on the patient page for her care team."""

from __future__ import annotations

import datetime as dt

import asyncpg

from telemon.app.services import Services
from telemon.security import nightscout_secret
from tests.support.factories import add_device
from tests.test_ui_toolkit import browser, login, make_clinician, make_patient, make_team, parse_html


async def test_refused_nightscout_uploads_are_shown_on_the_patient_page(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _meter = await make_patient(db, team, "Lea M.")
    uploader = await add_device(db, patient, "cgm")
    before_pregnancy = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)
    entries = [
        {
            "type": "sgv",
            "sgv": 110 + i,
            "date": int((before_pregnancy + dt.timedelta(minutes=5 * i)).timestamp() * 1000),
        }
        for i in range(3)
    ]
    async with browser(services) as http:
        await login(http, email)
        quiet = parse_html((await http.get(f"/patients/{patient}")).text)
        assert quiet.select("#device-refusals") == []  # nothing refused: nothing shown

        response = await http.post(
            "/ns/api/v1/entries/", json=entries, headers={"api-secret": nightscout_secret(uploader.token)}
        )
        assert response.status_code == 200
        assert response.json() == []  # Nightscout's answer: what was stored, nothing
        assert response.headers["x-telemon-rejected"] == "3"
        assert "before this pregnancy began" in response.headers["x-telemon-reasons"]

        page = parse_html((await http.get(f"/patients/{patient}", headers={"Accept-Language": "en"})).text)
    [row] = page.select("#device-refusals li")
    assert row.attrs.get("data-device") == uploader.device_id
    assert "3 items refused" in row.text()
    assert "before this pregnancy began" in row.text()
