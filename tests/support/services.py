"""Where the tests find PostgreSQL and an MQTT broker.

Database: ``TELEMON_TEST_DATABASE_URL``, else 127.0.0.1:5432 if it answers, else an embedded PostgreSQL.
Broker: 127.0.0.1:1883 if it answers, else an embedded amqtt broker in a thread of its own.
``TELEMON_TEST_EMBEDDED=1`` forces the embedded ones.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from telemon.embedded import EmbeddedBroker, EmbeddedPostgres

LOCAL_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"


def embedded_forced() -> bool:
    return os.environ.get("TELEMON_TEST_EMBEDDED", "") == "1"


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a maintenance database on a server the tests may create databases on."""
    if not embedded_forced():
        explicit = os.environ.get("TELEMON_TEST_DATABASE_URL")
        if explicit:
            yield explicit
            return
        if answers("127.0.0.1", 5432):
            yield LOCAL_DATABASE
            return
    # not under pytest's 0700 temporary directories: the server runs as another user when the tests run as root
    state = Path(tempfile.mkdtemp(prefix="telemon-test-pg-"))
    state.chmod(0o755)
    server = EmbeddedPostgres(state, database="postgres")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()
        shutil.rmtree(state, ignore_errors=True)


@contextmanager
def mqtt_broker() -> Iterator[str]:
    if not embedded_forced() and answers("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883"
        return
    with embedded_broker() as url:
        yield url


@contextmanager
def embedded_broker() -> Iterator[str]:
    """An amqtt broker on its own event loop in a background thread, for as long as the context lasts."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="embedded-broker", daemon=True)
    thread.start()
    broker = EmbeddedBroker()
    url = asyncio.run_coroutine_threadsafe(broker.start(), loop).result(30)
    try:
        yield url
    finally:
        asyncio.run_coroutine_threadsafe(broker.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
