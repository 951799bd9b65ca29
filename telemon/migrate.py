"""Versioned SQL migrations: ``migrations/NNNN_name.sql`` applied in order, each in its own transaction,
recorded in ``schema_migrations``, under an advisory lock so two processes migrating at once wait for each other."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

from telemon import partitions
from telemon.db import LOCK_MIGRATIONS, Conn

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    found = []
    for entry in resources.files("telemon.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return found


async def migrate(conn: Conn) -> list[str]:
    """Apply what is missing; returns the names applied (empty when the schema is current)."""
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_MIGRATIONS)
    try:
        await conn.execute(CREATE_LEDGER)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for migration in available():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", migration.version, migration.name
                )
            log.info("migration applied", extra={"version": migration.version, "migration": migration.name})
            applied.append(f"{migration.version:04d}_{migration.name}")
        await partitions.ensure(conn)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_MIGRATIONS)
    return applied


async def pending(conn: Conn) -> list[int]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")} if exists else set()
    return [m.version for m in available() if m.version not in done]
