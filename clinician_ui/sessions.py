"""Clinician sign-in: argon2 password check, sessions, CSRF tokens and the lock-out after repeated failures.

- The session cookie carries 256 random bits; the database keeps only their SHA-256 (telemon.security), with
  the clinician, a CSRF token of the session's own, an idle limit and an absolute end. The cookie is HttpOnly,
  SameSite=Lax, Secure over HTTPS, and never outlives the browser session.
- Every form carries the session's CSRF token (the login form a token of its own, double-submitted in a cookie);
  a POST without the right one is refused.
- Failures are counted per account *and source* (the client's address; an IPv6 client's /64, which one machine
  usually has whole) and per source across accounts. From the ``threshold``-th failure within an hour the key is
  locked for ``LOCK_BASE_S`` seconds, doubling with each further failure up to ``LOCK_MAX_S``; attempts while
  locked are refused without checking the password. A successful login clears its account-and-source counter.
  So someone typing a clinician's e-mail with wrong passwords locks that e-mail *from their own address* only:
  the clinician still signs in from hers. The per-source counter (a higher threshold: a hospital's NAT carries
  many clinicians) stops one source from trying a password on many accounts.
- There is deliberately no lock of an account from everywhere: whoever can reach the login page could then lock
  any named clinician out, and an attacker with many addresses (an IPv6 /48 holds 65,536 /64s) would do it
  easily. The failures of an account from all sources are still counted, and crossing ``ACCOUNT_WATCH`` within
  the window is logged and audited once (a distributed guessing attempt for someone to look at), without locking.
- An unknown email costs the same argon2 work as a wrong password, so timing does not reveal accounts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import ipaddress
import logging
import secrets
import uuid
from dataclasses import dataclass

import asyncpg

from clinician_ui import queries
from telemon import audit
from telemon.security import hash_password, secret_hash, verify_password

log = logging.getLogger(__name__)

COOKIE = "telemon_session"
LOGIN_CSRF_COOKIE = "telemon_login_csrf"
IDLE_S = 8 * 3600  # a session unused for a working day ends
ABSOLUTE_S = 24 * 3600  # and none lasts longer than a day
ACCOUNT_THRESHOLD = 5  # failures for one account from one source before that pair is locked
ADDRESS_THRESHOLD = 50  # failures from one source across accounts (a hospital's NAT carries many clinicians)
ACCOUNT_WATCH = 100  # failures for one account from all sources: logged and audited, never locked
LOCK_BASE_S = 30.0
LOCK_MAX_S = 15 * 60.0
FAILURE_WINDOW_S = 3600.0  # a failure older than this restarts the count

_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Clinician:
    """The signed-in clinician of a request, with the care teams that scope everything they see."""

    id: uuid.UUID
    email: str
    display_name: str
    role: str
    language: str
    unit: str
    team_ids: tuple[uuid.UUID, ...]
    csrf_token: str
    session_hash: bytes
    flash: str | None

    @property
    def actor(self) -> str:
        return f"clinician:{self.id}"

    @property
    def can_prescribe(self) -> bool:
        """Targets, treatment and the prescription are medical decisions: diabetologists (and admins)."""
        return self.role in ("diabetologist", "admin")


@dataclass(frozen=True)
class LoginResult:
    token: str | None = None  # the new session's cookie value
    locked_for_s: int = 0  # > 0: refused, locked for that long


def new_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def lock_seconds(failures: int, threshold: int) -> float | None:
    """How long a key is locked after its ``failures``-th failure (None: not locked)."""
    if failures < threshold:
        return None
    return min(LOCK_MAX_S, LOCK_BASE_S * 2.0 ** (failures - threshold))


def source(address: str | None) -> str:
    """The source a failure is counted against: the client's IPv4 address, or the /64 of an IPv6 one (one
    machine or home usually holds a whole /64, and could otherwise try from a new address every time)."""
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    if isinstance(ip, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def account_key(email: str, address: str | None) -> str:
    """The counter of one account's failures from one source: the one that locks."""
    return f"email:{email.strip().lower()}|from:{source(address)}"


def _keys(email: str, address: str | None) -> list[tuple[str, int | None]]:
    """The counters a failure adds to, with the failures that lock each (None: counted, never locked)."""
    return [
        (account_key(email, address), ACCOUNT_THRESHOLD),
        (f"ip:{source(address)}", ADDRESS_THRESHOLD),
        (f"email:{email.strip().lower()}", None),
    ]


