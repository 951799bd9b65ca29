"""Care teams and clinicians, with their team memberships."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from telemon import queries
from telemon.db import Conn
from telemon.security import hash_password
from telemon.settings import SettingsError

ROLES = ("diabetologist", "midwife", "nurse", "admin")
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


async def team_id_by_name(conn: Conn, name: str) -> uuid.UUID | None:
    team_id: uuid.UUID | None = await conn.fetchval(queries.TEAM_ID_BY_NAME, name)
    return team_id


async def clinician_exists(conn: Conn, email: str) -> bool:
    return bool(await conn.fetchval(queries.CLINICIAN_EXISTS, email.strip()))


async def find_team(conn: Conn, ref: str) -> Team:
    """A team by id or by name."""
    row = await conn.fetchrow(queries.FIND_TEAM, ref.strip())
    if row is None:
        raise SettingsError(f"--team: no care team with id or name {ref!r}")
    return Team(row["id"], row["name"])


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
    email = email.strip()
    if "@" not in email or email.startswith("@") or email.endswith("@"):
        raise SettingsError(f"--email: {email!r} is not an email address")
    if role not in ROLES:
        raise SettingsError(f"--role: {role!r} is not one of {', '.join(ROLES)}")
    if language not in LANGUAGES:
        raise SettingsError(f"--language: {language!r} is not one of {', '.join(LANGUAGES)}")
    if display_unit not in DISPLAY_UNITS:
        raise SettingsError(f"--unit: {display_unit!r} is not one of {', '.join(DISPLAY_UNITS)}")
    if len(password) < 10:
        raise SettingsError("--password: use at least 10 characters")
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
