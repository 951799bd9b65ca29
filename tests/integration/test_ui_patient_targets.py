"""The targets of the patient settings form: a save changes only what the clinician changed, a target keeps the
exact value of the unit it was entered in, and French forms take and show a decimal comma."""

from __future__ import annotations

import json
import uuid

import asyncpg
import pytest

from telemon.app.services import Services
from tests.test_ui_toolkit import browser, login, make_clinician, make_patient, make_team, parse_html, submit

OVERRIDES = "UPDATE patients SET target_overrides = $2 WHERE id = $1"
TARGETS = "SELECT target_overrides FROM patients WHERE id = $1"
UPDATES = "SELECT count(*) FROM audit_log WHERE patient_id = $1 AND action = 'patient.update'"
DETAIL = "SELECT detail FROM audit_log WHERE patient_id = $1 AND action = 'patient.update' ORDER BY id DESC LIMIT 1"


async def _targets(db: asyncpg.Pool, patient: uuid.UUID) -> dict[str, float]:
    raw = await db.fetchval(TARGETS, patient)
    return json.loads(raw) if isinstance(raw, str) else dict(raw)


@pytest.mark.parametrize(
    ("unit", "language", "shown"),
    [
        ("mmol/L", "en", ("5.0", "7.2")),
        ("mmol/L", "fr", ("5,0", "7,2")),
        ("g/L", "fr", ("0,90", "1,30")),
        ("mg/dL", "en", ("90", "130")),
    ],
)
async def test_a_save_without_changes_changes_nothing_and_audits_nothing(
    services: Services, db: asyncpg.Pool, unit: str, language: str, shown: tuple[str, str]
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, unit=unit, language=language)
    patient, _ = await make_patient(db, team, profile="ADA")
    await db.execute(OVERRIDES, patient, {"fasting": 90, "post_1h": 130})
    async with browser(services) as http:
        await login(http, email)
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        form = page.one("section#edit form")
        assert (form.one("input#target-fasting").get("value"), form.one("input#target-post_1h").get("value")) == shown
        saved = await submit(http, form.one("button[type=submit]"))
        assert saved.status_code == 303
        again = parse_html((await http.get(f"/patients/{patient}")).text).one("section#edit form")
        assert again.one("input#target-fasting").get("value") == shown[0]
    assert await _targets(db, patient) == {"fasting": 90, "post_1h": 130}
    assert await db.fetchval(UPDATES, patient) == 0


async def test_a_changed_target_keeps_exactly_the_value_entered_and_only_it_changes(
    services: Services, db: asyncpg.Pool
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, unit="mmol/L", language="fr")
    patient, _ = await make_patient(db, team, profile="NICE")
    await db.execute(OVERRIDES, patient, {"fasting": 90, "post_1h": 130})
    async with browser(services) as http:
        await login(http, email)
        form = parse_html((await http.get(f"/patients/{patient}")).text).one("section#edit form")
        saved = await submit(http, form.one("button[type=submit]"), target_fasting="5,3")
        assert saved.status_code == 303
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        assert page.one("input#target-fasting").get("value") == "5,3"
        assert page.one("input#target-post_1h").get("value") == "7,2"
        line = page.select("table.history tbody tr")[0].select("td")[2].text()
        assert "5,0 mmol/L → 5,3 mmol/L" in line and "1 h" not in line
        # 5.25 mmol/L: shown with the decimals it was entered with, not rounded to 5.3
        form = page.one("section#edit form")
        assert (await submit(http, form.one("button[type=submit]"), target_fasting=" 5,25 ")).status_code == 303
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        assert page.one("input#target-fasting").get("value") == "5,25"
        for typo in ("5,3,1", "5.3e1", "1_00", "cinq"):
            refused = await submit(http, page.one("section#edit form button[type=submit]"), target_fasting=typo)
            assert refused.status_code == 422, typo
    targets = await _targets(db, patient)
    assert targets == {"fasting": 94.5818475, "post_1h": 130}  # 5.25 × 18.01559, exactly
    detail = await db.fetchval(DETAIL, patient)
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert detail["before"]["target_overrides"]["fasting"] == 95.482627  # 5.3 × 18.01559, exactly
    assert await db.fetchval(UPDATES, patient) == 2


async def test_english_forms_take_a_comma_too_and_show_a_point(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, unit="g/L", language="en")
    patient, _ = await make_patient(db, team, profile="FR")
    async with browser(services) as http:
        await login(http, email)
        form = parse_html((await http.get(f"/patients/{patient}")).text).one("section#edit form")
        assert (await submit(http, form.one("button[type=submit]"), target_fasting="0,92")).status_code == 303
        page = parse_html((await http.get(f"/patients/{patient}")).text)
        assert page.one("input#target-fasting").get("value") == "0.92"
    assert await _targets(db, patient) == {"fasting": 92.0}