async def _record_failure(db: asyncpg.Pool, key: str, threshold: int | None) -> int:
    """Count a failure against ``key`` (restarting the count after a quiet window); returns the count."""
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(queries.THROTTLE_ENSURE, key)
        row = await conn.fetchrow(queries.THROTTLE_FOR_UPDATE, key)
        assert row is not None
        stale = (row["now"] - row["last_failure_at"]).total_seconds() > FAILURE_WINDOW_S
        failures = 1 if stale else row["failures"] + 1
        locked = lock_seconds(failures, threshold) if threshold is not None else None
        await conn.execute(queries.THROTTLE_SET, key, failures, locked)
    return int(failures)


async def login(
    db: asyncpg.Pool, email: str, password: str, *, address: str | None, user_agent: str = ""
) -> LoginResult:
    keys = _keys(email, address)
    lockable = [key for key, threshold in keys if threshold is not None]
    locked_until: dt.datetime | None = await db.fetchval(queries.THROTTLE_LOCKED_UNTIL, lockable)
    if locked_until is not None:
        remaining = (locked_until - dt.datetime.now(dt.UTC)).total_seconds()
        return LoginResult(locked_for_s=max(1, int(remaining + 0.999)))
    row = await db.fetchrow(queries.CLINICIAN_BY_EMAIL, email.strip())
    # argon2 takes tens of milliseconds of CPU: off the event loop, and as long for an unknown email
    password_hash = row["password_hash"] if row is not None else _DUMMY_HASH
    valid = await asyncio.to_thread(verify_password, password_hash, password)
    if row is None or not valid or not row["active"]:
        counts = [await _record_failure(db, key, threshold) for key, threshold in keys]
        detail = {"email": email.strip().lower()[:200], "address": address}
        await audit.record(db, actor="anonymous", action="login.failed", detail=detail)
        if counts[-1] == ACCOUNT_WATCH:
            watched = {**detail, "failures": ACCOUNT_WATCH, "window_s": FAILURE_WINDOW_S}
            log.warning("many failed sign-ins for one account, from several sources", extra=watched)
            await audit.record(db, actor="anonymous", action="login.many_failures", detail=watched)
        return LoginResult()
    token = new_token()
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(queries.THROTTLE_CLEAR, account_key(email, address))
        await conn.execute(queries.DELETE_EXPIRED_SESSIONS, row["id"], float(IDLE_S))
        await conn.execute(
            queries.CREATE_SESSION,
            secret_hash(token),
            row["id"],
            new_token(),
            float(ABSOLUTE_S),
            user_agent[:300],
            address,
        )
        await audit.record(conn, actor=f"clinician:{row['id']}", action="login", detail={"address": address})
    return LoginResult(token=token)


async def clinician_of(db: asyncpg.Pool, token: str | None) -> Clinician | None:
    """The clinician of a session cookie, or None (no cookie, unknown, idle too long, past its end, inactive)."""
    if not token:
        return None
    token_hash = secret_hash(token)
    row = await db.fetchrow(queries.SESSION_CLINICIAN, token_hash, float(IDLE_S))
    if row is None:
        return None
    idle = (dt.datetime.now(dt.UTC) - row["last_seen_at"]).total_seconds()
    if row["flash"] is not None or idle > 60:
        await db.execute(queries.TOUCH_SESSION, token_hash)
    return Clinician(
        id=row["clinician_id"],
        email=row["email"],
        display_name=row["display_name"],
        role=row["role"],
        language=row["language"],
        unit=row["display_unit"],
        team_ids=tuple(row["team_ids"]),
        csrf_token=row["csrf_token"],
        session_hash=token_hash,
        flash=row["flash"],
    )


async def logout(db: asyncpg.Pool, clinician: Clinician) -> None:
    await db.execute(queries.DELETE_SESSION, clinician.session_hash)
    await audit.record(db, actor=clinician.actor, action="logout")


async def flash(db: asyncpg.Pool, clinician: Clinician, message: str) -> None:
    """A message for the next page the clinician sees (after the redirect of a form)."""
    await db.execute(queries.SET_FLASH, clinician.session_hash, message)
