"""The one ingest service every transport calls: validate → normalise → store in one transaction → answer →
announce the touched patients (NOTIFY to the dashboards, the alert engine).

Transports authenticate, decode and translate what they received into ``Submission``s in the device wire format,
then make one call, ``IngestService.receive_all``: many submissions in one transaction (an MQTT micro-batch, a FHIR
Bundle) or one (``receive``, an HTTP sync), with the refusals that reached no device (``Refusal``: not JSON, an
unknown device). The service never commits half a message: a message's readings and its rejections are written in
the same transaction, with what the transport keeps beside them (``within``: Nightscout's documents, FHIR's audit
row), and the answer is only given after it committed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from ingest import queries
from ingest.readings import (
    DeviceContext,
    Prepared,
    RejectedItem,
    Row,
    Submission,
    prepare_submission,
    raw_text,
    storable,
)
from telemon import channels
from telemon.db import Conn
from telemon.security import secret_hash

log = logging.getLogger(__name__)

# Called after each commit with the patients whose readings it added and the rows of the messages that added them
# (the alert engine evaluates at once a patient whose new values may call for an urgent alert).
AfterCommit = Callable[[set[uuid.UUID], list[Row]], Awaitable[None]]


@dataclass(slots=True)
class Receipt:
    """What the sender is told: ``{"accepted", "duplicates", "rejected": [{"index", "reason"}]}`` (the HTTP answer
    and the MQTT receipt alike). ``readings`` and ``measurements``, when the transport asked for them: the stored
    glucose reading, or measurement of another kind, of each item that has one (inserted now or before), by the
    item's position in its submission."""

    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    readings: dict[int, asyncpg.Record] = field(default_factory=dict)
    measurements: dict[int, asyncpg.Record] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "rejected": self.rejected}


def receipt_json(receipt: Receipt) -> bytes:
    """The receipt as JSON (the HTTP answer, the MQTT receipt), by the fast encoder. A reason may quote what the
    device sent, a lone surrogate included, which orjson refuses to encode: ``json`` then writes it escaped
    (ASCII), as any JSON reader expects."""
    document = receipt.as_dict()
    try:
        return orjson.dumps(document)
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(document, ensure_ascii=True, default=str).encode()


@dataclass(frozen=True)
class Refusal:
    """A message refused before it reached a device (not JSON, too large, an unknown device, a FHIR entry whose
    patient is unknown): recorded in the same transaction as the readings beside it."""

    source: str
    device_id: str | None
    item: RejectedItem


