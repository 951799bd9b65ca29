"""Team administration in the dashboard, read as HTML: invitations (by e-mail through a real SMTP server, or shown
to the administrator), one-time links that expire and work once, deactivation that ends sessions at once, password
resets and changes, field-level errors, escaping, and the administrators-only pages."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from telemon import account_links
from telemon.app.services import Services, open_services
from telemon.settings import Settings, SettingsError, parse_smtp_url
from tests.support.smtp import body_of, link_in, smtp_server
from tests.test_ui_toolkit import PASSWORD, Team, browser, csrf_of, login, make_clinician, make_team, parse_html

NEW_PASSWORD = "a long new password 42"
# the test relay asks for a password over a clear loopback connection, which aiosmtpd warns about
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@contextlib.asynccontextmanager
async def served(settings: Settings, **changes: object) -> AsyncIterator[Services]:
    async with open_services(dataclasses.replace(settings, **changes)) as opened:  # type: ignore[arg-type]
        yield opened


@contextlib.asynccontextmanager
async def signed_in(services: Services, email: str, password: str = PASSWORD) -> AsyncIterator[httpx.AsyncClient]:
    """One clinician's browser, signed in."""
    async with browser(services) as http:
        answer = await login(http, email, password)
        assert answer.status_code == 303, answer.text
        yield http


async def invite(http: httpx.AsyncClient, email: str, role: str = "midwife", language: str = "en") -> httpx.Response:
    page = await http.get("/team")
    assert page.status_code == 200
    data = {"csrf_token": csrf_of(page.text), "email": email, "role": role, "language": language}
    return await http.post("/team/invitations", data=data)


