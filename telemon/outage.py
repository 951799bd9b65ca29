"""Database outages as the HTTP side sees them: a 503 with ``Retry-After`` instead of a 500 and a traceback, one
log line when an outage starts and one when it ends, and a pool that recovers by itself.

Nothing is refused in advance: every request still tries the database, so the first one after PostgreSQL is back
succeeds. The outage state only keeps the log quiet (a warning when the first request fails, an info line when a
probe succeeds again) and makes the pool drop the connections opened before the outage, which may be broken
without asyncpg knowing yet (``expire_connections``: they are replaced on their next acquire)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Sequence

import asyncpg
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from telemon.db import describe, ping, unavailable_cause

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5  # what a 503 tells clients to wait; PostgreSQL restarts take seconds
PROBE_S = 1.0  # how often a probe checks whether the database is back, during an outage
UNAVAILABLE_TEXT = "the database is unavailable; retry in a few seconds"


class Outage:
    """Whether this process currently sees its database as unavailable, with the log lines of the transitions."""

    def __init__(self, pool: asyncpg.Pool, *, probe_seconds: float = PROBE_S) -> None:
        self.pool = pool
        self.probe_seconds = probe_seconds
        self.since: float | None = None
        self.outages = 0  # started since the process began (tests, metrics)
        self._probe: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def active(self) -> bool:
        return self.since is not None

    async def failed(self, exc: BaseException) -> None:
        """The database refused work for unavailability: log the start of an outage (once) and probe for its end."""
        if self.since is not None or self._closed:
            return
        self.since = time.monotonic()
        self.outages += 1
        log.warning("database unavailable: answering 503 until it is back", extra={"error": describe(exc)})
        await self.pool.expire_connections()
        if self._probe is None or self._probe.done():
            # a context of its own: the probe's log lines belong to no request
            probe = self._probe_until_back()
            self._probe = asyncio.create_task(probe, name="database-outage-probe", context=contextvars.Context())

    async def succeeded(self) -> None:
        """The database answered: end the outage if there was one."""
        if self.since is None:
            return
        seconds = round(time.monotonic() - self.since, 1)
        self.since = None
        await self.pool.expire_connections()
        log.info("database available again", extra={"outage_seconds": seconds})

    async def observe(self, error: BaseException | None) -> None:
        """The outcome of a health check (``/readyz``): None when the database answered."""
        if error is None:
            await self.succeeded()
        else:
            await self.failed(error)

    async def _probe_until_back(self) -> None:
        while self.since is not None:
            await asyncio.sleep(self.probe_seconds)
            error = await ping(self.pool, max(2.0, self.probe_seconds))
            if error is not None:  # still down, whatever it says: try again later
                log.debug("database still unavailable", extra={"error": describe(error)})
                continue
            await self.succeeded()

    async def close(self) -> None:
        self._closed = True
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe


def _outage_of(scope: Scope) -> Outage | None:
    app = scope.get("app")
    services = getattr(getattr(app, "state", None), "services", None)
    found = getattr(services, "outage", None)
    return found if isinstance(found, Outage) else None


# The 503 of a part of the app that answers in a form of its own (FHIR's OperationOutcome, the dashboard's page),
# given the request's scope and the seconds to wait; the domains hand theirs to the app factory, by path prefix.
Unavailable = Callable[[Scope, int], Response]


def unavailable_response(scope: Scope, forms: Sequence[tuple[str, Unavailable]] = ()) -> Response:
    """The 503 in the form of the part of the app asked: the JSON API's ``{"detail": ...}`` for the API,
    Nightscout, health and documentation paths; else the first of ``forms`` whose prefix the path has (FHIR's
    OperationOutcome, the dashboard's page); else JSON too."""
    path: str = scope.get("path", "")
    if not path.startswith(JSON_PREFIXES):
        for prefix, form in forms:
            if path.startswith(prefix):
                return form(scope, RETRY_AFTER_S)
    headers = {"Retry-After": str(RETRY_AFTER_S), "Cache-Control": "no-store"}
    return JSONResponse({"detail": UNAVAILABLE_TEXT}, status_code=503, headers=headers)


JSON_PREFIXES = ("/api/", "/ns/", "/readyz", "/healthz", "/openapi.json", "/docs")


class UnavailableMiddleware:
    """Answers 503 (with ``Retry-After``) for a request that failed because the database is unavailable, without
    a traceback in the answer or the log; every other exception goes on to the server's 500 handling. ``forms``:
    the 503s of the parts that answer in a form of their own (see ``unavailable_response``)."""

    def __init__(self, app: ASGIApp, forms: Sequence[tuple[str, Unavailable]] = ()) -> None:
        self.app = app
        self.forms = tuple(forms)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            cause = unavailable_cause(exc)
            if cause is None:
                raise
            outage = _outage_of(scope)
            if outage is not None:
                await outage.failed(cause)
            if started:
                # a response under way (an event stream): end it; the client reconnects
                with contextlib.suppress(Exception):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await unavailable_response(scope, self.forms)(scope, receive, send)
