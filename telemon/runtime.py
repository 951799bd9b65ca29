"""Where the database and the broker are: the configured URLs, or the embedded defaults started on demand."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from telemon.embedded import EmbeddedBroker, EmbeddedPostgres
from telemon.settings import Settings


@dataclass(frozen=True)
class Endpoints:
    database_url: str
    mqtt_url: str | None


def endpoints_file(state_dir: Path) -> Path:
    """Written while ``telemon serve`` runs on embedded services, so other commands (the simulator) find them."""
    return state_dir / "endpoints.json"


@contextlib.asynccontextmanager
async def database(settings: Settings) -> AsyncIterator[str]:
    """The database URL; with none configured, the embedded PostgreSQL for as long as the context lasts."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.state_dir)
    url = embedded.start()
    try:
        yield url
    finally:
        embedded.stop()


@contextlib.asynccontextmanager
async def broker(settings: Settings) -> AsyncIterator[str]:
    """The broker URL; with none configured, an in-process broker for as long as the context lasts."""
    if settings.mqtt_url:
        yield settings.mqtt_url
        return
    embedded = EmbeddedBroker()
    url = await embedded.start()
    try:
        yield url
    finally:
        await embedded.stop()


@contextlib.asynccontextmanager
async def endpoints(settings: Settings, *, with_broker: bool) -> AsyncIterator[Endpoints]:
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(database(settings))
        # a configured broker is always known (readiness checks it); the embedded one starts only for the mqtt role
        mqtt_url = await stack.enter_async_context(broker(settings)) if with_broker else settings.mqtt_url
        found = Endpoints(database_url, mqtt_url)
        marker = endpoints_file(settings.state_dir)
        if settings.database_url is None or (with_broker and settings.mqtt_url is None):
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text(json.dumps({"database_url": database_url, "mqtt_url": mqtt_url}))
            stack.callback(marker.unlink, missing_ok=True)
        yield found