# Work a transport does in the ingest transaction, once the readings are stored and before the commit, given the
# receipts (with the stored readings when asked for): Nightscout keeps its documents, FHIR writes its audit row.
WithinTransaction = Callable[[Conn, list[Receipt]], Awaitable[None]]
_Rejection = tuple[uuid.UUID | None, str | None, str, RejectedItem]


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
        """Register a callback (the alert engine) for the patients whose readings a committed batch added, and
        those readings."""
        self._after_commit.append(callback)

    def validate(self, submission: Submission, now: dt.datetime) -> Prepared:
        """Parse → validate → normalise one submission (no database)."""
        return prepare_submission(submission, now=now, max_readings=self.max_readings)

    async def receive(self, payload: Any, device: DeviceContext, source: str) -> Receipt:
        """One decoded message of one device in the wire format, stored in its own transaction."""
        return (await self.receive_all([Submission(device, source, payload)]))[0]

    async def reject(self, source: str, device_id: str | None, reason: str, raw: Any) -> None:
        """Record a message refused before it reached a device (not JSON, unknown device, too large)."""
        await self.receive_all([], [Refusal(source, device_id, RejectedItem(None, reason, raw_text(raw)))])

    async def receive_all(
        self,
        submissions: Sequence[Submission],
        refusals: Sequence[Refusal] = (),
        *,
        conn: Conn | None = None,
        all_or_nothing: bool = False,
        with_readings: bool = False,
        within: WithinTransaction | None = None,
    ) -> list[Receipt]:
        """Validate the submissions and store them in one transaction with ``refusals``; one receipt per
        submission, in order, given once committed; then announce the patients with new readings.

        ``conn``: a connection the caller already holds (not in a transaction), instead of one from the pool.
        ``all_or_nothing``: no reading is stored when anything was refused (a FHIR transaction); the refusals are
        recorded all the same. ``with_readings``: each receipt carries the stored reading of its items.
        ``within``: the transport's own writes, in the same transaction."""
        now = dt.datetime.now(dt.UTC)
        messages = [self.validate(s, now) for s in submissions]
        if all_or_nothing and (refusals or any(m.rejected for m in messages)):
            messages = [Prepared(m.device, m.source, rejected=m.rejected) for m in messages]
        rejections: list[_Rejection] = [
            (m.device.patient_id, m.device.device_id, m.source, item) for m in messages for item in m.rejected
        ]
        rejections += [(None, r.device_id, r.source, r.item) for r in refusals]
        receipts = [
            Receipt(len(m.rows) + len(m.measurements), 0, [{"index": r.index, "reason": r.reason} for r in m.rejected])
            for m in messages
        ]
        if any(m.rows or m.measurements for m in messages) or rejections or within is not None:
            transaction = _Transaction(messages, rejections, receipts, with_readings, within)
            if conn is None:
                async with self.pool.acquire() as acquired:
                    await transaction.run(acquired)
            else:
                await transaction.run(conn)
        added = [m for m, r in zip(messages, receipts, strict=True) if r.accepted]
        if added:
            await self._announce({m.device.patient_id for m in added}, [row for m in added for row in m.rows])
        return receipts

    async def _announce(self, touched: set[uuid.UUID], rows: list[Row]) -> None:
        """The NOTIFY went out with the commit (``queries.STORE`` for glucose readings, ``queries.STORE_MEASUREMENTS``
        for the other kinds); now the in-process consumers: the engine gets every patient with something new, a
        sync of doses or of a blood pressure only included (``rows`` holds the glucose readings, to tell the urgent
        ones)."""
        for callback in self._after_commit:
            try:
                await callback(touched, rows)
            except Exception:
                # the readings are committed; a failing consumer of them must not turn the answer into an error
                log.exception("after-commit callback failed", extra={"patients": len(touched)})


