"""The FastAPI app factory: the health routes, the middleware, and the routes of every domain
(``telemon.app.domains``) for a process that runs the ``api`` role. The app's lifespan opens the process's services
(``telemon.app.services``) unless the caller opened them already (``telemon serve`` does, so that a wrong setting
stops it with one clear line)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from telemon import headers, live, logs, mqtt_client
from telemon.app import openapi
from telemon.app.domains import DOMAINS
from telemon.app.services import Services, open_services
from telemon.db import ping
from telemon.outage import UnavailableMiddleware
from telemon.settings import Settings

log = logging.getLogger(__name__)
# nginx's code for a request whose client went away before the answer: nobody reads it
CLIENT_CLOSED_REQUEST = 499


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = services.settings if services else (settings or Settings.from_env())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            try:
                yield
            finally:
                await live.close(app)  # the event streams' listening connection, before the pool closes
            return
        async with open_services(settings) as opened:
            app.state.services = opened
            try:
                yield
            finally:
                await live.close(app)

    app = FastAPI(
        title="telemon",
        version="1",
        summary="Telemonitoring of gestational diabetes",
        lifespan=lifespan,
        docs_url=None,  # served by headers.include_docs, without a CDN
        redoc_url=None,
    )
    if services is not None:
        app.state.services = services
    domains = DOMAINS if "api" in settings.roles else ()
    # the 503 of an outage in the form of the domains that answer in their own (FHIR, the dashboard)
    forms = [form for domain in domains for form in domain.unavailable]
    # outermost last: the request id and the security headers go on the 503s of an outage too
    app.add_middleware(UnavailableMiddleware, forms=forms)
    app.add_middleware(headers.SecurityHeadersMiddleware)
    app.add_middleware(logs.RequestIdMiddleware)
    headers.include_docs(app)
    app.add_exception_handler(ClientDisconnect, _client_gone)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        """The database (and the broker, where this process uses one) answer."""
        current: Services = app.state.services
        error = await ping(current.pool)
        if current.outage is not None:
            await current.outage.observe(error)
        checks = {"database": error is None}
        if current.consumer is not None:
            checks["broker"] = current.consumer.ready()
        elif current.mqtt_url:
            checks["broker"] = await asyncio.to_thread(mqtt_client.probe, current.mqtt_url)
        ready = all(checks.values())
        body = {"status": "ok" if ready else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if ready else 503)

    for domain in domains:
        if domain.include_routes is not None:
            domain.include_routes(app)
    openapi.describe(app)
    return app


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client closed the connection before its body was read whole (a phone losing its signal in the middle
    of an upload). Nothing of it was taken and nobody reads the answer: one line in the log, not an error's
    traceback; the device sends the whole body again."""
    log.info("%s %s: the client closed the connection before its body was read", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED_REQUEST)
