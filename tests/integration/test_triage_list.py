"""The triage list shows who needs action today: urgent and warning alerts list a patient, info alerts never do by
themselves; one line per problem (the findings about glucose above target are one item); patients and items in
the order severity, clinical priority, waiting time; times and messages in words."""

from __future__ import annotations

import datetime as dt

import asyncpg

from telemon.app.services import Services
from tests.test_ui_toolkit import add_alert, browser, login, make_clinician, make_patient, make_team, parse_html

NOW = dt.datetime.now(dt.UTC)


async def test_info_alerts_alone_never_list_a_patient_but_are_on_her_page(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    info_only, _ = await make_patient(db, team, "Info only")
    listed, _ = await make_patient(db, team, "Warning")
    for rule in ("fasting_above_target", "postprandial_above_target", "low_adherence", "fasting_trend_rising"):
        await add_alert(db, info_only, rule=rule, severity="info", message_en=f"{rule} finding. Rule {rule}.")
    await add_alert(db, listed, rule="no_data", severity="warning", message_en="No reading for 3 days. Rule no_data.")
    async with browser(services) as http:
        await login(http, email)
        home = parse_html((await http.get("/")).text)
        assert [r.one("th a").text() for r in home.select("tr.triage-row")] == ["Warning"]
        # nor under the severity filter that shows info alerts, nor filtered by an info rule
        assert [r.one("th a").text() for r in parse_html((await http.get("/?severity=all")).text).select("tr.triage-row")] == ["Warning"]  # fmt: skip
        assert not parse_html((await http.get("/?rule=low_adherence")).text).select("tr.triage-row")
        page = (await http.get(f"/patients/{info_only}")).text
        assert "low_adherence finding." in page
        # the rule's id is for the logs, not the clinician's message
        assert "Rule no_data" not in home.one("li.alert-item span.message").text()
        assert home.one("li.alert-item span.message").text() == "No reading for 3 days."


async def test_order_is_severity_then_clinical_priority_then_waiting_time(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    pattern, _ = await make_patient(db, team, "Weekly pattern, 3 days waiting")
    hypo, _ = await make_patient(db, team, "Level 1 hypo, 1 h waiting")
    hypo_old, _ = await make_patient(db, team, "Level 1 hypo, 5 h waiting")
    urgent, _ = await make_patient(db, team, "Urgent, 10 min waiting")
    await add_alert(db, pattern, rule="pattern_above_target", severity="warning", opened_ago=dt.timedelta(days=3))
    await add_alert(db, hypo, rule="hypo_l1", severity="warning", opened_ago=dt.timedelta(hours=1))
    await add_alert(db, hypo_old, rule="hypo_l1", severity="warning", opened_ago=dt.timedelta(hours=5))
    await add_alert(db, urgent, rule="fasting_severe", severity="urgent", opened_ago=dt.timedelta(minutes=10))
    async with browser(services) as http:
        await login(http, email)
        rows = parse_html((await http.get("/")).text).select("tr.triage-row")
        assert [r.one("th a").text() for r in rows] == [
            "Urgent, 10 min waiting",
            "Level 1 hypo, 5 h waiting",
            "Level 1 hypo, 1 h waiting",
            "Weekly pattern, 3 days waiting",
        ]


async def test_above_target_findings_of_a_patient_are_one_item_with_their_figures(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team, "Above target")
    event = NOW - dt.timedelta(hours=7)
    hypo = await add_alert(
        db,
        patient,
        rule="hypo_l1",
        severity="warning",
        opened_ago=dt.timedelta(minutes=30),
        evidence={"reading_ids": [1], "values_mgdl": [65.0], "measured_at": [int(event.timestamp())]},
    )
    ids = [
        await add_alert(db, patient, rule="pattern_above_target", severity="warning", opened_ago=dt.timedelta(days=1)),
        await add_alert(db, patient, rule="consecutive_above_target", severity="warning"),
        await add_alert(db, patient, rule="fasting_pattern", severity="warning", opened_ago=dt.timedelta(days=2)),
    ]
    for day in (1, 2, 3):
        ids.append(
            await add_alert(
                db, patient, rule="postprandial_above_target", severity="info", opened_ago=dt.timedelta(days=day)
            )
        )
    async with browser(services) as http:
        await login(http, email)
        row = parse_html((await http.get("/")).text).one(f'tr[data-patient-id="{patient}"]')
        items = row.select("li.alert-item")
        # two problems, two lines: the hypoglycaemia first (clinical priority), then glucose above target
        assert [i.get("data-rule") for i in items] == ["hypo_l1", "above_target"]
        merged = items[1]
        assert merged.one("strong.rule").text() == "Above target this week"
        assert set((merged.get("data-rules") or "").split()) == {
            "pattern_above_target",
            "consecutive_above_target",
            "fasting_pattern",
            "postprandial_above_target",
        }
        figures = merged.one("span.figures").text()
        assert "×3" in figures and figures.index("Fasting") < figures.index("×3")  # clinical order, with numbers
        assert sorted((merged.one("button").get("value") or "").split()) == sorted(str(i) for i in ids)
        assert len(row.select("button")) == 2
        # times say what they are: when the reading was taken, and when the alert was opened
        said = items[0].one("span.times-said")
        assert said.one("time.event").get("datetime") == event.replace(microsecond=0).isoformat()
        assert said.one("time.event").text().startswith("reading at ")
        assert said.one("time.opened").text() == "alert opened 30 min ago"
        assert items[0].get("data-alert-id") == str(hypo)