@dataclass
class _Transaction:
    """One ingest transaction: COPY the messages' rows to the staging table, then ``queries.STORE`` inserts them
    and writes the rest; the receipts get how many rows each message added (the others were already stored:
    duplicates), the stored readings when asked, and the transport's own writes run before the commit."""

    messages: Sequence[Prepared]
    rejections: list[_Rejection]
    receipts: list[Receipt]
    with_readings: bool
    within: WithinTransaction | None

    async def run(self, conn: Conn) -> None:
        messages = self.messages
        total = sum(len(m.rows) for m in messages)
        try:
            await conn.execute(queries.BEGIN_WITH_STAGING)
            if total:
                records = [
                    (number, position, *row.record())
                    for position, (number, row) in enumerate((n, r) for n, m in enumerate(messages) for r in m.rows)
                ]
                await conn.copy_records_to_table("ingest_staging", records=records, columns=queries.STAGING_COLUMNS)
            with_rows = list({m.device.device_id for m in messages if m.rows or m.measurements})
            counts = {r["message"]: r["inserted"] for r in await conn.fetch(
                queries.STORE, with_rows, *_rejection_columns(self.rejections), total, channels.READINGS
            )}  # fmt: skip
            measured = None
            if any(m.measurements for m in messages):
                measured = {r["message"]: r["inserted"] for r in await conn.fetch(
                    queries.STORE_MEASUREMENTS, *_measurement_columns(messages), channels.READINGS
                )}  # fmt: skip
            self._count(counts, total, measured)
            if self.with_readings and total:
                await self._look_up(conn)
            if self.with_readings and measured is not None:
                await self._look_up_measurements(conn)
            if self.within is not None:
                await self.within(conn, self.receipts)
            await conn.execute(queries.COMMIT)
        except BaseException:
            with contextlib.suppress(Exception):  # a broken connection is discarded by the pool
                await conn.execute(queries.ROLLBACK)
            raise

    def _count(self, counts: dict[int, int], total: int, measured: dict[int, int] | None) -> None:
        """The receipts' accepted and duplicates from what each message added: ``counts`` of glucose readings
        (``queries.STORE``), ``measured`` of the other kinds (None: the batch had none)."""
        if counts[-1] == total and measured is None:
            return  # every row was new: the receipts say so already
        messages = self.messages
        if counts[-1] == total:
            inserted = [len(m.rows) for m in messages]
        elif len(messages) == 1:
            inserted = [counts[-1]]
        else:
            inserted = [counts.get(number, 0) for number in range(len(messages))]
        for number, (message, receipt, added) in enumerate(zip(messages, self.receipts, inserted, strict=True)):
            measures = len(message.measurements)
            new = measures if measured is None else measured.get(number, 0)
            receipt.accepted = added + new
            receipt.duplicates = len(message.rows) - added + measures - new

    async def _look_up(self, conn: Conn) -> None:
        """The stored reading of every row, by its dedup key: just inserted or already there."""
        rows = [row for m in self.messages for row in m.rows]
        keys = [[r.patient_id for r in rows], [r.device_id for r in rows], [r.kind for r in rows],
                [r.device_time for r in rows], [r.value_raw for r in rows]]  # fmt: skip
        owners = self._owners(lambda m: m.positions)
        for record in await conn.fetch(queries.STORED_BY_KEY, *keys, list(range(len(rows)))):
            receipt, position = owners[record["position"]]
            receipt.readings[position] = record

    async def _look_up_measurements(self, conn: Conn) -> None:
        """The stored measurement of every item of another kind, by its dedup key: just inserted or already there."""
        items = [item for m in self.messages for item in m.measurements]
        keys = [[m.patient_id for m in items], [m.device_id for m in items], [m.kind for m in items],
                [m.device_time for m in items], [m.values_key for m in items]]  # fmt: skip
        owners = self._owners(lambda m: m.measured_positions)
        for record in await conn.fetch(queries.STORED_MEASUREMENTS_BY_KEY, *keys, list(range(len(items)))):
            receipt, position = owners[record["position"]]
            receipt.measurements[position] = record

    def _owners(self, positions: Callable[[Prepared], list[int]]) -> list[tuple[Receipt, int]]:
        """For each stored item of the batch, in order: its message's receipt and its position in the message."""
        return [(receipt, position) for m, receipt in zip(self.messages, self.receipts, strict=True)
                for position in positions(m)]  # fmt: skip


def _measurement_columns(messages: Sequence[Prepared]) -> list[list[Any]]:
    """The batch's measurements as the arrays of ``queries.STORE_MEASUREMENTS``: message, position, then
    ``queries.MEASUREMENT_COLUMNS``."""
    staged = [(number, item) for number, m in enumerate(messages) for item in m.measurements]
    columns: list[list[Any]] = [[number for number, _ in staged], list(range(len(staged)))]
    columns += [[getattr(item, name) for _, item in staged] for name in queries.MEASUREMENT_COLUMNS]
    return columns


def _rejection_columns(rejections: list[_Rejection]) -> list[list[Any]]:
    return [
        [r[0] for r in rejections],
        [None if r[1] is None else storable(r[1]) for r in rejections],
        [r[2] for r in rejections],
        [r[3].index for r in rejections],
        [r[3].reason for r in rejections],  # storable already: RejectedItem escapes its texts
        [r[3].raw for r in rejections],
    ]
