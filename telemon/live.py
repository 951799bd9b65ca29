"""Live updates: PostgreSQL LISTEN/NOTIFY fanned out to server-sent-event streams (the dashboard's, and the
patient's companion app's).

Each API process holds **one** listening connection (not one per browser), on the channels

- ``telemon_alerts``: alert changes (alerts.store), payload ``{"id", "patient_id", "rule", "severity", "status",
  "change"}``;
- ``telemon_readings``: readings stored (ingest), payload ``{"patient_ids": [...]}``;
- ``telemon_messages``: a message sent or read (clinic.messages), payload ``{"patient_id", ...}``.

Because the notifications go through PostgreSQL, a change made through any process (an MQTT consumer, another
API process behind the load balancer) reaches the browsers of every process. Each notification is forwarded only
to the streams of clinicians whose care teams hold the patient, and to the patient's own streams (her messages
only). The listening connection is borrowed from the
pool while at least one stream is open, and given back a little after the last one closed; a lost connection is
re-established and the streams are told to ``resync`` (they refetch what they show).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from fastapi import FastAPI

from telemon import channels, queries

log = logging.getLogger(__name__)

ALERTS_CHANNEL = channels.ALERTS
READINGS_CHANNEL = channels.READINGS
MESSAGES_CHANNEL = channels.MESSAGES
CHANNELS = (ALERTS_CHANNEL, READINGS_CHANNEL, MESSAGES_CHANNEL)
QUEUE_SIZE = 256  # events a slow stream may lag behind before it is told to resync
IDLE_RELEASE_S = 5.0  # give the listening connection back this long after the last stream closed
HEALTH_CHECK_S = 30.0
TEAM_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class Event:
    kind: str  # "alert" | "reading" | "message" | "resync"
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """A clinician's stream follows her ``team_ids``; a patient's (``patient_id``) follows her own messages."""

    team_ids: frozenset[uuid.UUID]
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False
    patient_id: uuid.UUID | None = None

    def wants(self, patient: uuid.UUID, team: uuid.UUID, event: Event) -> bool:
        if self.patient_id is not None:
            return patient == self.patient_id and event.kind == "message"
        return team in self.team_ids

    def offer(self, event: Event) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True  # the stream will send a resync instead of the lost events


class Broadcaster:
    """One per process (stored on ``app.state``): LISTEN once, fan out to every subscribed stream."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.subscriptions: set[Subscription] = set()
        self._incoming: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._teams: OrderedDict[uuid.UUID, uuid.UUID] = OrderedDict()
        self._connected = asyncio.Event()
        self.listening = False  # a LISTEN connection is held (tests)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, team_ids: tuple[uuid.UUID, ...], *, patient_id: uuid.UUID | None = None
    ) -> AsyncIterator[Subscription]:
        subscription = Subscription(frozenset(team_ids), patient_id=patient_id)
        self.subscriptions.add(subscription)
        if self._task is None or self._task.done():
            self._connected.clear()
            self._task = asyncio.create_task(self._run(), name="dashboard-listener")
        try:
            yield subscription
        finally:
            self.subscriptions.discard(subscription)

    async def wait_listening(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- the listening task ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        delay = 0.5
        loop = asyncio.get_running_loop()
        while self.subscriptions:  # checked with no await before the task ends: a new stream never misses it
            idle = False
            try:
                async with self.pool.acquire() as conn:
                    lost = asyncio.Event()

                    def on_lost(_conn: Any, lost: asyncio.Event = lost) -> None:
                        lost.set()

                    for channel in CHANNELS:
                        await conn.add_listener(channel, self._on_notification)
                    conn.add_termination_listener(on_lost)
                    self.listening = True
                    self._connected.set()
                    delay = 0.5
                    idle_since: float | None = None
                    checked = loop.time()
                    try:
                        while not lost.is_set():
                            if self.subscriptions:
                                idle_since = None
                            elif idle_since is None:
                                idle_since = loop.time()
                            elif loop.time() - idle_since >= IDLE_RELEASE_S:
                                idle = True
                                break
                            await self._dispatch_pending()
                            if loop.time() - checked >= HEALTH_CHECK_S:
                                checked = loop.time()
                                await asyncio.wait_for(conn.fetchval("SELECT 1"), 5)
                    finally:
                        self.listening = False
                        self._connected.clear()
                        conn.remove_termination_listener(on_lost)
                        with contextlib.suppress(Exception):
                            for channel in CHANNELS:
                                await conn.remove_listener(channel, self._on_notification)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("dashboard listener lost its connection; reconnecting", exc_info=True)
            if idle:
                continue  # released; listen again only if a stream came meanwhile
            self._broadcast_all(Event("resync", {}))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _on_notification(self, _conn: Any, _pid: int, channel: str, payload: object) -> None:
        self._incoming.put_nowait((channel, str(payload)))

    async def _dispatch_pending(self) -> None:
        """Wait up to a second for notifications; forward each to the streams of the patient's team."""
        try:
            first = await asyncio.wait_for(self._incoming.get(), 1.0)
        except TimeoutError:
            return
        batch = [first]
        while not self._incoming.empty():
            batch.append(self._incoming.get_nowait())
        events: list[tuple[uuid.UUID, Event]] = []
        for channel, payload in batch:
            events += _parse(channel, payload)
        if not events:
            return
        teams = await self._teams_of({patient for patient, _ in events})
        for patient, event in events:
            team = teams.get(patient)
            if team is None:
                continue
            for subscription in list(self.subscriptions):
                if subscription.wants(patient, team, event):
                    subscription.offer(event)

    async def _teams_of(self, patients: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
        found = {p: self._teams[p] for p in patients if p in self._teams}
        missing = [p for p in patients if p not in found]
        if missing:
            for row in await self.pool.fetch(queries.PATIENT_TEAMS, missing):
                found[row["id"]] = row["team_id"]
                self._teams[row["id"]] = row["team_id"]
            while len(self._teams) > TEAM_CACHE_SIZE:
                self._teams.popitem(last=False)
        return found

    def _broadcast_all(self, event: Event) -> None:
        for subscription in list(self.subscriptions):
            subscription.offer(event)


def _parse(channel: str, payload: str) -> list[tuple[uuid.UUID, Event]]:
    """Events of one notification; a malformed payload is logged and skipped, never fatal."""
    try:
        data = json.loads(payload)
        if channel == ALERTS_CHANNEL:
            patient = uuid.UUID(str(data["patient_id"]))
            fields = ("id", "rule", "severity", "status", "change")
            event = {"patient_id": str(patient)} | {k: data.get(k) for k in fields}
            return [(patient, Event("alert", event))]
        if channel == MESSAGES_CHANNEL:  # a message sent (id, author) or read (read: whose messages)
            patient = uuid.UUID(str(data["patient_id"]))
            said = {"patient_id": str(patient)} | {k: data[k] for k in ("id", "author", "read") if k in data}
            return [(patient, Event("message", said))]
        patients = [uuid.UUID(str(p)) for p in data["patient_ids"]]
        return [(p, Event("reading", {"patient_id": str(p)})) for p in patients]
    except (ValueError, KeyError, TypeError):
        log.warning("unreadable notification ignored", extra={"channel": channel, "payload": payload[:200]})
        return []


def broadcaster(app: FastAPI) -> Broadcaster:
    """The process's one broadcaster (made on first use, closed with the app: :func:`close`)."""
    found: Broadcaster | None = getattr(app.state, "broadcaster", None)
    if found is None:
        found = Broadcaster(app.state.services.pool)
        app.state.broadcaster = found
    return found


async def close(app: FastAPI) -> None:
    """Give back the listening connection (the app's lifespan does, before the pool closes)."""
    hub: Broadcaster | None = getattr(app.state, "broadcaster", None)
    if hub is not None:
        await hub.close()


def frame(event: Event) -> str:
    """An event as a server-sent-event frame."""
    return f"event: {event.kind}\ndata: {json.dumps(event.data, separators=(',', ':'))}\n\n"


HEARTBEAT_S = 15.0  # a comment line now and then keeps proxies and phones' networks from closing an idle stream
CHECK_S = 60.0  # how often a stream asks whether its reader may still read (session, token)
MAX_STREAM_S = 30 * 60.0  # streams are recycled (the reader reconnects by itself)
RETRY_MS = 3000
BATCH_EVENTS = 256  # events already waiting that are handed over together


async def stream(
    hub: Broadcaster,
    subscription: Subscription,
    *,
    still_allowed: Callable[[], Awaitable[bool]],
    deliver: Callable[[list[Event]], Awaitable[list[Event]]],
) -> AsyncIterator[str]:
    """The server-sent-event frames of one open ``subscription``: ``hello`` once listening, then its events in
    batches (``deliver`` audits and shapes each batch), ``resync`` after an overflow, a heartbeat comment when idle;
    it ends when ``still_allowed`` says no (a session ended, a token revoked), after ``MAX_STREAM_S``, or when the
    server stops."""
    loop = asyncio.get_running_loop()
    yield f"retry: {RETRY_MS}\n\n"
    with contextlib.suppress(TimeoutError):
        await hub.wait_listening()
    yield frame(Event("hello", {}))
    opened = last_beat = last_check = loop.time()
    while not shutdown_requested() and loop.time() - opened < MAX_STREAM_S:
        if subscription.overflowed:
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            subscription.overflowed = False
            yield frame(Event("resync", {}))
        try:
            event = await asyncio.wait_for(subscription.queue.get(), 1.0)
        except TimeoutError:
            now = loop.time()
            if now - last_beat >= HEARTBEAT_S:
                last_beat = now
                yield ": ping\n\n"
            if now - last_check >= CHECK_S:
                last_check = now
                if not await still_allowed():
                    return
            continue
        batch = [event]
        while len(batch) < BATCH_EVENTS and not subscription.queue.empty():
            batch.append(subscription.queue.get_nowait())
        for sent in await deliver(batch):
            yield frame(sent)


def shutdown_requested() -> bool:
    """True once the uvicorn server of this process was asked to stop (Ctrl-C, SIGTERM).

    uvicorn waits for open responses before it shuts down, and an event stream never ends by itself; uvicorn
    installs its ``Server.handle_exit`` as the signal handler, so the stream loop reads the server's
    ``should_exit`` through it and ends, letting the process stop promptly."""
    handler = signal.getsignal(signal.SIGTERM)
    server = getattr(handler, "__self__", None)
    return bool(getattr(server, "should_exit", False))
