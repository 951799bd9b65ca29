"""The one ingest service every transport calls: parse → validate → normalise → store in one transaction →
answer → hand the touched patients to the alert engine.

Transports authenticate and decode; they call ``receive`` (one message) or ``store`` (many prepared messages
in one transaction, for MQTT micro-batches). The service never commits half a message: a message's readings
and its rejections are written in the same transaction, and the answer is only given after it committed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ingest import queries
from ingest.readings import DeviceContext, Prepared, RejectedItem, Row, prepare, raw_text, storable
from telemon.db import Conn
from telemon.security import secret_hash

log = logging.getLogger(__name__)

AfterCommit = Callable[[set[uuid.UUID]], Awaitable[None]]


@dataclass
class Answer:
    """What the sender is told (DESIGN §5): ``{"accepted", "duplicates", "rejected": [{"index", "reason"}]}``."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def _context(row: asyncpg.Record) -> DeviceContext:
    return DeviceContext(
        device_id=row["device_id"],
        device_kind=row["device_kind"],
        patient_id=row["patient_id"],
        time_zone=row["time_zone"],
        pregnancy_start=row["pregnancy_start"],
        active=row["active"],
    )


async def device_by_token(db: asyncpg.Pool | Conn, token: str) -> DeviceContext | None:
    row = await db.fetchrow(queries.DEVICE_CONTEXT_BY_TOKEN, secret_hash(token))
    return _context(row) if row else None


async def device_by_nightscout_secret(db: asyncpg.Pool | Conn, api_secret: str) -> DeviceContext | None:
    row = await db.fetchrow(queries.DEVICE_CONTEXT_BY_NS_SECRET, secret_hash(api_secret.strip().lower()))
    return _context(row) if row else None


async def devices_by_ids(db: asyncpg.Pool | Conn, device_ids: Iterable[str]) -> dict[str, DeviceContext]:
    rows = await db.fetch(queries.DEVICE_CONTEXT_BY_IDS, list(set(device_ids)))
    return {r["device_id"]: _context(r) for r in rows}


class IngestService:
    def __init__(self, pool: asyncpg.Pool, *, max_readings: int = 10_000) -> None:
        self.pool = pool
        self.max_readings = max_readings
        self._after_commit: list[AfterCommit] = []

    def on_commit(self, callback: AfterCommit) -> None:
        """Register a callback (the alert engine) for the patients whose readings a committed batch added."""
        self._after_commit.append(callback)

    def prepare(self, payload: Any, device: DeviceContext, source: str, now: dt.datetime | None = None) -> Prepared:
        return prepare(
            payload, device, now=now or dt.datetime.now(dt.UTC), source=source, max_readings=self.max_readings
        )

    async def receive(self, payload: Any, device: DeviceContext, source: str) -> Answer:
        """One decoded message of one device, stored in its own transaction."""
        return (await self.store([self.prepare(payload, device, source)]))[0]

    async def store(
        self,
        messages: Sequence[Prepared],
        extra_rejections: Sequence[RejectedItemOf] = (),
        *,
        conn: Conn | None = None,
    ) -> list[Answer]:
        """Store many prepared messages in one transaction; one answer per message, in order.

        ``extra_rejections`` are message-level refusals with no device context (unknown device, not JSON) that
        the caller wants recorded in the same transaction. ``conn``: a connection the caller already holds (not
        in a transaction), instead of one from the pool."""
        rejections: list[tuple[uuid.UUID | None, str | None, str, RejectedItem]] = [
            (m.device.patient_id, m.device.device_id, m.source, item) for m in messages for item in m.rejected
        ]
        rejections += [(None, r.device_id, r.source, r.item) for r in extra_rejections]
        total = sum(len(m.rows) for m in messages)
        inserted: list[int] = [0] * len(messages)
        if total or rejections:
            if conn is None:
                async with self.pool.acquire() as acquired:
                    inserted = await _store(acquired, messages, total, rejections)
            else:
                inserted = await _store(conn, messages, total, rejections)
        answers = [
            Answer(accepted, len(m.rows) - accepted, [{"index": r.index, "reason": r.reason} for r in m.rejected])
            for m, accepted in zip(messages, inserted, strict=True)
        ]
        touched = {m.device.patient_id for m, accepted in zip(messages, inserted, strict=True) if accepted}
        if touched:
            await self._notify(touched)
        return answers

    async def stored(self, rows: Sequence[Row]) -> list[asyncpg.Record | None]:
        """The stored reading of each row (by its dedup key), just inserted or already there; None if absent."""
        found: list[asyncpg.Record | None] = [None] * len(rows)
        if rows:
            records = await self.pool.fetch(
                queries.STORED_BY_KEY,
                [r.patient_id for r in rows],
                [r.device_id for r in rows],
                [r.kind for r in rows],
                [r.device_time for r in rows],
                [r.value_raw for r in rows],
                list(range(len(rows))),
            )
            for record in records:
                found[record["position"]] = record
        return found

    async def reject(self, source: str, device_id: str | None, reason: str, raw: Any) -> None:
        """Record a message refused before it reached a device (not JSON, unknown device, too large)."""
        await self.store([], [RejectedItemOf(source, device_id, RejectedItem(None, reason, raw_text(raw)))])

    async def _notify(self, touched: set[uuid.UUID]) -> None:
        for callback in self._after_commit:
            try:
                await callback(touched)
            except Exception:
                # the readings are committed; a failing consumer of them must not turn the answer into an error
                log.exception("after-commit callback failed", extra={"patients": len(touched)})


@dataclass(frozen=True)
class RejectedItemOf:
    source: str
    device_id: str | None
    item: RejectedItem


async def _store(
    conn: Conn,
    messages: Sequence[Prepared],
    total: int,
    rejections: list[tuple[uuid.UUID | None, str | None, str, RejectedItem]],
) -> list[int]:
    """One transaction: COPY the messages' rows to the staging table, then ``queries.STORE`` inserts them and
    writes the rest; the rows each message added (the others were already stored: duplicates)."""
    try:
        await conn.execute(queries.BEGIN_WITH_STAGING)
        if total:
            records = [
                (number, position, *row.record())
                for position, (number, row) in enumerate((n, r) for n, m in enumerate(messages) for r in m.rows)
            ]
            await conn.copy_records_to_table("ingest_staging", records=records, columns=queries.STAGING_COLUMNS)
        with_rows = list({m.device.device_id for m in messages if m.rows})
        counts = {r["message"]: r["inserted"] for r in await conn.fetch(
            queries.STORE, with_rows, *_rejection_columns(rejections), total
        )}  # fmt: skip
        await conn.execute(queries.COMMIT)
    except BaseException:
        with contextlib.suppress(Exception):  # a broken connection is discarded by the pool
            await conn.execute(queries.ROLLBACK)
        raise
    if counts[-1] == total:
        return [len(m.rows) for m in messages]
    if len(messages) == 1:
        return [counts[-1]]
    return [counts.get(number, 0) for number in range(len(messages))]


def _rejection_columns(rejections: list[tuple[uuid.UUID | None, str | None, str, RejectedItem]]) -> list[list[Any]]:
    return [
        [r[0] for r in rejections],
        [None if r[1] is None else storable(r[1]) for r in rejections],
        [r[2] for r in rejections],
        [r[3].index for r in rejections],
        [r[3].reason for r in rejections],  # storable already: RejectedItem escapes its texts
        [r[3].raw for r in rejections],
    ]
