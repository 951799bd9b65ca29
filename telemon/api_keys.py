"""API keys for hospital integrations: hashed, scoped, bound to care teams, with last use recorded.

A key acts for one or more care teams: it reads, imports into and acts on the patients of those teams only, and a
request for another team's patient is answered exactly like one for a patient that does not exist. Keys made
before keys belonged to teams hold none and are refused (see ``telemon.auth``) until replaced by a team key."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from telemon import queries
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
    team_ids: tuple[uuid.UUID, ...]  # empty for a key made before keys belonged to teams: refused


@dataclass(frozen=True)
class ApiKeyInfo:
    """What ``telemon list-api-keys`` shows of a key: never the key nor its hash."""

    id: uuid.UUID
    label: str
    scopes: tuple[str, ...]
    teams: tuple[tuple[uuid.UUID, str], ...]
    active: bool
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None


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


async def create_api_key(conn: Conn, *, label: str, scopes: list[str], team_ids: Sequence[uuid.UUID]) -> NewApiKey:
    """A new key acting for ``team_ids`` (at least one: a key of no team could read nothing)."""
    if not team_ids:
        raise SettingsError("--team: an API key belongs to at least one care team")
    key_id = uuid.uuid4()
    key = new_secret("tmk_")
    async with conn.transaction():
        await conn.execute(queries.INSERT_API_KEY, key_id, label, secret_hash(key), scopes)
        await conn.execute(queries.INSERT_API_KEY_TEAMS, key_id, list(team_ids))
    return NewApiKey(key_id, key)


async def by_key(pool: asyncpg.Pool | Conn, key: str) -> ApiKey | None:
    row = await pool.fetchrow(queries.API_KEY_BY_HASH, secret_hash(key))
    if row is None:
        return None
    return ApiKey(row["id"], row["label"], tuple(row["scopes"]), tuple(row["team_ids"]))


async def list_api_keys(conn: Conn, team_id: uuid.UUID | None = None) -> list[ApiKeyInfo]:
    return [
        ApiKeyInfo(
            id=r["id"],
            label=r["label"],
            scopes=tuple(r["scopes"]),
            teams=tuple(zip(r["team_ids"], r["team_names"], strict=True)),
            active=r["active"],
            created_at=r["created_at"],
            last_used_at=r["last_used_at"],
            revoked_at=r["revoked_at"],
        )
        for r in await conn.fetch(queries.LIST_API_KEYS, team_id)
    ]


async def revoke_api_key(conn: Conn, key_id: uuid.UUID) -> tuple[bool, dt.datetime | None]:
    """Revoke a key from now on; returns whether this call revoked it (False: it already was) and when it was."""
    revoked_at: dt.datetime | None = await conn.fetchval(queries.REVOKE_API_KEY, key_id)
    if revoked_at is not None:
        return True, revoked_at
    row = await conn.fetchrow(queries.API_KEY_REVOKED_AT, key_id)
    if row is None:
        raise SettingsError(f"--id: no API key {key_id}")
    return False, row["revoked_at"]
