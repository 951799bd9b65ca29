"""Delivering webhook events: at least once, on a retry schedule, without ever slowing ingest or the engine.

The events wait in the database (the outbox of migration 0020). A :class:`Deliverer` runs in each process with the
``scheduler`` role: it wakes when a delivery is announced (``telemon.channels.WEBHOOKS``) or comes due, claims due
deliveries with ``FOR UPDATE SKIP LOCKED`` for a lease (several deliverers never send the same attempt twice), logs
the attempt before sending it, POSTs the signed event (:mod:`telemon.webhooks`) and records the answer. A 2xx is
delivered; anything else (another status, a timeout, a refused connection) is tried again on the schedule of
:data:`OFFSETS_S`: at once, then 5 s, 30 s, 2 min, 10 min and 1 h after the attempt before, then hourly up to 24 h
after the first; after that the delivery has failed and its endpoint is disabled, with the last error as the
reason the administrators see. A deliverer killed mid-send leaves the attempt logged without an answer; the lease
ends and the delivery is sent again (the receiver deduplicates on ``webhook-id``).

Ingest and the engine only insert outbox rows (in their own transaction, a trigger); the sending happens here, with
at most :data:`CONCURRENCY` requests in flight and a :data:`TIMEOUT_S` limit each, so a slow receiver holds only
its own deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx

from telemon import channels, webhooks
from telemon import webhook_queries as queries

log = logging.getLogger(__name__)

# The schedule, as offsets from the first attempt: at once, +5 s, +30 s, +2 min, +10 min, +1 h, then hourly, up to
# 24 h (the retry schedule Standard Webhooks' reference implementations use, shortened to the day a hospital's
# integration team needs to notice and repair a receiver).
_STEPS_S = (0, 5, 30, 120, 600, 3600)
OFFSETS_S: tuple[int, ...] = tuple(
    [sum(_STEPS_S[: i + 1]) for i in range(len(_STEPS_S))] + list(range(sum(_STEPS_S) + 3600, 24 * 3600 + 1, 3600))
)
TIMEOUT_S = 10.0
LEASE_S = TIMEOUT_S + 5  # a claimed attempt not answered by then is claimed again
CONCURRENCY = 16
BATCH = 64
IDLE_S = 30.0  # the longest sleep without a notification (a missed one costs at most this)
RETRY_S = 2.0  # after the database failed


def next_attempt(
    scheduled_from: dt.datetime, now: dt.datetime, offsets_s: Sequence[float] = OFFSETS_S
) -> dt.datetime | None:
    """When to try again after a failed attempt at ``now``: the schedule's first point after now, None when the
    24 hours are spent."""
    elapsed = (now - scheduled_from).total_seconds()
    for offset in offsets_s:
        if offset > elapsed:
            return scheduled_from + dt.timedelta(seconds=offset)
    return None


class Deliverer:
    """``offsets_s`` and ``lease_s`` are the schedule and the lease (tests shorten them)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        client: httpx.AsyncClient | None = None,
        offsets_s: Sequence[float] = OFFSETS_S,
        lease_s: float = LEASE_S,
    ) -> None:
        self._pool = pool
        self._offsets_s = tuple(offsets_s)
        self._lease_s = lease_s
        self._client = client or httpx.AsyncClient(timeout=TIMEOUT_S, follow_redirects=False)
        self._owns_client = client is None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._slots = asyncio.Semaphore(CONCURRENCY)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-deliverer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._owns_client:
            await self._client.aclose()

    async def deliver_due(self) -> int:
        """Send every delivery due now (one attempt each); how many were attempted."""
        attempted = 0
        while True:
            async with self._pool.acquire() as conn:
                claimed = await conn.fetch(queries.CLAIM_DUE, BATCH, self._lease_s)
            if not claimed:
                return attempted
            await asyncio.gather(*(self._attempt(row) for row in claimed))
            attempted += len(claimed)

    async def _attempt(self, row: Any) -> None:
        async with self._slots:
            body = webhooks.payload(row["type"], row["event_at"], row["data"])
            sent_at = int(time.time())
            message_id = f"msg_{row['message_id'].hex}"
            started = time.perf_counter()
            status: int | None = None
            error: str | None = None
            try:
                answer = await self._client.post(
                    row["url"], content=body, headers=webhooks.headers(row["secret"], message_id, sent_at, body)
                )
                status = answer.status_code
                if not 200 <= status < 300:
                    error = f"answered {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            latency_ms = round((time.perf_counter() - started) * 1000)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.RECORD_ATTEMPT, row["id"], row["attempts"], status, latency_ms, error)
            if error is None:
                await conn.execute(queries.DELIVERED, row["id"])
                return
            retry = next_attempt(row["scheduled_from"], dt.datetime.now(dt.UTC), self._offsets_s)
            if retry is not None:
                await conn.execute(queries.RETRY_AT, row["id"], retry)
                return
            reason = f"delivery {row['id']} failed on every attempt of the retry schedule; the last: {error}"
            disabled = await conn.fetchrow(queries.GIVE_UP, row["id"], reason)
        if disabled is not None:
            log.warning("webhook endpoint disabled", extra={"webhook_id": str(disabled["id"]), "reason": reason})

    def _on_notification(self, *_args: object) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                async with self._pool.acquire() as listener:
                    await listener.add_listener(channels.WEBHOOKS, self._on_notification)
                    try:
                        while True:
                            self._wake.clear()
                            await self.deliver_due()
                            async with self._pool.acquire() as conn:
                                due = await conn.fetchval(queries.NEXT_DUE)
                            wait = IDLE_S
                            if due is not None:
                                wait = min(IDLE_S, max(0.05, (due - dt.datetime.now(dt.UTC)).total_seconds()))
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(self._wake.wait(), wait)
                    finally:
                        with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                            await listener.remove_listener(channels.WEBHOOKS, self._on_notification)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("webhook deliveries waiting for the database: %s", exc)
                await asyncio.sleep(RETRY_S)
