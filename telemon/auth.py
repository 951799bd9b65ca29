"""Who is calling: bearer tokens, hospitals' scoped API keys, and the patient's companion app (its device token;
the other devices' tokens are checked by ``ingest`` as it stores what they send)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from fastapi import Depends, HTTPException, Request

from telemon import api_keys, queries
from telemon.api_keys import ApiKey
from telemon.security import secret_hash


def pool(request: Request) -> asyncpg.Pool:
    services = request.app.state.services
    return services.pool  # type: ignore[no-any-return]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


NO_TEAM = (
    "this API key belongs to no care team (it was made before keys belonged to teams); an administrator must"
    " create a team key with: telemon create-api-key --team <team id or name> --label ... --scopes ..."
)


def api_key(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency accepting an API key (bearer or ``X-API-Key``) that holds ``scope`` and belongs to a care team.

    A key made before keys belonged to care teams is refused (403) rather than given every team: nobody chose
    which patients it should see, and the reason tells the administrator what to do."""

    async def dependency(request: Request, db: asyncpg.Pool = Depends(pool)) -> ApiKey:
        key = request.headers.get("x-api-key") or bearer_token(request)
        if not key:
            raise unauthorized("missing API key (Authorization: Bearer <key> or X-API-Key)")
        found = await api_keys.by_key(db, key)
        if found is None:
            raise unauthorized("unknown or revoked API key")
        if not found.team_ids:
            raise HTTPException(status_code=403, detail=NO_TEAM)
        if scope not in found.scopes:
            raise HTTPException(status_code=403, detail=f"this API key lacks the scope {scope}")
        return found

    return dependency


@dataclass(frozen=True)
class AppDevice:
    """The companion app of a patient, found by its device token."""

    device_id: str
    patient_id: uuid.UUID
    archived: bool

    @property
    def actor(self) -> str:
        return f"device:{self.device_id}"


async def app_device(request: Request, db: asyncpg.Pool = Depends(pool)) -> AppDevice:
    """The app device (and so the patient) of the bearer token: the patient's key to her own API (``/api/v1/me``
    and her messages). A meter's or an uploader's token is a credential typed into a device by the team, not hers:
    refused (403), as a revoked one; an unknown or missing token 401."""
    token = bearer_token(request)
    if token is None:
        raise unauthorized("missing bearer token (Authorization: Bearer <the app's device token>)")
    row = await db.fetchrow(queries.APP_DEVICE, secret_hash(token))
    if row is None:
        raise unauthorized("unknown device token")
    if not row["active"]:
        raise HTTPException(status_code=403, detail=f"device {row['device_id']} is revoked: pair the app again")
    if row["kind"] != "app":
        raise HTTPException(status_code=403, detail="only the companion app's token opens the patient's own API")
    return AppDevice(row["device_id"], row["patient_id"], row["archived_at"] is not None)
