"""Nightscout's authentication: ``api-secret`` header or ``?secret=`` holding the SHA-1 or SHA-512 hex of the
device token; or the device token itself (Nightscout's access token) as ``?token=``, a bearer token or the
``api-secret``. A missing, wrong or disabled device's credential is answered 401 with Nightscout's own body; each
failed attempt delays the next requests from that address by 5 s more (Nightscout's ``authFailDelay``), a success
clears the delay."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from ingest import queries
from ingest.readings import DeviceContext
from ingest.service import device_by_nightscout_secret, device_by_token
from telemon.auth import pool
from telemon.devices import nightscout_secret_512
from telemon.security import secret_hash

UNAUTHORIZED = {"status": 401, "message": "Unauthorized", "description": "Invalid/Missing"}
AUTH_FAIL_DELAY_S = 5.0  # Nightscout's authFailDelay default (5000 ms)
AUTH_FAIL_AGE_S = 60.0  # a delay older than this is forgotten, as Nightscout does


class Unauthorized(Exception):
    """Answered as Nightscout does: 401 with its own body (the app's exception handlers are not ours to change)."""


class FailedAuthDelays:
    """Nightscout's ``authFailDelay``, per process as in Nightscout: each failed attempt from an address pushes
    that address's next requests back by ``delay`` seconds more (from now, or from the end of the delay still
    running); a request with valid credentials clears it. Guessing a secret from one address gets slower and
    slower, while an uploader set up with the right secret is never delayed by others."""

    def __init__(self, delay: float = AUTH_FAIL_DELAY_S) -> None:
        self.delay = delay
        self._until: dict[str, float] = {}

    def remaining(self, address: str) -> float:
        until = self._until.get(address)
        return max(0.0, until - time.monotonic()) if until is not None else 0.0

    def failed(self, address: str) -> None:
        now = time.monotonic()
        if len(self._until) > 10_000:  # forget delays long over, as Nightscout's periodic sweep does
            self._until = {a: u for a, u in self._until.items() if u + AUTH_FAIL_AGE_S > now}
        self._until[address] = max(self._until.get(address, now), now) + self.delay

    def succeeded(self, address: str) -> None:
        self._until.pop(address, None)


def auth_delays(request: Request) -> FailedAuthDelays:
    """The process's delays, kept on the application (created with Nightscout's default on first use)."""
    delays: FailedAuthDelays | None = getattr(request.app.state, "nightscout_auth_delays", None)
    if delays is None:
        delays = request.app.state.nightscout_auth_delays = FailedAuthDelays()
    return delays


def credentials(request: Request) -> tuple[str, str]:
    """(api secret, token) as Nightscout reads them: ``?secret=`` before the ``api-secret`` header; a bearer token
    before ``?token=``. The string "null" is no secret (some clients send it)."""
    secret = (request.query_params.get("secret") or request.headers.get("api-secret") or "").strip()
    if secret == "null":  # noqa: S105 - a value some clients send, not a secret
        secret = ""
    token = ""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme == "Bearer" and value.strip():
        token = value.strip()
    if not token:
        token = (request.query_params.get("token") or "").strip()
    return secret, token


async def device_of(request: Request, db: asyncpg.Pool) -> DeviceContext | None:
    """The active device the request's credentials name, or None. Waits out the address's failure delay first;
    a wrong credential (not a missing one) adds to it."""
    address = request.client.host if request.client else ""
    delays = auth_delays(request)
    wait = delays.remaining(address)
    if wait:
        await asyncio.sleep(wait)
    secret, token = credentials(request)
    if not secret and not token:
        return None
    found = await device_by_nightscout_secret(db, secret) if secret else None
    for plain in (token, secret):  # the token itself: Nightscout's access token, also accepted as api-secret
        if found is None and plain:
            found = await device_by_token(db, plain)
            if found is not None:
                await db.execute(
                    queries.FILL_DEVICE_NS_SHA512,
                    found.device_id,
                    secret_hash(nightscout_secret_512(plain)),
                )
    if found is None or not found.active:
        delays.failed(address)
        return None
    delays.succeeded(address)
    return found


async def uploader(request: Request, db: Annotated[asyncpg.Pool, Depends(pool)]) -> DeviceContext:
    """The active device the credentials name; a disabled device is 401 too (Nightscout has no 403 there)."""
    found = await device_of(request, db)
    if found is None:
        raise Unauthorized
    return found
