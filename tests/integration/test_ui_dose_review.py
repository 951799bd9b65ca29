"""Dose review suggestions on the patient page, tested by parsing the HTML: a diabetologist sees the dose in force,
the suggested one, the protocol's line and the readings, applies it in one click (a new plan version, the alert
resolved, both audited, the history saying where the version came from) or dismisses it; a suggestion computed on a
plan that changed since is not offered and, forced, is refused with a page that says so; a midwife sees it but
cannot apply it; a treatment review alert leads to the plan page."""

from __future__ import annotations

import json
import uuid

import asyncpg
import httpx

from telemon import treatment
from telemon.app.services import Services
from tests.support import dose_review as suggestions
from tests.test_ui_toolkit import (
    Team,
    add_alert,
    browser,
    csrf_of,
    login,
    make_clinician,
    make_patient,
    make_team,
    parse_html,
    submit,
)


async def _signed_in(
    http: httpx.AsyncClient, db: asyncpg.Pool, team: Team, role: str = "diabetologist", language: str = "en"
) -> str:
    email = await make_clinician(db, team, role=role, language=language)
    assert (await login(http, email)).status_code == 303
    clinician_id = await db.fetchval("SELECT id FROM clinicians WHERE email = $1", email)
    return f"clinician:{clinician_id}"


async def _on_nph(db: asyncpg.Pool) -> tuple[Team, uuid.UUID]:
    team = await make_team(db)
    patient, _ = await make_patient(db, team, treatment="insulin")
    await suggestions.nph_plan(db, patient, units=10)
    return team, patient


async def test_a_diabetologist_sees_the_suggestion_and_applies_it_in_one_click(
    services: Services, db: asyncpg.Pool
) -> None:
    team, patient = await _on_nph(db)
    alert_id = await suggestions.suggestion(db, patient, current=10, suggested=12, plan_version=1)
    async with browser(services) as http:
        actor = await _signed_in(http, db, team, language="fr")
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        card = page.one(f"#dose-review-{alert_id}")
        assert card.get("data-slot") == "basal" and card.get("data-change") == "increase"
        assert card.one(".dose-current").text() == "NPH 10 U"
        assert card.one(".dose-suggested").text() == "NPH 12 U"
        assert card.one(".dose-protocol").text().startswith("+2 U si la glycémie à jeun a dépassé l'objectif 3 jours")
        assert "Davies" in card.one(".dose-protocol").text()
        # the readings the suggestion rests on, shown open
        evidence = page.one(f"#alert-{alert_id} details.evidence")
        assert evidence.get("open") is not None and len(evidence.select(".evidence-readings tbody tr")) == 3
        applied = await submit(http, card.one(".dose-apply button"))
        assert applied.status_code == 303, applied.text
        assert applied.headers["location"] == f"/patients/{patient}/treatment#plan-history"
        plan_page = parse_html((await http.get(applied.headers["location"])).text)
        rows = plan_page.select("#plan-history tbody tr")
        assert [r.get("data-version") for r in rows] == ["2", "1"]
        assert "NPH 12 U" in rows[0].one(".plan-basal").text()
        assert rows[0].one(".plan-origin").text() == f"Suggestion de révision de dose appliquée (alerte {alert_id})"
        after = parse_html((await http.get(f"/patients/{patient}")).text)
        assert after.one(f"#alert-{alert_id}").get("data-status") == "resolved"
        assert after.one(f"#dose-review-{alert_id} .dose-applied").text() == "Appliquée : version 2 du plan"
        assert not after.select(f"#dose-review-{alert_id} .dose-apply")
        changes = [row.text() for row in after.select("#history tbody tr")]
        assert any("Révision de dose appliquée : version 2 du plan" in line for line in changes), changes
    current = await treatment.current_plan(db, patient)
    assert current is not None and current.basal == treatment.Basal("NPH", 12.0, "22:00")
    assert current.created_by == actor
    assert await db.fetchval("SELECT resolved_by FROM alerts WHERE id = $1", alert_id) == actor
    trail = await db.fetch(
        "SELECT action, detail FROM audit_log WHERE patient_id = $1 AND action IN ('treatment.plan', 'alert.resolve')"
        " AND actor = $2 ORDER BY id",
        patient,
        actor,
    )
    details = [(r["action"], json.loads(r["detail"]) if isinstance(r["detail"], str) else r["detail"]) for r in trail]
    assert [a for a, _ in details] == ["treatment.plan", "alert.resolve"]
    assert details[0][1]["dose_review"]["alert_id"] == alert_id
    assert details[1][1]["applied"]["plan_version"] == 2


