"""One-time links sent to a person: an invitation to join a care team, and the reset of a clinician's password.

A link carries ``<selector>.<secret>``: the selector finds the row, the secret (256 random bits) proves the link was
received. Only the secret's SHA-256 is stored and it is compared in constant time, so neither a copy of the table nor
the time an answer takes tells anything about a valid link. A link works once, for ``LINK_TTL_S``, and a newer link
of the same kind (the same address invited again, a second reset of the same clinician) closes the older one.

An invitation names the team, the address and the role; the account itself is created only when the invited person
opens the link and chooses her password (with :func:`telemon.teams.create_clinician`, as the command line creates
one), so an invitation never used leaves no account behind."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import uuid
from dataclasses import dataclass

import asyncpg

from telemon import queries, teams
from telemon.db import Conn
from telemon.security import secret_hash
from telemon.settings import SettingsError

LINK_TTL_S = 72 * 3600  # three days: an invitation sent on a Friday still works on Monday morning
INVITATION = "invitation"
PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a password
_SELECTOR_BYTES = 9  # 12 characters: unique among the links, not a secret
_SECRET_BYTES = 32


@dataclass(frozen=True)
class NewLink:
    id: uuid.UUID
    token: str  # shown or sent once, never stored
    expires_at: dt.datetime


@dataclass(frozen=True)
class Link:
    id: uuid.UUID
    purpose: str
    team_id: uuid.UUID
    team_name: str
    email: str
    role: str | None
    language: str
    clinician_id: uuid.UUID | None
    created_by: str
    created_at: dt.datetime
    expires_at: dt.datetime


def _link(row: asyncpg.Record) -> Link:
    return Link(
        id=row["id"],
        purpose=row["purpose"],
        team_id=row["team_id"],
        team_name=row["team_name"],
        email=row["email"],
        role=row["role"],
        language=row["language"],
        clinician_id=row["clinician_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


def _split(token: str) -> tuple[str, str] | None:
    selector, dot, secret = token.strip().partition(".")
    if not dot or not selector or not secret or len(selector) > 32 or len(secret) > 128:
        return None
    return selector, secret


async def _insert(
    conn: Conn,
    *,
    purpose: str,
    team_id: uuid.UUID,
    email: str,
    role: str | None,
    language: str,
    clinician_id: uuid.UUID | None,
    actor: str,
) -> NewLink:
    link_id = uuid.uuid4()
    while True:
        selector = secrets.token_urlsafe(_SELECTOR_BYTES)
        secret = secrets.token_urlsafe(_SECRET_BYTES)
        expires_at = await conn.fetchval(
            queries.INSERT_LINK,
            link_id,
            purpose,
            selector,
            secret_hash(secret),
            team_id,
            email,
            role,
            language,
            clinician_id,
            actor,
            float(LINK_TTL_S),
        )
        if expires_at is not None:
            return NewLink(link_id, f"{selector}.{secret}", expires_at)


async def invite(conn: Conn, *, team_id: uuid.UUID, email: str, role: str, language: str, actor: str) -> NewLink:
    """An invitation to join ``team_id`` with ``role``; an address that already has an account is refused."""
    email = teams.check_email(email)
    teams.check_role(role)
    if language not in teams.LANGUAGES:
        raise SettingsError(f"--language: {language!r} is not one of {', '.join(teams.LANGUAGES)}")
    if await teams.clinician_exists(conn, email):
        raise SettingsError(f"--email: a clinician with email {email!r} already exists")
    async with conn.transaction():
        await conn.execute(queries.CLOSE_EXPIRED_LINKS)
        await conn.execute(queries.CLOSE_OPEN_INVITATION, email)
        return await _insert(
            conn,
            purpose=INVITATION,
            team_id=team_id,
            email=email,
            role=role,
            language=language,
            clinician_id=None,
            actor=actor,
        )


async def password_reset(conn: Conn, *, member: teams.Member, team_id: uuid.UUID, language: str, actor: str) -> NewLink:
    """A link that lets ``member`` choose a new password; her current password works until the link is used."""
    if not member.active:
        raise SettingsError("--clinician: the clinician is deactivated; reactivate her first")
    async with conn.transaction():
        await conn.execute(queries.CLOSE_EXPIRED_LINKS)
        await conn.execute(queries.CLOSE_CLINICIAN_LINKS, member.id)
        return await _insert(
            conn,
            purpose=PASSWORD_RESET,
            team_id=team_id,
            email=member.email,
            role=None,
            language=language,
            clinician_id=member.id,
            actor=actor,
        )


async def _usable(conn: Conn, token: str, purpose: str, *, lock: bool) -> Link | None:
    parts = _split(token)
    if parts is None:
        return None
    selector, secret = parts
    row = await conn.fetchrow(queries.LOCK_LINK if lock else queries.LINK_BY_SELECTOR, selector)
    if row is None or not hmac.compare_digest(row["secret_hash"], secret_hash(secret)):
        return None
    if row["purpose"] != purpose or not row["usable"]:
        return None
    return _link(row)


async def open_link(conn: Conn, token: str, purpose: str) -> Link | None:
    """The link of ``token`` if it can still be used for ``purpose`` (None: unknown, used, expired, replaced)."""
    return await _usable(conn, token, purpose, lock=False)


async def accept_invitation(
    conn: Conn, token: str, *, display_name: str, password: str, language: str
) -> tuple[Link, uuid.UUID] | None:
    """Create the invited clinician with her chosen password; None when the link cannot be used (any more)."""
    async with conn.transaction():
        link = await _usable(conn, token, INVITATION, lock=True)
        if link is None:
            return None
        assert link.role is not None
        clinician_id = await teams.create_clinician(
            conn,
            email=link.email,
            password=password,
            team_id=link.team_id,
            role=link.role,
            display_name=display_name.strip(),
            language=language,
        )
        await conn.execute(queries.USE_LINK, link.id, clinician_id)
    return link, clinician_id


async def use_password_reset(conn: Conn, token: str, *, password: str) -> Link | None:
    """Set the clinician's new password and end all her sessions; None when the link cannot be used."""
    async with conn.transaction():
        link = await _usable(conn, token, PASSWORD_RESET, lock=True)
        if link is None or link.clinician_id is None:
            return None
        await teams.set_password(conn, link.clinician_id, password)
        await conn.execute(queries.USE_LINK, link.id, link.clinician_id)
    return link


async def open_invitations(conn: Conn, team_ids: list[uuid.UUID]) -> list[Link]:
    return [_link(r) for r in await conn.fetch(queries.OPEN_INVITATIONS, team_ids)]


async def cancel_invitation(conn: Conn, link_id: uuid.UUID, team_ids: list[uuid.UUID]) -> str | None:
    """Close an open invitation of ``team_ids``; returns its address (None: no such open invitation)."""
    email: str | None = await conn.fetchval(queries.CANCEL_INVITATION, link_id, team_ids)
    return email
