"""The team's titration protocol page, tested by parsing the HTML: diabetologists and administrators read it with
the default's citation, change it (French decimal comma), see each refusal beside its field with what they typed,
turn suggestions off and go back to the default; every change is audited; other roles, other teams and a form
without its CSRF token are refused."""

from __future__ import annotations

import json

import asyncpg
import httpx
import pytest

from alerts import titration
from telemon.app.services import Services
from tests.test_ui_toolkit import Team, browser, csrf_of, login, make_clinician, make_team, parse_html, submit


async def _signed_in(http: httpx.AsyncClient, db: asyncpg.Pool, team: Team, role: str, language: str = "en") -> None:
    email = await make_clinician(db, team, role=role, language=language)
    assert (await login(http, email)).status_code == 303


async def _protocol(db: asyncpg.Pool, team: Team) -> titration.Protocol:
    return (await titration.load(db, [team.id]))[team.id]


async def test_a_diabetologist_reads_the_default_and_changes_the_protocol(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    async with browser(services) as http:
        await _signed_in(http, db, team, "diabetologist", language="fr")
        home = parse_html((await http.get("/")).text)
        assert [a.get("href") for a in home.select("nav a") if a.get("href") == "/team/titration"]
        page = parse_html((await http.get("/team/titration")).text)
        assert "protocole par défaut" in page.one("#protocol-kind").text()
        assert "Davies" in page.one("#default-source").text() and "ADA" in page.one("#default-source").text()
        assert page.one("#line-increase").text() == (
            "+2 U si la glycémie à jeun a dépassé l'objectif 3 jours sur les 3 derniers (au plus 4 U en une fois)"
        )
        assert (
            page.one("#f-step_units").get("value") == "2"
            and page.one("#f-suggestions_enabled").get("checked") is not None
        )
        answer = await submit(
            http, page.one("#protocol-form button"), step_units="1,5", window_days="5", days_required="4",
            reduction_percent="20",
        )  # fmt: skip
        assert answer.status_code == 303, answer.text
        shown = parse_html((await http.get(answer.headers["location"])).text)
        assert "propre protocole" in shown.one("#protocol-kind").text()
        assert (
            shown.one("#line-increase")
            .text()
            .startswith("+1,5 U si la glycémie à jeun a dépassé l'objectif 4 jours sur les 5")
        )
        assert shown.one("#line-reduction").text().startswith("−20")
        assert shown.one("#f-step_units").get("value") == "1,5"
    assert await _protocol(db, team) == titration.Protocol(
        step_units=1.5, window_days=5, days_required=4, reduction_percent=20.0
    )
    detail = await db.fetchval(
        "SELECT detail FROM audit_log WHERE action = 'titration.protocol' AND detail->>'team_id' = $1", str(team.id)
    )
    detail = json.loads(detail) if isinstance(detail, str) else detail
    assert detail["protocol"]["step_units"] == 1.5


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"step_units": "2,3"}, "step_units", "half units"),
        ({"step_units": "", "step_percent": ""}, "step_units", "needs a step"),
        ({"step_percent": "45"}, "step_percent", "1 to 30 %"),
        ({"window_days": "2.5"}, "window_days", "whole number"),
        ({"window_days": "20"}, "window_days", "1 to 14 days"),
        ({"days_required": "5"}, "days_required", "1 to 3 days"),  # more than the window of 3
        ({"max_step_units": "lots"}, "max_step_units", "type a number"),
        ({"reduction_percent": "", "reduction_units": ""}, "reduction_percent", "needs a percentage or units"),
    ],
)
async def test_a_refusal_is_shown_beside_its_field_with_what_was_typed(
    services: Services, db: asyncpg.Pool, changes: dict[str, str], field: str, words: str
) -> None:
    team = await make_team(db)
    async with browser(services) as http:
        await _signed_in(http, db, team, "admin")
        page = parse_html((await http.get("/team/titration")).text)
        answer = await submit(http, page.one("#protocol-form button"), **changes)
        assert answer.status_code == 422, answer.text
        refused = parse_html(answer.text)
        assert refused.one("#form-errors")
        error = refused.one(f"#error-{field}")
        assert error.get("data-field") == field and words in error.text(), error.text()
        assert refused.one(f"#f-{field}").get("aria-invalid") == "true"
        for name, value in changes.items():
            assert refused.one(f"#f-{name}").get("value") == value
    assert await _protocol(db, team) == titration.DEFAULT


async def test_suggestions_turned_off_then_the_default_restored(services: Services, db: asyncpg.Pool) -> None:
    team = await make_team(db)
    async with browser(services) as http:
        await _signed_in(http, db, team, "admin")
        page = parse_html((await http.get("/team/titration")).text)
        assert not page.select("#protocol-restore")  # the default already
        answer = await submit(http, page.one("#protocol-form button"), suggestions_enabled="off")
        assert answer.status_code == 303
        off = parse_html((await http.get("/team/titration")).text)
        assert off.one("#suggestions-off") and off.one("#f-suggestions_enabled").get("checked") is None
        assert (await _protocol(db, team)).suggestions_enabled is False
        restored = await submit(http, off.one("#protocol-restore button"))
        assert restored.status_code == 303
        back = parse_html((await http.get("/team/titration")).text)
        assert not back.select("#suggestions-off") and not back.select("#protocol-restore")
    assert await _protocol(db, team) == titration.DEFAULT


@pytest.mark.parametrize("role", ["midwife", "nurse", "dietitian"])
async def test_other_roles_cannot_read_or_change_it(services: Services, db: asyncpg.Pool, role: str) -> None:
    team = await make_team(db)
    async with browser(services) as http:
        await _signed_in(http, db, team, role)
        assert (await http.get("/team/titration")).status_code == 403
        token = csrf_of((await http.get("/")).text)
        answer = await http.post(f"/team/titration/{team.id}", data={"csrf_token": token, "restore": "1"})
        assert answer.status_code == 403
    assert await db.fetchval("SELECT count(*) FROM team_titration WHERE team_id = $1", team.id) == 0


async def test_another_teams_protocol_and_a_form_without_csrf_are_refused(services: Services, db: asyncpg.Pool) -> None:
    team, other = await make_team(db), await make_team(db)
    async with browser(services) as http:
        await _signed_in(http, db, team, "diabetologist")
        token = csrf_of((await http.get("/team/titration")).text)
        assert (await http.get(f"/team/titration?team={other.id}")).status_code == 404
        stranger = await http.post(f"/team/titration/{other.id}", data={"csrf_token": token, "restore": "1"})
        assert stranger.status_code == 404
        assert (await http.post(f"/team/titration/{team.id}", data={"restore": "1"})).status_code == 403
    assert await db.fetchval("SELECT count(*) FROM team_titration WHERE team_id = ANY($1)", [team.id, other.id]) == 0
