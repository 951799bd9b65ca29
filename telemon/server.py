"""Running the service: open the process's services, then serve HTTP with uvicorn until Ctrl-C / SIGTERM.

Services are opened before uvicorn starts, so a wrong setting stops the process with one clear line; they are
closed after uvicorn stops (the MQTT batch in flight is finished, embedded PostgreSQL and broker are stopped)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import uvicorn

from telemon import logs
from telemon.app import create_app
from telemon.services import Services, open_services
from telemon.settings import Settings, SettingsError

Prepare = Callable[[Services], Awaitable[None]]


def serve(settings: Settings, prepare: Prepare | None = None) -> None:
    logs.configure(settings.log_level)

    async def run() -> bool:
        async with open_services(settings) as services:
            if prepare is not None:
                await prepare(services)
            config = uvicorn.Config(
                create_app(services=services), host=settings.host, port=settings.port, log_config=None, lifespan="on"
            )
            server = uvicorn.Server(config)
            await server.serve()
            return server.started

    if not asyncio.run(run()):
        raise SettingsError(f"TELEMON_PORT: could not serve on {settings.host}:{settings.port} (see the log above)")
