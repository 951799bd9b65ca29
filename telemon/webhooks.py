"""Signed webhooks: the endpoints a team's administrators register, the events they take, and the signature.

Events (``EVENTS``) are written by database triggers in the transaction of the change itself (migration 0020:
an outbox, so an event exists exactly when its change was committed) and sent by :mod:`telemon.webhook_delivery`.
The payload follows Standard Webhooks (standardwebhooks.com, spec v1): ``{"type", "timestamp", "data"}``, ``data``
holding ids and, for alerts, the alert's ``code`` and typed ``params``, so that a hospital's engine can act on it
without reading text; the headers are ``webhook-id`` (the same on every attempt, to deduplicate),
``webhook-timestamp`` (seconds) and ``webhook-signature``: ``v1,`` + base64 HMAC-SHA256 of
``{id}.{timestamp}.{body}`` keyed with the secret's bytes (the secret is ``whsec_`` + base64 of 32 random bytes,
shown once). Any http(s) URL is allowed, private and loopback addresses included: hospital integration engines
live on private networks.

The command line (``telemon add-webhook``) and the administrators' page both go through :func:`create`."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from telemon import audit
from telemon import webhook_queries as queries
from telemon.db import Conn

EVENTS: tuple[str, ...] = (
    "alert.opened",
    "alert.escalated",
    "alert.resolved",
    "patient.enrolled",
    "patient.reviewed",
    "message.received",
)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix Standard Webhooks gives secrets, not a secret
SECRET_BYTES = 32  # Standard Webhooks: secrets of 24 to 64 bytes
MAX_URL = 2000
MAX_LABEL = 200
LOG_PAGE = 50


class WebhookError(ValueError):
    """A field an administrator gave cannot be used; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Endpoint:
    id: uuid.UUID
    team_id: uuid.UUID
    url: str
    events: tuple[str, ...]
    label: str
    active: bool
    disabled_at: dt.datetime | None
    disabled_reason: str | None
    created_by: str
    created_at: dt.datetime
    delivered_24h: int = 0
    failed_24h: int = 0
    pending: int = 0


def check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError("url", "the address must be an http:// or https:// URL with a host")
    if len(url) > MAX_URL or any(c.isspace() for c in url):
        raise WebhookError("url", f"the address must be at most {MAX_URL} characters, without spaces")
    return url


def check_events(events: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(e.strip() for e in events if e.strip()))
    unknown = [e for e in chosen if e not in EVENTS]
    if unknown:
        raise WebhookError("events", f"unknown event {', '.join(unknown)}; choose from {', '.join(EVENTS)}")
    if not chosen:
        raise WebhookError("events", "choose at least one event")
    return chosen


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header of ``body``: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def payload(event_type: str, at: dt.datetime, data: dict[str, Any]) -> bytes:
    """The body of an event: Standard Webhooks' ``{"type", "timestamp", "data"}``, compact JSON."""
    timestamp = at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": timestamp, "data": data}, separators=(",", ":")).encode()


def headers(secret: str, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "telemon-webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, message_id, timestamp, body),
    }


async def create(
    conn: Conn, *, team_id: uuid.UUID, url: str, events: Iterable[str], label: str = "", actor: str
) -> tuple[Endpoint, str]:
    """Register an endpoint of ``team_id``; returns it with its secret (shown once, by the caller). Audited."""
    url = check_url(url)
    chosen = check_events(events)
    label = label.strip()
    if len(label) > MAX_LABEL:
        raise WebhookError("label", f"the label must be at most {MAX_LABEL} characters")
    secret = new_secret()
    row = await conn.fetchrow(queries.INSERT_ENDPOINT, uuid.uuid4(), team_id, url, chosen, secret, label, actor)
    assert row is not None
    endpoint = _endpoint(row)
    await audit.record(
        conn,
        actor=actor,
        action="webhook.create",
        detail={"webhook_id": str(endpoint.id), "team_id": str(team_id), "url": url, "events": chosen},
    )
    return endpoint, secret


async def endpoints_of(conn: Conn, team_ids: Sequence[uuid.UUID]) -> list[Endpoint]:
    return [_endpoint(r) for r in await conn.fetch(queries.ENDPOINTS_OF_TEAMS, list(team_ids))]


async def endpoint(conn: Conn, endpoint_id: uuid.UUID, team_ids: Sequence[uuid.UUID]) -> Endpoint | None:
    row = await conn.fetchrow(queries.ENDPOINT, endpoint_id, list(team_ids))
    return _endpoint(row) if row is not None else None


async def set_active(conn: Conn, found: Endpoint, active: bool, *, actor: str) -> bool:
    """Turn ``found`` off (its deliveries wait) or on again (they go out at once); False if it already was."""
    if active:
        changed = found.active is False
        await conn.fetch(queries.ENABLE_ENDPOINT, found.id)
    else:
        changed = await conn.fetchval(queries.DISABLE_ENDPOINT, found.id, f"turned off by {actor}") is not None
    if changed:
        action = "webhook.enable" if active else "webhook.disable"
        await audit.record(conn, actor=actor, action=action, detail={"webhook_id": str(found.id)})
    return changed


async def delivery_log(conn: Conn, endpoint_id: uuid.UUID, *, before: int | None = None) -> list[dict[str, Any]]:
    """The endpoint's deliveries, newest first, each with its attempts (status code, latency, error)."""
    rows = await conn.fetch(queries.DELIVERY_LOG, endpoint_id, LOG_PAGE, before)
    return [dict(r) for r in rows]


async def resend(conn: Conn, delivery_id: int, team_ids: Sequence[uuid.UUID], *, actor: str) -> bool:
    """Send a delivery again now, on a fresh schedule (an administrator asked). Audited."""
    found = await conn.fetchval(queries.RESEND, delivery_id, list(team_ids))
    if found is not None:
        await audit.record(conn, actor=actor, action="webhook.resend", detail={"delivery_id": delivery_id})
        await conn.execute(queries.ANNOUNCE)
    return found is not None


def _endpoint(row: Any) -> Endpoint:
    values = dict(row)
    values["events"] = tuple(values["events"])
    return Endpoint(**{k: v for k, v in values.items() if k in Endpoint.__dataclass_fields__})
