"""Care teams and clinicians, with their team memberships."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from telemon import queries
from telemon.db import Conn
from telemon.security import hash_password
from telemon.settings import SettingsError

ROLES = ("diabetologist", "midwife", "nurse", "admin", "dietitian")
MIN_PASSWORD_LENGTH = 10  # with argon2id and the sign-in lock-out, length is what makes a password hard to guess
LANGUAGES = ("fr", "en")
DISPLAY_UNITS = ("mg/dL", "mmol/L", "g/L")


@dataclass(frozen=True)
class Team:
    id: uuid.UUID
    name: str


async def create_team(conn: Conn, name: str) -> uuid.UUID:
    name = name.strip()
    if not name:
        raise SettingsError("--name: a team needs a name")
    team_id = uuid.uuid4()
    try:
        await conn.execute(queries.INSERT_TEAM, team_id, name)
    except asyncpg.UniqueViolationError:
        raise SettingsError(f"--name: a team named {name!r} already exists") from None
    return team_id


async def team_names(conn: Conn, team_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The name of each of the care teams ``team_ids`` (a clinician's), by name then id: every page that names or
    offers the reader's teams."""
    return {r["id"]: r["name"] for r in await conn.fetch(queries.TEAM_NAMES, list(team_ids))}


async def team_id_by_name(conn: Conn, name: str) -> uuid.UUID | None:
    team_id: uuid.UUID | None = await conn.fetchval(queries.TEAM_ID_BY_NAME, name)
    return team_id


async def clinician_id(conn: Conn, email: str) -> uuid.UUID | None:
    """The clinician with this address (case does not matter), or None."""
    found: uuid.UUID | None = await conn.fetchval(queries.CLINICIAN_ID_BY_EMAIL, email.strip())
    return found


async def clinician_exists(conn: Conn, email: str) -> bool:
    return await clinician_id(conn, email) is not None


async def find_team(conn: Conn, ref: str) -> Team:
    """A team by id or by name."""
    row = await conn.fetchrow(queries.FIND_TEAM, ref.strip())
    if row is None:
        raise SettingsError(f"--team: no care team with id or name {ref!r}")
    return Team(row["id"], row["name"])


def check_email(email: str) -> str:
    """The address, trimmed; refused unless it looks like one (the mail server says the rest)."""
    email = email.strip()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or len(email) > 254 or any(c.isspace() or c in '<>,;"' for c in email):
        raise SettingsError(f"--email: {email!r} is not an email address")
    return email


def check_role(role: str) -> str:
    if role not in ROLES:
        raise SettingsError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SettingsError(f"--password: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise SettingsError("--password: use at most 1024 characters")
    return password


async def create_clinician(
    conn: Conn,
    *,
    email: str,
    password: str,
    team_id: uuid.UUID,
    role: str,
    display_name: str = "",
    language: str = "fr",
    display_unit: str = "mg/dL",
) -> uuid.UUID:
    email = check_email(email)
    check_role(role)
    if language not in LANGUAGES:
        raise SettingsError(f"--language: {language!r} is not one of {', '.join(LANGUAGES)}")
    if display_unit not in DISPLAY_UNITS:
        raise SettingsError(f"--unit: {display_unit!r} is not one of {', '.join(DISPLAY_UNITS)}")
    check_password(password)
    clinician_id = uuid.uuid4()
    async with conn.transaction():
        try:
            await conn.execute(
                queries.INSERT_CLINICIAN,
                clinician_id,
                email,
                hash_password(password),
                display_name or email.split("@")[0],
                role,
                language,
                display_unit,
            )
        except asyncpg.UniqueViolationError:
            raise SettingsError(f"--email: a clinician with email {email!r} already exists") from None
        await conn.execute(queries.INSERT_MEMBERSHIP, team_id, clinician_id)
    return clinician_id


@dataclass(frozen=True)
class Member:
    """A clinician of a care team, as the team page lists her."""

    id: uuid.UUID
    email: str
    display_name: str
    role: str
    active: bool
    created_at: dt.datetime
    deactivated_at: dt.datetime | None
    last_seen_at: dt.datetime | None  # the latest use of a session still open


async def team_members(conn: Conn, team_ids: Sequence[uuid.UUID]) -> list[Member]:
    """The clinicians of ``team_ids``, by name."""
    return [Member(**dict(r)) for r in await conn.fetch(queries.TEAM_MEMBERS, list(team_ids))]


async def member_of(conn: Conn, clinician_id: uuid.UUID, team_ids: Sequence[uuid.UUID]) -> Member | None:
    """A clinician of one of ``team_ids`` (None for anyone else: another team's clinician is not shown)."""
    row = await conn.fetchrow(queries.TEAM_MEMBER, clinician_id, list(team_ids))
    return Member(**dict(row)) if row is not None else None


async def set_password(conn: Conn, clinician_id: uuid.UUID, password: str, *, keep_session: bytes | None = None) -> int:
    """A new password for the clinician; her sessions end, except ``keep_session`` (the session of a clinician
    changing her own password). Returns how many sessions ended. argon2 runs off the event loop."""
    check_password(password)
    password_hash = await asyncio.to_thread(hash_password, password)
    async with conn.transaction():
        await conn.execute(queries.SET_PASSWORD, clinician_id, password_hash)
        ended: int = await conn.fetchval(queries.END_SESSIONS_BUT, clinician_id, keep_session)
    return ended


async def deactivate(conn: Conn, clinician_id: uuid.UUID, *, actor: str) -> bool:
    """Refuse the clinician from now on: every session of hers ends at once and her open reset link closes.
    Returns False when she already was inactive."""
    async with conn.transaction():
        changed = await conn.fetchval(queries.DEACTIVATE_CLINICIAN, clinician_id, actor)
        await conn.fetchval(queries.END_SESSIONS_BUT, clinician_id, None)
        await conn.execute(queries.CLOSE_CLINICIAN_LINKS, clinician_id)
    return changed is not None


async def reactivate(conn: Conn, clinician_id: uuid.UUID) -> bool:
    """Let a deactivated clinician sign in again with her password. Returns False when she was active."""
    return await conn.fetchval(queries.REACTIVATE_CLINICIAN, clinician_id) is not None
