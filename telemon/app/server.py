"""Running the service: open the process's services, then serve HTTP with uvicorn until Ctrl-C / SIGTERM.

Services are opened before uvicorn starts, so a wrong setting stops the process with one clear line; a database
that is only down (or not up yet) is waited for instead, and the HTTP port opens once it answered. They are
closed after uvicorn stops (the MQTT batch in flight is finished, embedded PostgreSQL and broker are stopped)."""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn

from telemon import logs, loop
from telemon.app.factory import create_app
from telemon.app.services import Services, open_services
from telemon.settings import Settings, SettingsError

Cleanup = Callable[[], Awaitable[None]]
# Runs once the services are open, before serving; may return a cleanup, awaited after serving stops and before
# the services close (the demo stops its simulated devices there).
Prepare = Callable[[Services], Awaitable[Cleanup | None]]


class _Server(uvicorn.Server):
    """uvicorn's server, except that a stop signal (Ctrl-C, SIGTERM) only stops it: uvicorn records the signal and
    raises it again once it has stopped, which cancels the main task while the services close after it (the MQTT
    batch in flight would not be finished and acknowledged). A second Ctrl-C still forces the exit."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        else:
            self.should_exit = True


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
            server = _Server(config)
            try:
                await server.serve()
            finally:
                if cleanup is not None:
                    await cleanup()
            return server.started

    if not loop.run(run()):
        raise SettingsError(f"TELEMON_PORT: could not serve on {settings.host}:{settings.port} (see the log above)")
