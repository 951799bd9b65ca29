"""The patient page and what clinicians do there, tested by parsing the HTML."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import asyncpg

from alerts.engine import Engine
from telemon.app.services import Services
from tests.test_ui_toolkit import (
    add_alert,
    add_readings,
    browser,
    csrf_of,
    login,
    make_clinician,
    make_patient,
    make_team,
    parse_html,
)

PARIS = ZoneInfo("Europe/Paris")


def _local(days_ago: int, hour: int, minute: int = 0) -> dt.datetime:
    day = dt.datetime.now(PARIS).date() - dt.timedelta(days=days_ago)
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=PARIS)


async def test_logbook_cells_are_judged_against_the_patients_targets(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, device = await make_patient(db, team, "Sarah K.", profile="FR")
    await add_readings(db, patient, device, [
        (_local(1, 7, 30), 92.0, "fasting", None),  # FR fasting < 95: in target
        (_local(1, 10, 0), 128.0, "after_meal", "breakfast"),  # FR 2 h < 120: above
        (_local(1, 14, 30), 62.0, "after_meal", "lunch"),  # hypo (< 70)
        (_local(1, 22, 0), 150.0, "bedtime", None),  # other: no target
        (_local(2, 7, 15), 95.0, "fasting", None),  # = 95: above ("< 95" is the target)
        (_local(2, 20, 30), 101.0, "after_meal", "dinner"),
        (_local(2, 21, 30), 131.0, "after_meal", "dinner"),  # two readings: the worse colours the cell
    ])  # fmt: skip
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
    rows = page.select("table.logbook tbody tr")
    assert len(rows) == 14 and rows[0].get("data-day") == dt.datetime.now(PARIS).date().isoformat()
    yesterday = page.one(f'tr[data-day="{_local(1, 0).date().isoformat()}"]')

    def cell(row_node, slot: str):  # type: ignore[no-untyped-def]
        return row_node.one(f'td[data-slot="{slot}"]')

    assert cell(yesterday, "fasting").classes == {"cell", "cell-in"}
    assert cell(yesterday, "breakfast").classes == {"cell", "cell-above"}
    assert cell(yesterday, "lunch").classes == {"cell", "cell-hypo"}
    assert cell(yesterday, "dinner").classes == {"cell", "cell-empty"}
    assert cell(yesterday, "other").classes == {"cell", "cell-none"}
    # never colour alone: an icon and the judgement in words in every reading
    hypo = cell(yesterday, "lunch").one("span.reading")
    assert hypo.one("span.icon").text() == "▼" and hypo.one("span.visually-hidden").text() == "hypoglycaemia"
    assert hypo.one("span.v").text() == "62" and hypo.one("time").text() == "14:30"
    assert cell(yesterday, "fasting").one("span.icon").text() == "✓"
    before = page.one(f'tr[data-day="{_local(2, 0).date().isoformat()}"]')
    assert cell(before, "fasting").classes == {"cell", "cell-above"}
    dinner = cell(before, "dinner")
    assert dinner.classes == {"cell", "cell-above"}
    assert [r.get("class") for r in dinner.select("span.reading")] == ["reading reading-in", "reading reading-above"]
    # the 14-day chart: the same judgements as marker shapes, the band and the fasting target
    chart = page.one("svg.glucose-chart")
    assert chart.get("role") == "img" and chart.one("desc").text().startswith("7 readings")
    assert len(chart.select("g.pt-hypo path")) == 1 and len(chart.select("g.pt-above path")) == 3
    assert len(chart.select("g.pt-in circle")) == 2 and len(chart.select("g.pt-none path")) == 1
    assert page.one("dd.targets").text() == "FR — Fasting < 95 mg/dL; 2 h after meal < 120 mg/dL"
    assert not page.select("section#cgm")
    # print: a print stylesheet and a summary line for paper
    assert page.one("p.print-only").text().startswith("Printed")
    assert page.one("button[data-print]")


async def test_a_cgm_patient_gets_the_agp_and_the_pregnancy_time_in_ranges(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, unit="mmol/L")
    patient, device = await make_patient(db, team, "Nora CGM", device="cgm")
    now = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0)
    values = []
    for i in range(13 * 288):  # 13 days of 5-minute readings: 10 % below 54, 10 % 54–62, 60 % in range, 20 % above
        k = i % 10
        values.append(
            (
                now - dt.timedelta(minutes=5 * i),
                50.0 if k == 0 else 60.0 if k == 1 else 180.0 if k >= 8 else 110.0,
                "unspecified",
                None,
            )
        )
    await add_readings(db, patient, device, values, kind="cgm")
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
    section = page.one("section#cgm")
    shares = {r.get("class"): r.select("td")[0].text() for r in section.select("table.tir tbody tr")}
    assert shares == {"tir-row-very_low": "10%", "tir-row-low": "10%", "tir-row-in_range": "60%", "tir-row-high": "20%"}
    labels = [r.one("th").text() for r in section.select("table.tir tbody tr")]
    assert labels == ["Below 3.0 mmol/L", "3.0 mmol/L to 3.4 mmol/L", "3.5 mmol/L to 7.8 mmol/L", "Above 7.8 mmol/L"]
    goals = [r.select("td")[2].text() for r in section.select("table.tir tbody tr")]
    assert goals == ["✗ goal not met"] * 3 + ["✓ goal met"]  # 20 % above 140 is within the < 25 % goal
    assert len(section.select("svg.tir-bar rect")) == 4
    agp = section.one("svg.agp-chart")
    assert agp.select("polygon.agp-outer") and agp.select("polygon.agp-iqr") and agp.select("path.agp-median")
    assert page.one("svg.glucose-chart path.cgm-line")
    assert "Sensor glucose" in page.one("svg.glucose-chart desc").text()


async def test_alert_history_shows_the_evidence_and_actions_are_audited(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, language="fr", unit="g/L")
    patient, device = await make_patient(db, team, "Zoé L.", treatment="insulin")
    low = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    [reading_id] = await add_readings(db, patient, device, [(low, 48.0, "before_meal", None)])
    await Engine(db).evaluate([patient])  # the real engine writes the alert and its evidence
    alert_id = await db.fetchval("SELECT id FROM alerts WHERE patient_id = $1 AND rule = 'hypo_l2'", patient)
    assert alert_id
    async with browser(services) as http:
        await login(http, email)
        page_text = (await http.get(f"/patients/{patient}")).text
        page = parse_html(page_text)
        card = page.one(f"#alerts article#alert-{alert_id}")
        assert card.one("span.badge").text() == "⚠ Urgente"
        assert "0,54 g/L" in card.one("p.message").text() and "mg/dL" not in card.one("p.message").text()
        evidence = card.one("details.evidence")
        assert [td.text() for td in evidence.select("table td.num")] == ["0,48 g/L"]
        assert evidence.one("code").text() == "hypo_l2"
        facts = dict(
            zip([d.text() for d in evidence.select("dt")], [d.text() for d in evidence.select("dd")], strict=True)
        )
        # the level-2 threshold is a threshold of danger, not a target
        assert facts["seuil"] == "0,54 g/L" and facts["la plus basse"] == "0,48 g/L" and "objectif" not in facts
        token = csrf_of(page_text)
        snooze = await http.post(
            f"/alerts/{alert_id}/snooze",
            data={"csrf_token": token, "for": "24h", "next": f"/patients/{patient}#alerts"},
        )
        assert snooze.status_code == 303 and snooze.headers["location"] == f"/patients/{patient}#alerts"
        snoozed = await db.fetchval("SELECT snoozed_until FROM alerts WHERE id = $1", alert_id)
        assert dt.timedelta(hours=23) < snoozed - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)
        assert not parse_html((await http.get("/")).text).select(f'li[data-alert-id="{alert_id}"]')  # snoozed
        assert (await http.post(f"/alerts/{alert_id}/resolve", data={"csrf_token": token})).status_code == 303
        again = await http.post(f"/alerts/{alert_id}/resolve", data={"csrf_token": token})
        assert again.status_code == 303
        after = parse_html((await http.get(f"/patients/{patient}")).text)
        assert after.one("p.flash").text() == "Cette alerte a déjà été traitée."
        assert not after.select(f"#alerts article#alert-{alert_id}")
        past = after.one(f"#history-alerts article#alert-{alert_id}")
        assert past.get("data-status") == "resolved" and "Dr " in past.one("p.meta").text()
        history = [r.select("td")[2].text() for r in after.select("table.history tbody tr")]
        assert history == ["a résolu l'alerte Hypoglycémie niveau 2", "a reporté l'alerte Hypoglycémie niveau 2"]
    assert reading_id


async def test_review_notes_settings_and_delivery_are_recorded_with_who_and_when(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, unit="mmol/L")
    midwife = await make_clinician(db, team, role="midwife")
    patient, _ = await make_patient(db, team, "Alice P.", profile="FR")
    async with browser(services) as http:
        await login(http, email)
        page = (await http.get(f"/patients/{patient}")).text
        token = csrf_of(page)
        form = parse_html(page).one("section#edit form")
        assert form.one("label[for=target-fasting]").text() == "Fasting (profile default: 5.3 mmol/L)"
        assert form.one("input#target-fasting").get("value") == ""
        assert (await http.post(f"/patients/{patient}/review", data={"csrf_token": token})).status_code == 303
        note = await http.post(
            f"/patients/{patient}/notes", data={"csrf_token": token, "body": "Appelée: régime revu."}
        )
        assert note.status_code == 303
        changed = await http.post(f"/patients/{patient}/settings", data={
            "csrf_token": token, "profile": "FR", "treatment": "insulin", "readings_per_day": "6",
            "target_fasting": "5,1", "target_post_1h": "", "target_post_2h": "",
        })  # fmt: skip
        assert changed.status_code == 303
        bad = await http.post(f"/patients/{patient}/settings", data={
            "csrf_token": token, "profile": "FR", "treatment": "insulin", "readings_per_day": "6",
            "target_fasting": "51",
        })  # fmt: skip
        assert bad.status_code == 422  # 51 mmol/L is a typing error
        future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
        assert (
            await http.post(f"/patients/{patient}/delivery", data={"csrf_token": token, "delivery_date": future})
        ).status_code == 422
        day = dt.date.today().isoformat()
        assert (
            await http.post(f"/patients/{patient}/delivery", data={"csrf_token": token, "delivery_date": day})
        ).status_code == 303
        after = parse_html((await http.get(f"/patients/{patient}")).text)
        assert after.one("input#target-fasting").get("value") == "5.1"
        assert after.one("dd.targets").text().startswith("FR — Fasting < 5.1 mmol/L")
        assert after.one("ul.notes p.note-body").text() == "Appelée: régime revu."
        assert after.one("#last-reviewed").text() != "never"
        lines = [r.select("td")[2].text() for r in after.select("table.history tbody tr")]
        assert lines[0] == f"recorded the delivery ({day})"
        assert lines[1] == (
            "changed treatment: Diet → Insulin; readings per day: 4 → 6; Fasting: profile default: — → 5.1 mmol/L"
        )
        assert lines[2:] == ["added a note", "marked reviewed"]
        assert all(r.select("td")[1].text().startswith("Dr ") for r in after.select("table.history tbody tr"))
    row = await db.fetchrow(
        "SELECT treatment, readings_per_day, target_overrides, delivery_date, last_reviewed_at"
        " FROM patients WHERE id = $1",
        patient,
    )
    assert (row["treatment"], row["readings_per_day"], row["delivery_date"]) == ("insulin", 6, dt.date.today())
    assert abs(row["target_overrides"]["fasting"] - 5.1 * 18.01559) < 0.01 and row["last_reviewed_at"]
    audit = await db.fetchrow(
        "SELECT actor, detail FROM audit_log WHERE patient_id = $1 AND action = 'patient.update'", patient
    )
    assert audit["actor"].startswith("clinician:") and audit["detail"]["before"]["treatment"] == "diet"
    assert (
        await db.fetchval("SELECT count(*) FROM audit_log WHERE patient_id = $1 AND action = 'patient.view'", patient)
        == 2
    )
    async with browser(services) as http:  # a midwife reads, notes, reviews, but does not prescribe
        await login(http, midwife)
        page = (await http.get(f"/patients/{patient}")).text
        assert not parse_html(page).select("section#edit form")
        refused = await http.post(
            f"/patients/{patient}/settings",
            data={"csrf_token": csrf_of(page), "profile": "ADA", "treatment": "diet", "readings_per_day": "4"},
        )
        assert refused.status_code == 403
    assert await db.fetchval("SELECT profile FROM patients WHERE id = $1", patient) == "FR"


async def test_a_rules_alerts_are_grouped_and_handled_together(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team)
    acknowledged = await add_alert(db, patient, status="acknowledged", opened_ago=dt.timedelta(hours=5))
    daily = [
        await add_alert(db, patient, rule="fasting_above_target", severity="info", opened_ago=dt.timedelta(days=d),
                        message_en=f"Fasting above target, day {d}.")
        for d in (3, 2, 1)
    ]  # fmt: skip
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        groups = page.select("#alerts section.alert-group")
        assert [g.get("data-rule") for g in groups] == ["hypo_l2", "fasting_above_target"]  # most severe first
        hypo = groups[0]
        assert hypo.one(f"article#alert-{acknowledged} span.status").text().startswith("✓ acknowledged")
        assert [f.get("action") for f in hypo.select("form")] == ["/alerts/snooze", "/alerts/resolve"]
        fasting = groups[1]
        assert fasting.get("data-count") == "3"
        assert fasting.select("article.alert p.message")[0].text() == "Fasting above target, day 1."  # the latest
        assert fasting.one("details.earlier summary").text() == "2 earlier alerts of this rule"
        resolve = fasting.select("form")[2]
        assert resolve.one("button").text() == "Resolve (3)"
        data = [(i.get("name"), i.get("value")) for i in resolve.select("input")]
        done = await http.post(
            resolve.get("action") or "",
            content=urlencode(data),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 303 and done.headers["location"] == f"/patients/{patient}#alerts"
        after = parse_html((await http.get(f"/patients/{patient}")).text)
        assert [g.get("data-rule") for g in after.select("#alerts section.alert-group")] == ["hypo_l2"]
        assert len(after.select("#history-alerts article.alert")) == 3
    statuses = await db.fetch("SELECT status, resolved_by FROM alerts WHERE id = ANY($1::bigint[])", daily)
    assert {(r["status"], r["resolved_by"].startswith("clinician:")) for r in statuses} == {("resolved", True)}


async def test_alert_ids_no_alert_can_have_are_not_found(services: Services, db: asyncpg.Pool) -> None:
    """Ids beyond bigint, or digits that are not ASCII ("²".isdigit() is true), name no alert: a 404 page or
    nothing done, never a 500."""
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team)
    alert = await add_alert(db, patient)
    async with browser(services) as http:
        await login(http, email)
        token = csrf_of((await http.get(f"/patients/{patient}")).text)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        for alert_id in (2**63, 10**400, 0):
            answer = await http.post(
                f"/alerts/{alert_id}/acknowledge", content=urlencode({"csrf_token": token}), headers=form
            )
            assert answer.status_code == 404, alert_id
        for values in (["²"], [str(2**63)], [str(10**30)]):
            data = urlencode([("csrf_token", token)] + [("alert_id", v) for v in values])
            answer = await http.post("/alerts/acknowledge", content=data, headers=form)
            assert answer.status_code == 404, values
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert) == "open"
