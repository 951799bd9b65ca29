"""The sign-in lock-out counts an account's failures per source: wrong passwords typed for a clinician's e-mail
somewhere lock that e-mail from there only, never the clinician herself; a source trying many accounts is locked
across accounts; an account failing from many sources is reported, not locked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest

from clinician_ui.sessions import ACCOUNT_THRESHOLD, ACCOUNT_WATCH, ADDRESS_THRESHOLD, account_key, source
from telemon.app.factory import create_app
from telemon.app.services import Services
from tests.test_ui_toolkit import PASSWORD, login, make_clinician, make_team

ATTACKER = "198.51.100.7"
CLINIC = "192.0.2.10"


@asynccontextmanager
async def browser_at(services: Services, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A browser whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=create_app(services=services), client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://telemon.test") as http:
        yield http


async def test_wrong_passwords_from_elsewhere_do_not_lock_the_clinician_out(
    services: Services, db: asyncpg.Pool
) -> None:
    email = await make_clinician(db, await make_team(db))
    async with browser_at(services, ATTACKER) as attacker, browser_at(services, CLINIC) as clinician:
        for _ in range(ACCOUNT_THRESHOLD + 2):
            assert (await login(attacker, email, "guess")).status_code in (401, 429)
        locked = await login(attacker, email)  # even the right password, from there
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
        signed = await login(clinician, email)
        assert signed.status_code == 303 and "telemon_session=" in signed.headers["set-cookie"]
        # her success clears her own counter only: the attacker's address stays locked for that account
        assert (await login(attacker, email)).status_code == 429
    counters = {
        r["key"]: r["failures"]
        for r in await db.fetch("SELECT key, failures FROM login_throttle WHERE key LIKE $1", f"%{email}%")
    }
    assert counters[account_key(email, ATTACKER)] == ACCOUNT_THRESHOLD  # attempts while locked are not counted
    assert account_key(email, CLINIC) not in counters


async def test_one_source_trying_many_accounts_is_locked_across_accounts(services: Services, db: asyncpg.Pool) -> None:
    sprayer = "203.0.113.50"
    victim = await make_clinician(db, await make_team(db))
    async with browser_at(services, sprayer) as http, browser_at(services, CLINIC) as clinician:
        assert (await login(http, "nobody-1@chu.example", "Summer2026!")).status_code == 401
        # as if the source had already failed on many other accounts within the hour
        await db.execute(
            "UPDATE login_throttle SET failures = $2 WHERE key = $1", f"ip:{sprayer}", ADDRESS_THRESHOLD - 1
        )
        assert (await login(http, "nobody-2@chu.example", "Summer2026!")).status_code == 401
        refused = await login(http, victim, "Summer2026!")  # an account it never tried before
        assert refused.status_code == 429
        assert (await login(clinician, victim)).status_code == 303  # from her own address she signs in


async def test_failures_from_many_sources_are_reported_without_locking(
    services: Services, db: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    email = await make_clinician(db, await make_team(db))
    async with browser_at(services, ATTACKER) as http:
        assert (await login(http, email, "guess")).status_code == 401
    await db.execute("UPDATE login_throttle SET failures = $2 WHERE key = $1", f"email:{email}", ACCOUNT_WATCH - 2)
    async with browser_at(services, "198.51.100.8") as http:
        assert (await login(http, email, "guess")).status_code == 401
        assert (await login(http, email, "guess")).status_code == 401  # past the watch: still not locked
    assert [r for r in caplog.records if r.getMessage().startswith("many failed sign-ins for one account")]
    reported = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'login.many_failures' AND detail->>'email' = $1", email
    )
    assert reported == 1
    async with browser_at(services, CLINIC) as clinician:
        assert (await login(clinician, email, PASSWORD)).status_code == 303


def test_sources_group_an_ipv6_client_by_its_64() -> None:
    assert source("2001:db8:1:2:aaaa::1") == source("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert source("2001:db8:1:3::1") != source("2001:db8:1:2::1")
    assert source("::ffff:198.51.100.7") == "198.51.100.7"
    assert source("198.51.100.7") == "198.51.100.7"
    assert source(None) == "unknown"
    assert account_key(" Dr.X@CHU.example ", "2001:db8:1:2::5") == "email:dr.x@chu.example|from:2001:db8:1:2::/64"
