"""The database pool: connecting with a clear error, and the advisory-lock keys telemon uses."""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from telemon import fastjson
from telemon.settings import SettingsError, redact

# Advisory-lock keys (pg_advisory_lock takes a bigint); one constant per purpose.
LOCK_MIGRATIONS = 7_461_001
LOCK_SCHEDULER = 7_461_002

# A connection of one's own or one borrowed from the pool: query functions take either.
Conn = asyncpg.Connection | PoolConnectionProxy


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
            server_settings={"application_name": "telemon"},
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


def describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def records(rows: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]
