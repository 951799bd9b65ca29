"""Who is calling: bearer tokens, and hospitals' scoped API keys (device tokens are checked by ``ingest``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import Depends, HTTPException, Request

from telemon import api_keys
from telemon.api_keys import ApiKey


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
