"""Clinician sign-in: argon2 password check, sessions, CSRF tokens and the lock-out after repeated failures.

- The session cookie carries 256 random bits; the database keeps only their SHA-256 (telemon.security), with
  the clinician, a CSRF token of the session's own, an idle limit and an absolute end. The cookie is HttpOnly,
  SameSite=Lax, Secure over HTTPS, and never outlives the browser session.
- Every form carries the session's CSRF token (the login form a token of its own, double-submitted in a cookie);
  a POST without the right one is refused.
- Failures are counted per account and per client address. From the ``threshold``-th failure within an hour the
  key is locked for ``LOCK_BASE_S`` seconds, doubling with each further failure up to ``LOCK_MAX_S``; attempts
  while locked are refused without checking the password. A successful login clears the account's counter.
- An unknown email costs the same argon2 work as a wrong password, so timing does not reveal accounts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import secrets
import uuid
from dataclasses import dataclass

import asyncpg

from clinician_ui import queries
from telemon import audit
from telemon.security import hash_password, secret_hash, verify_password

COOKIE = "telemon_session"
LOGIN_CSRF_COOKIE = "telemon_login_csrf"
IDLE_S = 8 * 3600  # a session unused for a working day ends
ABSOLUTE_S = 24 * 3600  # and none lasts longer than a day
ACCOUNT_THRESHOLD = 5  # failures for one account before it is locked
ADDRESS_THRESHOLD = 50  # failures from one address (a hospital's NAT carries many clinicians)
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


def _keys(email: str, address: str | None) -> list[tuple[str, int]]:
    keys = [(f"email:{email.strip().lower()}", ACCOUNT_THRESHOLD)]
    if address:
        keys.append((f"ip:{address}", ADDRESS_THRESHOLD))
    return keys


async def _record_failure(db: asyncpg.Pool, key: str, threshold: int) -> None:
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(queries.THROTTLE_ENSURE, key)
        row = await conn.fetchrow(queries.THROTTLE_FOR_UPDATE, key)
        assert row is not None
        stale = (row["now"] - row["last_failure_at"]).total_seconds() > FAILURE_WINDOW_S
        failures = 1 if stale else row["failures"] + 1
        await conn.execute(queries.THROTTLE_SET, key, failures, lock_seconds(failures, threshold))


async def login(
    db: asyncpg.Pool, email: str, password: str, *, address: str | None, user_agent: str = ""
) -> LoginResult:
    keys = _keys(email, address)
    locked_until: dt.datetime | None = await db.fetchval(queries.THROTTLE_LOCKED_UNTIL, [k for k, _ in keys])
    if locked_until is not None:
        remaining = (locked_until - dt.datetime.now(dt.UTC)).total_seconds()
        return LoginResult(locked_for_s=max(1, int(remaining + 0.999)))
    row = await db.fetchrow(queries.CLINICIAN_BY_EMAIL, email.strip())
    # argon2 takes tens of milliseconds of CPU: off the event loop, and as long for an unknown email
    password_hash = row["password_hash"] if row is not None else _DUMMY_HASH
    valid = await asyncio.to_thread(verify_password, password_hash, password)
    if row is None or not valid or not row["active"]:
        for key, threshold in keys:
            await _record_failure(db, key, threshold)
        detail = {"email": email.strip().lower()[:200], "address": address}
        await audit.record(db, actor="anonymous", action="login.failed", detail=detail)
        return LoginResult()
    token = new_token()
    async with db.acquire() as conn, conn.transaction():
        await conn.execute(queries.THROTTLE_CLEAR, keys[0][0])
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
