"""Running the service: open the process's services, then serve HTTP with uvicorn until Ctrl-C / SIGTERM.

Services are opened before uvicorn starts, so a wrong setting stops the process with one clear line; a database
that is only down (or not up yet) is waited for instead, and the HTTP port opens once it answered. They are
closed after uvicorn stops (the MQTT batch in flight is finished, embedded PostgreSQL and broker are stopped)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import uvicorn

from telemon import logs, loop
from telemon.app import create_app
from telemon.services import Services, open_services
from telemon.settings import Settings, SettingsError

Cleanup = Callable[[], Awaitable[None]]
# Runs once the services are open, before serving; may return a cleanup, awaited after serving stops and before
# the services close (the demo stops its simulated devices there).
Prepare = Callable[[Services], Awaitable[Cleanup | None]]


async def _finish(cleanup: Cleanup) -> None:
    """Run ``cleanup`` to its end even if this task is cancelled meanwhile: uvicorn re-raises the SIGINT it
    handled once it stopped, which cancels the main task, and the services must outlive the cleanup."""
    task = asyncio.ensure_future(cleanup())
    while not task.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
    if not task.cancelled():
        task.result()


def serve(settings: Settings, prepare: Prepare | None = None) -> None:
    logs.configure(settings.log_level, settings.log_format)

    async def run() -> bool:
        async with open_services(settings) as services:
            cleanup = await prepare(services) if prepare is not None else None
            config = uvicorn.Config(
                create_app(services=services),
                host=settings.host,
                port=settings.port,
                log_config=None,
                lifespan="on",
                timeout_graceful_shutdown=5,
            )
            server = uvicorn.Server(config)
            try:
                await server.serve()
            finally:
                if cleanup is not None:
                    await _finish(cleanup)
            return server.started

    if not loop.run(run()):
        raise SettingsError(f"TELEMON_PORT: could not serve on {settings.host}:{settings.port} (see the log above)")
