"""What the Nightscout tests share: the app with a short failed-authentication delay (Nightscout's is 5 s a
failure; tests/integration/test_nightscout_auth.py checks the delay itself), the uploader's ``api-secret`` header,
and the real Nightscout payloads of ``../shared/data/nightscout/``."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from ingest.nightscout.auth import FailedAuthDelays
from telemon.app.factory import create_app
from telemon.app.services import Services
from telemon.security import nightscout_secret
from tests.support.factories import Setup

DATA = Path(__file__).parents[2].parent / "shared" / "data" / "nightscout"


@contextlib.asynccontextmanager
async def nightscout_client(services: Services, delay: float = 0.01) -> AsyncIterator[httpx.AsyncClient]:
    """The app served in-process, its failed-authentication delay ``delay`` seconds."""
    app = create_app(services=services)
    app.state.nightscout_auth_delays = FailedAuthDelays(delay=delay)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://telemon.test") as http:
        yield http


def payload(name: str) -> list[dict[str, Any]]:
    """One of the Nightscout payloads of ``../shared/data/nightscout/``."""
    loaded: list[dict[str, Any]] = json.loads((DATA / name).read_text())
    return loaded


def ns_headers(setup: Setup) -> dict[str, str]:
    """What an uploader sends: the SHA-1 of its secret (the device token) in ``api-secret``."""
    return {"api-secret": nightscout_secret(setup.token)}
