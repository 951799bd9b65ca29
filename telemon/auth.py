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


def api_key(scope: str) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency accepting an API key (bearer or ``X-API-Key``) that holds ``scope``."""

    async def dependency(request: Request, db: asyncpg.Pool = Depends(pool)) -> ApiKey:
        key = request.headers.get("x-api-key") or bearer_token(request)
        if not key:
            raise unauthorized("missing API key (Authorization: Bearer <key> or X-API-Key)")
        found = await api_keys.by_key(db, key)
        if found is None:
            raise unauthorized("unknown or revoked API key")
        if scope not in found.scopes:
            raise HTTPException(status_code=403, detail=f"this API key lacks the scope {scope}")
        return found

    return dependency
