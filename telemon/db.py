"""The database pool: connecting with a clear error, and the advisory-lock keys telemon uses."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from telemon import fastjson
from telemon.settings import SettingsError, redact

# Advisory-lock keys (pg_advisory_lock takes a bigint); one constant per purpose.
LOCK_MIGRATIONS = 7_461_001
LOCK_SCHEDULER = 7_461_002

# A connection of one's own or one borrowed from the pool: query functions take either.
Conn = asyncpg.Connection | PoolConnectionProxy

log = logging.getLogger(__name__)
T = TypeVar("T")

WAIT_LOG_EVERY_S = 60.0  # while waiting for the database at start-up, a reminder in the log this often
WAIT_RETRY_MAX_S = 5.0


async def _init_connection(conn: asyncpg.Connection) -> None:
    # orjson: the alert engine writes thousands of evidence documents a pass
    await conn.set_type_codec("jsonb", encoder=fastjson.dumps, decoder=fastjson.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=fastjson.dumps, decoder=fastjson.loads, schema="pg_catalog")


async def create_pool(url: str, *, max_size: int = 10, min_size: int = 1, timeout: float = 10.0) -> asyncpg.Pool:
    """A pool on ``url``; an unreachable or refusing server raises ``SettingsError`` naming the URL."""
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min(min_size, max_size),
            max_size=max_size,
            init=_init_connection,
            timeout=timeout,
            command_timeout=60,
            # JIT compiling pays off for long analytic scans, never for telemon's short statements: a plan whose
            # estimated cost crosses jit_above_cost as the database grows (triage planned for any values) paid
            # 40–620 ms of compiling for a 3 ms query (bench.scale)
            server_settings={"application_name": "telemon", "jit": "off"},
        )
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise SettingsError(f"TELEMON_DATABASE_URL: cannot connect to {redact(url)}: {describe(exc)}") from exc
    assert pool is not None
    return pool


async def connect(url: str, timeout: float = 10.0) -> asyncpg.Connection:
    """One connection (for the command line and fixtures), with the same error as ``create_pool``."""
    try:
        conn: asyncpg.Connection = await asyncpg.connect(url, timeout=timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        raise SettingsError(f"TELEMON_DATABASE_URL: cannot connect to {redact(url)}: {describe(exc)}") from exc
    await _init_connection(conn)
    return conn


# What a database that is down, restarting or overloaded raises (asyncpg's connection errors, PostgreSQL's
# classes 08 "connection exception", 57P01-57P03 "operator intervention" and 53 "insufficient resources"),
# and what asyncpg raises on a connection broken meanwhile ("connection is closed", InternalClientError just
# after the server came back). Not included: asyncpg's DataError and other InterfaceErrors about the values
# given, nor any other PostgresError: those are answers about the data, and retrying them gives the same answer.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.InsufficientResourcesError,
    asyncpg.InternalClientError,
)
_ABOUT_THE_VALUES: tuple[type[BaseException], ...] = (
    asyncpg.DataError,
    asyncpg.exceptions.ClientConfigurationError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.UnsupportedServerFeatureError,
)


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used right now (down, restarting, out of connections), so
    the same work will succeed later: HTTP answers 503 with Retry-After, consumers retry with backoff.
    Everything else is an answer about the work itself (bad data, a bug) and is not retried as is."""
    if isinstance(exc, asyncpg.InterfaceError):
        return not isinstance(exc, _ABOUT_THE_VALUES)
    return isinstance(exc, _UNAVAILABLE)


def unavailable_cause(exc: BaseException) -> BaseException | None:
    """The exception saying the database is unavailable: ``exc`` itself, its explicit cause (``raise ... from``)
    or one in an exception group (task groups wrap what their tasks raise). Not the implicit context: an error
    raised while handling an outage is a fault of its own, not the outage."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
            continue
        if unavailable(current):
            return current
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return None


def transient(exc: BaseException) -> bool:
    """Whether retrying the same transaction may succeed: the database is unavailable, or PostgreSQL rolled it
    back for a conflict with another one (serialization failure, deadlock)."""
    return unavailable(exc) or isinstance(exc, asyncpg.TransactionRollbackError)


async def when_available(url: str, make: Callable[[], Awaitable[T]], *, log_every_s: float = WAIT_LOG_EVERY_S) -> T:
    """``make()`` (``connect`` or ``create_pool`` on ``url``), retried for as long as the database is unavailable
    (down, starting, unreachable for now: ``unavailable``), so that a service started before its database waits
    for it. A setting that is wrong for good (an invalid URL, authentication refused, no such database) raises
    the ``SettingsError`` at once: waiting would never end. Logs a warning when the wait starts, a reminder every
    ``log_every_s``, and an info line when the database answers."""
    started = time.monotonic()
    reminded = started
    delay = 0.25
    waiting = False
    while True:
        try:
            found = await make()
        except SettingsError as err:
            cause = err.__cause__
            if cause is None or not unavailable(cause):
                raise
            now = time.monotonic()
            extra = {"url": redact(url), "error": describe(cause), "waited_s": round(now - started, 1)}
            if not waiting:
                waiting = True
                log.warning("database unavailable: waiting for it", extra=extra)
            elif now - reminded >= log_every_s:
                reminded = now
                log.warning("still waiting for the database", extra=extra)
            await asyncio.sleep(delay)
            delay = min(WAIT_RETRY_MAX_S, delay * 2)
            continue
        if waiting:
            log.info("database available", extra={"waited_s": round(time.monotonic() - started, 1)})
        return found


async def ping(pool: asyncpg.Pool, timeout: float = 2.0) -> BaseException | None:
    """Why the database does not answer a trivial query within ``timeout`` seconds, or None when it does. Never
    raises: health checks and outage probes only need to know whether it answers."""
    try:
        async with asyncio.timeout(timeout):
            await pool.fetchval("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - whatever the failure, the database did not answer
        return exc
    return None


def describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def records(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]
