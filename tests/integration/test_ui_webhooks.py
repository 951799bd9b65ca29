"""The webhooks pages of the team administration, read as HTML: an address is added with its events and its
secret shown once, a wrong address is refused beside its field, another team's endpoint stays out of sight, and
the delivery log shows each attempt with a re-send."""

from __future__ import annotations

import asyncpg

from telemon import webhooks
from telemon.app.services import Services
from tests.test_ui_toolkit import browser, csrf_of, login, make_clinician, make_team, parse_html


async def test_an_administrator_adds_a_webhook_sees_its_secret_once_and_reads_its_log(
    services: Services, db: asyncpg.Pool
) -> None:
    team, other = await make_team(db), await make_team(db)
    async with db.acquire() as conn:
        theirs, _ = await webhooks.create(
            conn, team_id=other.id, url="https://other.example/hook", events=["alert.opened"], actor="test"
        )
    async with browser(services) as http:
        email = await make_clinician(db, team, role="admin")
        assert (await login(http, email)).status_code == 303
        page = await http.get("/team/webhooks")
        assert page.status_code == 200 and "https://other.example/hook" not in page.text
        token = csrf_of(page.text)

        refused = await http.post("/team/webhooks", data={"csrf_token": token, "url": "mirth.local/hook"})
        assert refused.status_code == 422
        assert {n.get("data-field") for n in parse_html(refused.text).select("p.field-error")} == {"url"}

        form = {
            "csrf_token": token,
            "url": "http://10.20.0.4:8443/telemon",
            "events": ["alert.opened", "message.received"],
        }
        created = await http.post("/team/webhooks", data=form)
        assert created.status_code == 200
        secret = parse_html(created.text).one("#new-secret").text()
        assert secret.startswith("whsec_")
        listed = await http.get("/team/webhooks")
        assert secret not in listed.text
        (row,) = parse_html(listed.text).select("tr.webhook")
        endpoint_id = row.get("data-id")
        assert row.get("data-active") == "true"

        assert (await http.get(f"/team/webhooks/{theirs.id}")).status_code == 404
        turned = await http.post(f"/team/webhooks/{theirs.id}/disable", data={"csrf_token": token})
        assert turned.status_code == 404
        off = await http.post(f"/team/webhooks/{endpoint_id}/disable", data={"csrf_token": token})
        assert off.status_code == 303
        row = parse_html((await http.get("/team/webhooks")).text).one("tr.webhook")
        assert row.get("data-active") == "false"

        log = await http.get(f"/team/webhooks/{endpoint_id}")
        assert log.status_code == 200 and parse_html(log.text).select("tr.delivery") == []

        # a midwife is not an administrator
        other_browser_email = await make_clinician(db, team, role="midwife")
    async with browser(services) as http:
        assert (await login(http, other_browser_email)).status_code == 303
        assert (await http.get("/team/webhooks")).status_code == 403
    actions = await db.fetch("SELECT action FROM audit_log WHERE detail->>'webhook_id' = $1 ORDER BY id", endpoint_id)
    assert [r["action"] for r in actions] == ["webhook.create", "webhook.disable"]
