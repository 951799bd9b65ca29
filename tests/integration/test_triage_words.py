"""Words on the screen: who acted on an alert reads as words (the system, an integration's label), a hypoglycaemia's
threshold is not called a target, the rule filter lists the rules in clinical order with their thresholds in the
clinician's unit, and simulated patients carry French names without an English tag."""

from __future__ import annotations

import datetime as dt

import asyncpg

from clinician_ui.alert_groups import CLINICAL_ORDER
from telemon import api_keys
from telemon.app.services import Services
from tests.test_ui_toolkit import add_alert, browser, login, make_clinician, make_patient, make_team, parse_html
from tools.simulator.physiology import CohortSpec, make_cohort


async def test_actors_read_as_words_and_a_hypo_threshold_is_not_a_target(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team)
    patient, _ = await make_patient(db, team, "Acted on")
    async with db.acquire() as conn:
        key = await api_keys.create_api_key(
            conn, label="Hospital EHR bridge", scopes=["alerts:write"], team_ids=[team.id]
        )
    by_system = await add_alert(db, patient, rule="no_data", severity="warning", status="resolved")
    by_key = await add_alert(
        db,
        patient,
        evidence={"reading_ids": [1], "values_mgdl": [50.0], "measured_at": [1_700_000_000], "target_mgdl": 54.0},
    )
    await db.execute("UPDATE alerts SET resolved_at = now(), resolved_by = 'system' WHERE id = $1", by_system)
    await db.execute(
        "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2 WHERE id = $1",
        by_key,
        f"api_key:{key.id}",
    )
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
    system_meta = page.one(f"#alert-{by_system} p.meta").text()
    assert "by telemon, automatically" in system_meta and "system" not in system_meta.replace("telemon", "")
    key_meta = page.one(f"#alert-{by_key} p.meta").text()
    assert "by the integration “Hospital EHR bridge”" in key_meta and str(key.id) not in key_meta
    facts = [dt_.text() for dt_ in page.one(f"#alert-{by_key} dl.facts").select("dt")]
    assert "threshold" in facts and "target" not in facts
    assert "Rule hypo_l2" not in page.one(f"#alert-{by_key} p.message").text()


async def test_rule_filter_in_clinical_order_with_thresholds_in_the_clinicians_unit(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, unit="mmol/L", language="fr")
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get("/")).text)
    options = page.one("select#f-rule").select("option")[1:]
    values = [o.get("value") for o in options]
    assert values[: len(CLINICAL_ORDER)] == list(CLINICAL_ORDER)
    labels = {o.get("value"): " ".join(o.text().replace("\u00a0", " ").split()) for o in options}
    assert labels["hypo_l2"] == "Hypoglycémie niveau 2 (< 3,0 mmol/L)"
    assert labels["fasting_severe"].endswith("(> 7,2 mmol/L)")
    assert "mg/dL" not in " ".join(labels.values())


def test_simulated_names_are_names_and_the_hospital_number_says_simulated() -> None:
    created = dt.datetime(2026, 12, 4, 6, tzinfo=dt.UTC)
    spec = CohortSpec(seed=2026, patients=40, cgm=6, created=created, start=created - dt.timedelta(days=21))
    cohort = make_cohort(spec)
    assert all("simulated" not in p.display_name for p in cohort)
    assert all(p.external_id.startswith("SIM-") for p in cohort)
