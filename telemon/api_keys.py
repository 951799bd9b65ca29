"""API keys for hospital integrations: hashed, scoped, with last use recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from telemon.db import Conn
from telemon.security import new_secret, secret_hash
from telemon.settings import SettingsError

SCOPES = (
    "readings:read",
    "readings:write",
    "alerts:read",
    "alerts:write",
    "patients:read",
    "patients:write",
)


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    label: str
    scopes: tuple[str, ...]


@dataclass(frozen=True)
class NewApiKey:
    id: uuid.UUID
    key: str


def parse_scopes(text: str) -> list[str]:
    scopes = list(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise SettingsError(
            f"--scopes: unknown scope {', '.join(unknown) or '(none given)'}; choose from {', '.join(SCOPES)}"
        )
    return scopes


async def create_api_key(conn: Conn, *, label: str, scopes: list[str]) -> NewApiKey:
    key_id = uuid.uuid4()
    key = new_secret("tmk_")
    await conn.execute(
        "INSERT INTO api_keys (id, label, key_hash, scopes) VALUES ($1, $2, $3, $4)",
        key_id,
        label,
        secret_hash(key),
        scopes,
    )
    return NewApiKey(key_id, key)


async def by_key(pool: asyncpg.Pool | Conn, key: str) -> ApiKey | None:
    row = await pool.fetchrow(
        # last use is written at most once a minute per key, not on every request
        "WITH k AS (SELECT id, label, scopes, last_used_at FROM api_keys WHERE key_hash = $1 AND active),"
        " touched AS (UPDATE api_keys SET last_used_at = now() FROM k WHERE api_keys.id = k.id"
        " AND (k.last_used_at IS NULL OR k.last_used_at < now() - interval '1 minute'))"
        " SELECT id, label, scopes FROM k",
        secret_hash(key),
    )
    return ApiKey(row["id"], row["label"], tuple(row["scopes"])) if row else None
