"""Shared fixtures: one uniquely named, migrated database per test session (dropped afterwards), a broker,
a pool, and the app served in-process against both."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from telemon.app.factory import create_app
from telemon.app.services import Services, open_services
from telemon.db import connect, create_pool
from telemon.migrate import migrate
from telemon.settings import Settings
from tests.support.services import mqtt_broker, postgres_server


def _with_database(url: str, database: str) -> str:
    """``url`` pointing at another database (keeps host, socket and credentials)."""
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_url: str) -> Iterator[str]:
    """A uniquely named database, migrated, dropped at the end of the session. Set up and torn down on an event
    loop of its own, so that its order against the tests' loop does not matter."""
    name = f"telemon_test_{uuid.uuid4().hex[:12]}"
    url = _with_database(postgres_url, name)

    async def create() -> None:
        admin = await connect(postgres_url)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await connect(url)
        try:
            await migrate(conn)
        finally:
            await conn.close()

    async def drop() -> None:
        admin = await connect(postgres_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(create())
    try:
        yield url
    finally:
        asyncio.run(drop())


@pytest.fixture(scope="session")
def mqtt_url() -> Iterator[str]:
    with mqtt_broker() as url:
        yield url


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=10)
    yield pool
    await pool.close()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """API-only settings on the test database; tests that need the consumer or scheduler replace ``roles``."""
    return dataclasses.replace(
        Settings.from_env({}), database_url=database_url, mqtt_url=None, state_dir=tmp_path, roles=("api",)
    )


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with open_services(settings) as opened:
        yield opened


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://telemon.test") as http:
        yield http
