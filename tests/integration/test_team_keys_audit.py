"""The API keys and audit pages of the team administration, read as HTML and CSV: a key is shown once and then only
its label; keys of other teams stay out of sight; the audit log filters by actor, patient, action and dates, pages
by keyset and exports exactly the filtered rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx

from clinician_ui.audit_page import PAGE_ROWS
from telemon import api_keys, audit
from telemon.app.services import Services
from telemon.csv_export import csv_cell
from tests.test_ui_toolkit import browser, csrf_of, login, make_clinician, make_patient, make_team, parse_html


async def _admin(services: Services, db: asyncpg.Pool, http: httpx.AsyncClient, team: object) -> uuid.UUID:
    email = await make_clinician(db, team, role="admin")  # type: ignore[arg-type]
    assert (await login(http, email)).status_code == 303
    clinician_id: uuid.UUID = await db.fetchval("SELECT id FROM clinicians WHERE lower(email) = lower($1)", email)
    return clinician_id


async def test_an_api_key_is_shown_once_then_only_its_label(services: Services, db: asyncpg.Pool) -> None:
    team, other = await make_team(db), await make_team(db)
    async with db.acquire() as conn:
        theirs = await api_keys.create_api_key(
            conn, label="Other hospital", scopes=["readings:read"], team_ids=[other.id]
        )
    async with browser(services) as http:
        await _admin(services, db, http, team)
        page = await http.get("/team/api-keys")
        token = csrf_of(page.text)
        refused = await http.post("/team/api-keys", data={"csrf_token": token, "label": ""})
        assert refused.status_code == 422
        errors = {n.get("data-field") for n in parse_html(refused.text).select("p.field-error")}
        assert errors == {"label", "scopes"}
        form = {"csrf_token": token, "label": "DPI <Orbis>", "scopes": ["patients:read", "patients:write"]}
        created = await http.post("/team/api-keys", data=form)
        assert created.status_code == 200
        key = parse_html(created.text).one("#new-key").text()
        assert key.startswith("tmk_") and "DPI &lt;Orbis&gt;" in created.text
        found = await api_keys.by_key(db, key)
        assert (
            found is not None and found.scopes == ("patients:read", "patients:write") and found.team_ids == (team.id,)
        )

        listed = await http.get("/team/api-keys")
        assert key not in listed.text and key[4:20] not in listed.text
        rows = parse_html(listed.text).select("tr.api-key")
        assert [r.one("td.label").text() for r in rows] == ["DPI <Orbis>"]  # not the other team's key
        assert rows[0].one("td.last-used").text() != "never"
        assert (await http.post(f"/team/api-keys/{theirs.id}/revoke", data={"csrf_token": token})).status_code == 404
        revoke = await http.post(f"/team/api-keys/{found.id}/revoke", data={"csrf_token": token})
        assert revoke.status_code == 303
        assert await api_keys.by_key(db, key) is None
        row = parse_html((await http.get("/team/api-keys")).text).one("tr.api-key")
        assert row.get("data-active") == "false" and not row.select("button")
    assert await api_keys.by_key(db, theirs.key) is not None
    actions = await db.fetch("SELECT action FROM audit_log WHERE detail->>'api_key_id' = $1 ORDER BY id", str(found.id))
    assert [r["action"] for r in actions] == ["api_key.create", "api_key.revoke"]


async def _audit(http: httpx.AsyncClient, **params: str) -> httpx.Response:
    return await http.get("/team/audit", params=params)


def _actions(page: httpx.Response) -> list[str]:
    return [row.one("td.action").text() for row in parse_html(page.text).select("tr.audit-row")]


async def test_the_audit_page_filters_pages_and_exports(services: Services, db: asyncpg.Pool) -> None:
    team, other = await make_team(db), await make_team(db)
    patient, _ = await make_patient(db, team, '=HYPERLINK("http://evil")')
    stranger, _ = await make_patient(db, other, "Other team's patient")
    external_id = await db.fetchval("SELECT external_id FROM patients WHERE id = $1", patient)
    nurse_email = await make_clinician(db, team, role="nurse")
    nurse = await db.fetchval("SELECT id FROM clinicians WHERE lower(email) = lower($1)", nurse_email)
    marker = f"test.{uuid.uuid4().hex[:8]}"
    for i in range(PAGE_ROWS + 5):
        await audit.record(db, actor=f"clinician:{nurse}", action=f"{marker}.read", patient_id=patient, detail={"i": i})
    await audit.record(db, actor=f"clinician:{nurse}", action=f"{marker}.note", patient_id=patient)
    await audit.record(db, actor="cli", action=f"{marker}.read", patient_id=stranger)  # another team: never shown
    await db.execute(
        "UPDATE audit_log SET at = now() - interval '10 days' WHERE action = $1 AND detail->>'i' = '0'",
        f"{marker}.read",
    )
    async with browser(services) as http:
        await _admin(services, db, http, team)
        page = await _audit(http, action=marker)
        assert page.status_code == 200
        first = _actions(page)
        assert len(first) == PAGE_ROWS and first[0] == f"{marker}.note"
        older = parse_html(page.text).one("#audit-older").get("href") or ""
        rest = _actions(await http.get(older))
        assert len(first) + len(rest) == PAGE_ROWS + 6
        assert parse_qs(urlsplit(older).query)["action"] == [marker]

        by_actor = await _audit(http, action=marker, actor=f"clinician:{nurse}", patient=external_id)
        rows = parse_html(by_actor.text).select("tr.audit-row")
        assert rows and all(r.one("td.patient").text().startswith("=HYPERLINK") for r in rows)
        assert _actions(await _audit(http, action=f"{marker}.note")) == [f"{marker}.note"]
        today = dt.datetime.now(dt.UTC).date()
        old = await _audit(http, action=marker, to=(today - dt.timedelta(days=5)).isoformat())
        assert _actions(old) == [f"{marker}.read"]
        recent = await _audit(http, action=marker, **{"from": (today - dt.timedelta(days=5)).isoformat()})
        assert len(_actions(recent)) == PAGE_ROWS  # first page of the PAGE_ROWS + 5 recent rows

        bad = await _audit(
            http, actor="clinician:someone", patient="IPP-none", **{"from": "2026-13-01", "to": "yesterday"}
        )
        assert bad.status_code == 422
        fields = {n.get("data-field") for n in parse_html(bad.text).select("p.field-error")}
        assert fields == {"actor", "patient", "from", "to"}
        assert _actions(await _audit(http, patient=str(stranger))) == []  # another team's patient is unknown here

        exported = await http.get("/team/audit.csv", params={"action": marker, "patient": str(patient)})
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        table = list(csv.DictReader(io.StringIO(exported.text)))
        assert len(table) == PAGE_ROWS + 6
        assert {r["action"] for r in table} == {f"{marker}.read", f"{marker}.note"}
        assert all(r["patient"].startswith("'=HYPERLINK") for r in table)  # never a formula in a spreadsheet
        assert {r["actor"] for r in table} == {f"clinician:{nurse}"}
    exports = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'audit.export' AND detail->>'rows' = $1", str(PAGE_ROWS + 6)
    )
    assert exports == 1


def test_csv_cells_never_start_a_formula() -> None:
    assert [csv_cell(v) for v in ("=1+1", "+33 6", "-2", "@SUM", "Léa", None, 5)] == [
        "'=1+1",
        "'+33 6",
        "'-2",
        "'@SUM",
        "Léa",
        "",
        "5",
    ]