async def test_a_suggestion_on_a_plan_that_changed_is_not_offered_and_forced_is_refused(
    services: Services, db: asyncpg.Pool
) -> None:
    team, patient = await _on_nph(db)
    alert_id = await suggestions.suggestion(db, patient, current=10, suggested=12, plan_version=1)
    await suggestions.nph_plan(db, patient, units=14)  # changed by hand meanwhile: version 2
    async with browser(services) as http:
        await _signed_in(http, db, team)
        html = (await http.get(f"/patients/{patient}")).text
        card = parse_html(html).one(f"#dose-review-{alert_id}")
        assert card.get("data-stale") == "1" and not card.select(".dose-apply")
        assert "version 2 in force" in card.one(".dose-stale").text()
        token = csrf_of(html)
        refused = await http.post(f"/dose-review/{alert_id}/apply", data={"csrf_token": token})
        assert refused.status_code == 409
        message = parse_html(refused.text).one("#dose-review-refused").text()
        assert "computed (on version 1; version 2 is in force now). Nothing was applied" in message
        assert parse_html(refused.text).one("#review-plan").get("href") == f"/patients/{patient}/treatment"
    assert [p.version for p in await treatment.history(db, patient)] == [2, 1]
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id) == "open"


async def test_dismiss_resolves_it_with_the_clinician_and_writes_no_plan(services: Services, db: asyncpg.Pool) -> None:
    team, patient = await _on_nph(db)
    alert_id = await suggestions.suggestion(db, patient, slot="dinner", product="NovoRapid", current=6, suggested=5)
    async with browser(services) as http:
        actor = await _signed_in(http, db, team)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        card = page.one(f"#dose-review-{alert_id}")
        assert card.get("data-change") == "reduction" and card.one(".dose-suggested").text() == "NovoRapid 5 U"
        assert card.one(".dose-protocol").text().startswith("−10% after an unexplained hypoglycaemia")
        dismissed = await submit(http, card.one(".dose-dismiss button"))
        assert dismissed.status_code == 303
    row = await db.fetchrow("SELECT status, resolved_by FROM alerts WHERE id = $1", alert_id)
    assert (row["status"], row["resolved_by"]) == ("resolved", actor)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM audit_log WHERE action = 'alert.resolve' AND actor = $1 AND (detail->>'alert_id')::bigint = $2",
            actor,
            alert_id,
        )
        == 1
    )
    assert [p.version for p in await treatment.history(db, patient)] == [1]


async def test_a_midwife_sees_the_suggestion_but_cannot_apply_it(services: Services, db: asyncpg.Pool) -> None:
    team, patient = await _on_nph(db)
    alert_id = await suggestions.suggestion(db, patient)
    async with browser(services) as http:
        await _signed_in(http, db, team, role="midwife")
        html = (await http.get(f"/patients/{patient}")).text
        card = parse_html(html).one(f"#dose-review-{alert_id}")
        assert card.one(".dose-suggested").text() == "NPH 12 U"
        assert not card.select(".dose-apply") and not card.select(".dose-dismiss")
        token = csrf_of(html)
        assert (await http.post(f"/dose-review/{alert_id}/apply", data={"csrf_token": token})).status_code == 403
    async with browser(services) as http:
        await _signed_in(http, db, await make_team(db))  # a diabetologist of another team
        token = csrf_of((await http.get("/")).text)
        assert (await http.post(f"/dose-review/{alert_id}/apply", data={"csrf_token": token})).status_code == 404
        assert (await http.post(f"/dose-review/{alert_id}/apply", data={})).status_code == 403  # no CSRF token
    assert [p.version for p in await treatment.history(db, patient)] == [1]
    assert await db.fetchval("SELECT status FROM alerts WHERE id = $1", alert_id) == "open"


async def test_a_treatment_review_leads_to_the_plan_page(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    patient, _ = await make_patient(db, team)
    alert_id = await add_alert(
        db, patient, rule="treatment_review", severity="warning",
        message_en="Targets not met after the diet trial period.", message_fr="Objectifs non atteints sous régime.",
    )  # fmt: skip
    async with browser(services) as http:
        await _signed_in(http, db, team, role="nurse")
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        link = page.one(f"#review-treatment-{alert_id}")
        assert link.get("href") == f"/patients/{patient}/treatment" and link.text() == "Review treatment"
        assert (await http.get(link.get("href") or "")).status_code == 200