def shown_link(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    return parse_html(page.text).one("#one-time-link").text()


def field_errors(page: httpx.Response) -> dict[str, str]:
    return {node.get("data-field") or "": node.text() for node in parse_html(page.text).select("p.field-error")}


async def accept(link: str, services: Services, *, name: str = "Sage-femme Léa", **fields: str) -> httpx.Response:
    async with browser(services) as anonymous:
        data = {"display_name": name, "language": "en", "password": NEW_PASSWORD, "password_again": NEW_PASSWORD}
        return await anonymous.post(urlsplit(link).path, data={**data, **fields})


async def admin_of(db: asyncpg.Pool, team: Team) -> str:
    return await make_clinician(db, team, role="admin")


@pytest.fixture
async def stack() -> AsyncIterator[contextlib.AsyncExitStack]:
    """Closes the browsers a test opened, at its end."""
    async with contextlib.AsyncExitStack() as opened:
        yield opened


def new_address() -> str:
    return f"lea.{uuid.uuid4().hex[:8]}@chu.example"


async def test_an_invitation_sent_by_email_creates_the_account_once(
    settings: Settings, db: asyncpg.Pool, stack: contextlib.AsyncExitStack
) -> None:
    team = await make_team(db)
    admin = await admin_of(db, team)
    email = new_address()
    with smtp_server(login=("relay", "s3cret")) as (url, inbox):
        async with served(settings, smtp_url=url, smtp_from="telemon@chu.example") as services:
            http = await stack.enter_async_context(signed_in(services, admin))
            answer = await invite(http, email)
            assert answer.status_code == 303 and answer.headers["location"] == "/team"
            message = await inbox.wait()
            assert inbox.recipients == [[email]]
            assert message["To"] == email and message["From"] == "telemon@chu.example"
            assert team.name in message["Subject"]
            assert "Midwife" in body_of(message) and "72" not in message["Subject"]
            link = link_in(message)
            assert link.startswith("http://telemon.test/welcome/")
            listed = parse_html((await http.get("/team")).text)
            row = listed.one(f'tr.invitation[data-email="{email}"]')
            assert row.get("data-status") == "invited"

            async with browser(services) as anonymous:
                form = await anonymous.get(urlsplit(link).path)
                assert form.status_code == 200
                assert email in parse_html(form.text).one("form#set-password").parent.text()  # type: ignore[union-attr]
            refused = await accept(link, services, name="", password="short", password_again="short")
            assert refused.status_code == 422
            assert set(field_errors(refused)) == {"display_name", "password"}
            mismatch = await accept(link, services, password_again=NEW_PASSWORD + "!")
            assert set(field_errors(mismatch)) == {"password_again"}

            done = await accept(link, services)
            assert done.status_code == 200
            assert parse_html(done.text).one("#account-done").text() == "Your account is ready: sign in."
            again = await accept(link, services)
            assert again.status_code == 404 and parse_html(again.text).one("#link-invalid")

            midwife = await stack.enter_async_context(signed_in(services, email, NEW_PASSWORD))
            assert (await midwife.get("/")).status_code == 200
            row = parse_html((await http.get("/team")).text).one(f'tr.member[data-email="{email}"]')
            assert "Midwife" in row.text() and row.get("data-status") == "active"
    actions = await db.fetch(
        "SELECT action, actor FROM audit_log WHERE detail->>'email' = $1 OR detail->>'team_id' = $2 ORDER BY id",
        email,
        str(team.id),
    )
    assert [r["action"] for r in actions][:2] == ["clinician.invite", "clinician.create"]


async def test_without_a_mail_server_the_link_is_shown_and_expires(
    services: Services, db: asyncpg.Pool, stack: contextlib.AsyncExitStack
) -> None:
    team = await make_team(db)
    http = await stack.enter_async_context(signed_in(services, await admin_of(db, team)))
    email = new_address()
    page = await invite(http, email)
    first = shown_link(page)
    assert "TELEMON_SMTP_URL" in parse_html(page.text).one("main").text()
    # a second invitation to the same address replaces the first: the older link no longer works
    second = shown_link(await invite(http, email))
    assert (await accept(first, services)).status_code == 404
    # stored hashed: neither the link nor its secret is in the table
    selector, secret = urlsplit(second).path.rsplit("/", 1)[1].split(".")
    stored = await db.fetchrow("SELECT selector, secret_hash FROM clinician_links WHERE selector = $1", selector)
    assert stored is not None and secret.encode() not in bytes(stored["secret_hash"])
    await db.execute(
        "UPDATE clinician_links SET expires_at = now() - interval '1 second' WHERE selector = $1", selector
    )
    async with browser(services) as anonymous:
        expired = await anonymous.get(urlsplit(second).path)
    assert expired.status_code == 404
    assert (await accept(second, services)).status_code == 404
    # a forged secret on a live selector is refused like an unknown link
    third = shown_link(await invite(http, email))
    forged = third[:-4] + ("AAAA" if not third.endswith("AAAA") else "BBBB")
    assert (await accept(forged, services)).status_code == 404
    assert (await accept(third, services)).status_code == 200


async def test_the_invitation_form_names_the_wrong_fields(
    services: Services, db: asyncpg.Pool, stack: contextlib.AsyncExitStack
) -> None:
    team = await make_team(db)
    admin = await admin_of(db, team)
    http = await stack.enter_async_context(signed_in(services, admin))
    bad = await invite(http, "not an address", role="surgeon", language="de")
    assert bad.status_code == 422
    assert set(field_errors(bad)) == {"email", "role", "language"}
    assert parse_html(bad.text).one("#invite-email").get("aria-invalid") == "true"
    taken = await invite(http, admin.upper())
    assert field_errors(taken) == {"email": "A clinician with this address already has an account."}
    missing_csrf = await http.post("/team/invitations", data={"email": new_address(), "role": "nurse"})
    assert missing_csrf.status_code == 403


async def test_what_a_clinician_types_is_escaped_on_the_team_page(
    services: Services, db: asyncpg.Pool, stack: contextlib.AsyncExitStack
) -> None:
    team = await make_team(db)
    http = await stack.enter_async_context(signed_in(services, await admin_of(db, team)))
    email = new_address()
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    assert (
        await accept(shown_link(await invite(http, email, role="dietitian")), services, name=hostile)
    ).status_code == 200
    page = await http.get("/team")
    doc = parse_html(page.text)
    assert not doc.select("main script") and not doc.select("main img")
    row = doc.one(f'tr.member[data-email="{email}"]')
    assert hostile in row.text() and "Dietitian" in row.text()


async def test_administration_pages_are_for_administrators(
    services: Services, db: asyncpg.Pool, stack: contextlib.AsyncExitStack
) -> None:
    team = await make_team(db)
    nurse = await stack.enter_async_context(signed_in(services, await make_clinician(db, team, role="nurse")))
    home = await nurse.get("/")
    assert not parse_html(home.text).select('nav a[href="/team"]')
    token = csrf_of(home.text)
    for path in ("/team", "/team/api-keys", "/team/audit", "/team/audit.csv"):
        assert (await nurse.get(path)).status_code == 403, path
    for path in ("/team/invitations", "/team/api-keys", f"/team/clinicians/{uuid.uuid4()}/deactivate"):
        answer = await nurse.post(path, data={"csrf_token": token, "email": new_address(), "role": "admin"})
        assert answer.status_code == 403, path
    assert await db.fetchval("SELECT count(*) FROM clinician_links WHERE team_id = $1", team.id) == 0
    async with browser(services) as anonymous:
        assert (await anonymous.get("/team")).status_code == 303


async def test_deactivating_a_clinician_ends_her_sessions_at_once(
    services: Services, db: asyncpg.Pool, stack: contextlib.AsyncExitStack
) -> None:
    team, other = await make_team(db), await make_team(db)
    admin_email = await admin_of(db, team)
    http = await stack.enter_async_context(signed_in(services, admin_email))
    midwife_email = await make_clinician(db, team, role="midwife")
    midwife = await stack.enter_async_context(signed_in(services, midwife_email))
    assert (await midwife.get("/")).status_code == 200
    page = parse_html((await http.get("/team")).text)
    row = page.one(f'tr.member[data-email="{midwife_email}"]')
    deactivate = row.one('button[name="deactivate"]')
    action = deactivate.parent.get("action")  # type: ignore[union-attr]
    token = csrf_of((await http.get("/team")).text)
    assert (await http.post(action or "", data={"csrf_token": token})).status_code == 303
    refused = await midwife.get("/")
    assert refused.status_code == 303 and refused.headers["location"].startswith("/login")
    assert (await login(midwife, midwife_email)).status_code == 401
    row = parse_html((await http.get("/team")).text).one(f'tr.member[data-email="{midwife_email}"]')
    assert row.get("data-status") == "deactivated"
    # not herself, and nobody of another team
    me = await db.fetchval("SELECT id FROM clinicians WHERE lower(email) = lower($1)", admin_email)
    self_off = await http.post(f"/team/clinicians/{me}/deactivate", data={"csrf_token": token})
    assert self_off.status_code == 422
    stranger = await db.fetchval(
        "SELECT id FROM clinicians WHERE lower(email) = lower($1)", await make_clinician(db, other)
    )
    assert (await http.post(f"/team/clinicians/{stranger}/deactivate", data={"csrf_token": token})).status_code == 404
    midwife_id = await db.fetchval("SELECT id FROM clinicians WHERE lower(email) = lower($1)", midwife_email)
    answer = await http.post(f"/team/clinicians/{midwife_id}/reactivate", data={"csrf_token": token})
    assert answer.status_code == 303
    assert (await login(midwife, midwife_email)).status_code == 303
    actions = await db.fetch(
        "SELECT action FROM audit_log WHERE detail->>'clinician_id' = $1 ORDER BY id", str(midwife_id)
    )
    assert [r["action"] for r in actions] == ["clinician.deactivate", "clinician.reactivate"]


async def test_an_administrator_resets_a_password_by_a_one_time_link(
    services: Services, db: asyncpg.Pool, stack: contextlib.AsyncExitStack
) -> None:
    team = await make_team(db)
    http = await stack.enter_async_context(signed_in(services, await admin_of(db, team)))
    nurse_email = await make_clinician(db, team, role="nurse")
    nurse = await stack.enter_async_context(signed_in(services, nurse_email))
    nurse_id = await db.fetchval("SELECT id FROM clinicians WHERE lower(email) = lower($1)", nurse_email)
    token = csrf_of((await http.get("/team")).text)
    link = shown_link(await http.post(f"/team/clinicians/{nurse_id}/reset", data={"csrf_token": token}))
    assert "/reset/" in link
    assert (await nurse.get("/")).status_code == 200  # her password and sessions hold until the link is used
    async with browser(services) as anonymous:
        path = urlsplit(link).path
        short = await anonymous.post(path, data={"password": "short", "password_again": "short"})
        assert short.status_code == 422 and set(field_errors(short)) == {"password"}
        done = await anonymous.post(path, data={"password": NEW_PASSWORD, "password_again": NEW_PASSWORD})
        assert done.status_code == 200
        assert (await anonymous.post(path, data={"password": PASSWORD, "password_again": PASSWORD})).status_code == 404
    assert (await nurse.get("/")).status_code == 303  # her sessions ended
    assert (await login(nurse, nurse_email)).status_code == 401
    assert (await login(nurse, nurse_email, NEW_PASSWORD)).status_code == 303


async def test_a_clinician_changes_her_own_password(
    services: Services, db: asyncpg.Pool, stack: contextlib.AsyncExitStack
) -> None:
    team = await make_team(db)
    email = await make_clinician(db, team, role="midwife")
    here = await stack.enter_async_context(signed_in(services, email))
    elsewhere = await stack.enter_async_context(signed_in(services, email))
    page = await here.get("/account/password")
    assert parse_html(page.text).select('nav a[href="/account/password"]')
    token = csrf_of(page.text)
    wrong = await here.post(
        "/account/password",
        data={"csrf_token": token, "current_password": "guess", "password": NEW_PASSWORD, "password_again": "x"},
    )
    assert wrong.status_code == 422 and set(field_errors(wrong)) == {"current_password", "password_again"}
    changed = await here.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "password": NEW_PASSWORD,
            "password_again": NEW_PASSWORD,
        },
    )
    assert changed.status_code == 303
    assert (await here.get("/")).status_code == 200  # this session goes on
    assert (await elsewhere.get("/")).status_code == 303  # the other one ended
    assert (await login(elsewhere, email, NEW_PASSWORD)).status_code == 303


