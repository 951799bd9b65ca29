"""Figures only on enough data, and counted honestly: the sensor panel below the consensus's data sufficiency says
so instead of judging goals on a few readings; the 7-day share in target counts a hypoglycaemia as out of target
whatever its context, and says which readings it counts."""

from __future__ import annotations

import datetime as dt

import asyncpg

from telemon.app.services import Services
from tests.test_ui_toolkit import (
    add_alert,
    add_readings,
    browser,
    login,
    make_clinician,
    make_patient,
    make_team,
    parse_html,
)


async def test_a_sensor_panel_on_13_readings_says_insufficient_data_and_how_much_there_is(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, device = await make_patient(db, team, "Few sensor readings", device="cgm")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    # 13 readings, 5 of them below 54: "below 54: 38 % — goal not met" was shown on this
    values = [(now - dt.timedelta(minutes=5 * i), 50.0 if i < 5 else 110.0, "unspecified", None) for i in range(13)]
    await add_readings(db, patient, device, values, kind="cgm")
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
    section = page.one("section#cgm")
    assert section.one("p.insufficient").text() == "Insufficient data"
    detail = section.one("p.insufficient-detail").text()
    assert detail.startswith("13 sensor readings, 0% wear over 14 days") and "Battelino 2019" in detail
    assert not section.select("table.tir") and not section.select("svg.agp-chart")
    assert "goal met" not in section.text() and "goal not met" not in section.text()


async def test_share_in_target_counts_a_hypoglycaemia_without_context_as_out_of_target(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, device = await make_patient(db, team, "Night hypo", treatment="insulin")
    now = dt.datetime.now(dt.UTC)
    readings = [
        (now - dt.timedelta(hours=30), 85.0, "fasting", None),
        (now - dt.timedelta(hours=27), 110.0, "after_meal", "breakfast"),
        (now - dt.timedelta(hours=20), 48.0, "unspecified", None),  # level 2 at night: no meal, no target
    ]
    await add_readings(db, patient, device, readings)
    await add_alert(db, patient)  # her level-2 alert lists her
    async with browser(services) as http:
        await login(http, email)
        row = parse_html((await http.get("/")).text).one(f'tr[data-patient-id="{patient}"]')
    share = row.one("td.share")
    assert share.one("span.pct").text() == "67%"  # 2 in target of 3 counted: not "100 %"
    assert share.select("span.muted")[0].text() == ("2 of 3 (fasting, after meals, hypos)")
