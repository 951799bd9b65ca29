"""The clinic's API under test: the app with its routes, and enrolments made through it."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx

from clinic.domain import DOMAIN as CLINIC
from telemon import teams
from telemon.app.domains import DOMAINS
from telemon.app.factory import create_app
from telemon.app.services import Services

WRITE = ("patients:read", "patients:write")


@contextlib.asynccontextmanager
async def clinic_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the clinic's routes (mounted here unless the composition root lists the domain already),
    reached from a client address of its own so that the per-address pairing limit of one test does not reach
    another."""
    app = create_app(services=services)
    if CLINIC not in DOMAINS:
        assert CLINIC.include_routes is not None
        CLINIC.include_routes(app)
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="https://telemon.test") as http:
        yield http


async def new_team(db: asyncpg.Pool) -> uuid.UUID:
    async with db.acquire() as conn:
        return await teams.create_team(conn, f"team-{uuid.uuid4().hex[:8]}")


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def enrolment(**changes: Any) -> dict[str, Any]:
    body = {
        "external_id": f"H-{uuid.uuid4().hex[:10]}",
        "name": "Camille Martin",
        "timezone": "Europe/Paris",
        "due_date": (dt.date.today() + dt.timedelta(days=90)).isoformat(),
        "profile": "FR",
        "treatment": "diet",
        "readings_per_day": 4,
    }
    body.update(changes)
    return body


def reading(minutes_ago: int = 60, value: float = 101) -> dict[str, Any]:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=minutes_ago)
    return {"readings": [{"measured_at": at.isoformat().replace("+00:00", "Z"), "value": value, "unit": "mg/dL"}]}


async def enrol(api: httpx.AsyncClient, key: str, **changes: Any) -> dict[str, Any]:
    answer = await api.post("/api/v1/patients", json=enrolment(**changes), headers=auth(key))
    assert answer.status_code == 201, answer.text
    patient: dict[str, Any] = answer.json()
    return patient


async def last_audit(db: asyncpg.Pool, action: str, patient_id: str | None = None) -> asyncpg.Record:
    row = await db.fetchrow(
        "SELECT actor, action, patient_id, detail FROM audit_log WHERE action = $1"
        " AND ($2::uuid IS NULL OR patient_id = $2) ORDER BY id DESC LIMIT 1",
        action,
        patient_id,
    )
    assert row is not None, action
    return row