async def test_a_mail_server_that_refuses_leaves_the_link_to_the_administrator(
    settings: Settings, db: asyncpg.Pool, stack: contextlib.AsyncExitStack
) -> None:
    team = await make_team(db)
    with smtp_server(login=("relay", "s3cret")) as (url, inbox):
        wrong = url.replace("relay:s3cret@", "relay:wrong@")
        async with served(settings, smtp_url=wrong) as services:
            http = await stack.enter_async_context(signed_in(services, await admin_of(db, team)))
            page = await invite(http, new_address())
            link = shown_link(page)
            assert "could not be sent" in parse_html(page.text).one("main p.error").text()
            assert inbox.messages == []
            assert (await accept(link, services)).status_code == 200


def test_smtp_urls_say_how_to_reach_the_server() -> None:
    plain = parse_smtp_url("smtp://relay.chu.example")
    assert (plain.host, plain.port, plain.tls, plain.username) == ("relay.chu.example", 25, None, None)
    starttls = parse_smtp_url("smtp+starttls://user%40chu:p%3Ass@mail.chu.example")
    assert (starttls.port, starttls.tls, starttls.username, starttls.password) == (587, "starttls", "user@chu", "p:ss")
    assert parse_smtp_url("smtps://mail.chu.example:2465").tls == "tls"
    assert parse_smtp_url("smtps://mail.chu.example:2465").port == 2465
    for bad in ("http://mail.chu.example", "smtp://", "smtp://host:port"):
        with pytest.raises(SettingsError, match="TELEMON_SMTP_URL"):
            parse_smtp_url(bad)
    with pytest.raises(SettingsError, match=r"u:\*\*\*@host") as refused:
        Settings.from_env({"TELEMON_SMTP_URL": "ftp://u:secret@host"})
    assert "secret" not in str(refused.value)
    assert Settings.from_env({}).smtp_url is None
    assert account_links.LINK_TTL_S == 72 * 3600
