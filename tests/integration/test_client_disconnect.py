"""A client that goes away in the middle of its upload (a phone losing its signal): the ASGI server tells the app
with ``http.disconnect`` before the body is whole. Nothing is stored or recorded as refused, the process logs one
line and no error, and the next upload of the same device goes through."""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
import httpx
import pytest

from telemon.app.factory import CLIENT_CLOSED_REQUEST, create_app
from telemon.app.services import Services
from tests.support.factories import patient_with_device


async def test_an_upload_cut_short_is_not_an_error_and_the_next_one_is_stored(
    services: Services, client: httpx.AsyncClient, db: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    setup = await patient_with_device(db)
    body = json.dumps(
        {"readings": [{"value": 5.4, "unit": "mmol/L", "measured_at": "2026-12-01T07:30:00Z", "context": "fasting"}]}
    ).encode()
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/readings",
        "raw_path": b"/api/v1/readings",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"telemon.test"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"authorization", f"Bearer {setup.token}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    arriving: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[:10], "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return arriving.pop(0) if arriving else {"type": "http.disconnect"}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    app = create_app(services=services)
    refused_before = await db.fetchval("SELECT count(*) FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)  # raises nothing: the server has nothing to log as an error
    start = next(message for message in sent if message["type"] == "http.response.start")
    assert start["status"] == CLIENT_CLOSED_REQUEST
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert any("closed the connection" in record.getMessage() for record in caplog.records)
    stored = await db.fetchval("SELECT count(*) FROM readings WHERE device_id = $1", setup.device_id)
    refused = await db.fetchval("SELECT count(*) FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert (stored, refused) == (0, refused_before)

    again = await client.post(
        "/api/v1/readings",
        content=body,
        headers={"Authorization": f"Bearer {setup.token}", "Content-Type": "application/json"},
    )
    assert again.status_code == 200, again.text
    assert await db.fetchval("SELECT count(*) FROM readings WHERE device_id = $1", setup.device_id) == 1
