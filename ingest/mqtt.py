"""The MQTT consumer: ``telemon/v1/devices/{device_id}/readings`` in, receipts out.

The paho-mqtt client runs on the event loop (``telemon.mqtt_client.LoopDriver``): its callbacks queue the
messages that arrive while the previous batch is being stored. Messages are micro-batched: everything that arrived
is parsed, stored in one transaction, and only after the commit is each message acknowledged (manual PUBACK) and
its receipt published. A crash before the commit means the broker delivers again; the dedup key makes that harmless.
A bad message is recorded as a rejection and acknowledged; it never stops the consumer.

A batch whose store fails is handled by why it failed (``telemon.db.transient``). The database being unavailable
is retried with a short backoff, so that the batch (and everything queued behind it) is stored within seconds of
the database coming back, without a restart. Any other failure is about the batch's content — a message that
validation let through but PostgreSQL refuses (a NUL, a lone surrogate), or one that makes parsing raise
(OverflowError, RecursionError) — and the batch is split in halves down to the single message: the others are
stored, the culprit is recorded as a rejection (its raw payload escaped so that recording it cannot fail the same
way) and acknowledged with a rejection receipt. Retrying it as is would fail forever and, the acknowledgements
being in order, hold back every device's readings. Nothing of this runs until a store has failed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.readings import RAW_LIMIT, RejectedItem, Submission, raw_text
from ingest.service import IngestService, Receipt, Refusal, devices_by_ids, receipt_json
from telemon import fastjson
from telemon.db import describe, ping, transient
from telemon.mqtt_client import LoopDriver, negotiate, new_client, probe
from telemon.settings import Settings, parse_mqtt_url
from telemon.topics import READINGS_TOPIC, device_of, receipts_topic

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: the broker keeps our session (and queues) for a week
RECEIVE_MAXIMUM = 2000  # MQTT 5: unacknowledged messages the broker may send us, i.e. the largest micro-batch
MAX_BATCH = 2000
MAX_BATCH_BYTES = 512 * 1024  # payload per batch: a batch of big syncs commits (and is confirmed) sooner
IN_FLIGHT = 2  # batches stored at once
RETRY_FIRST_S = 0.2  # backoff of a batch the database could not take: 0.2 s, doubling...
RETRY_MAX_S = 2.0  # ...up to 2 s, so that the backlog is stored within seconds of the database coming back
# Failures called transient while the database answers a probe, before the batch itself is suspected (a value
# that breaks asyncpg's connection looks like a lost connection; a real one is replaced by the pool at once).
SUSPECT_AFTER = 5
STALLED_AFTER_S = 3.0  # a batch failing for longer than this makes the consumer not ready (/readyz 503)
NEGOTIATE_MAX_S = 10.0  # backoff of the protocol probe while the broker does not answer
# MQTT keep-alive: a broker gone silent is given up after 1.5 x this (15 s), the last resort when the connection's
# end is not seen otherwise; a ping every 10 s costs the broker nothing.
KEEPALIVE_S = 10


@dataclass(frozen=True)
class Incoming:
    mid: int
    qos: int
    topic: str
    payload: bytes


def broker_speaks_mqtt5(url: str, timeout: float = 3.0) -> bool:
    """Whether the broker accepts an MQTT 5 connection (Mosquitto does; amqtt speaks 3.1.1 only)."""
    return probe(url, timeout, protocol=mqtt.MQTTv5)


MessageReceipts = dict[int, tuple[str, Receipt]]  # id() of a message -> its device and receipt


class MqttConsumer:
    def __init__(self, pool: asyncpg.Pool, url: str, settings: Settings, service: IngestService | None = None) -> None:
        self.pool = pool
        self.url = url
        self.settings = settings
        self.service = service or IngestService(pool, max_readings=settings.max_batch_readings)
        self.max_bytes = settings.max_body_bytes
        group = settings.mqtt_shared_group
        self.subscription = f"$share/{group}/{READINGS_TOPIC}" if group else READINGS_TOPIC
        self.stored_messages = 0
        self.refused_messages = 0  # messages isolated by splitting a failed batch, recorded as rejections
        self.connections = 0  # successful (re)connections
        self.protocol: str | None = None  # "5" or "3.1.1" once the broker answered
        self._client: mqtt.Client | None = None
        self._driver: LoopDriver | None = None
        self._inbox: collections.deque[Incoming] = collections.deque()
        self._wakeup = asyncio.Event()
        self._connected = threading.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._opening: asyncio.Task[None] | None = None
        self._failing: dict[int, float] = {}  # batch -> when it started failing transiently (monotonic)
        self._lost = 0  # messages of batches that failed unexpectedly: unacknowledged until a reconnection
        self._outage = False  # a batch failed to store and no batch has been stored since

    def is_connected(self) -> bool:
        return self._connected.is_set()

    def ready(self) -> bool:
        """Whether the consumer makes progress: connected to the broker, and no batch has been failing for more
        than ``STALLED_AFTER_S`` (the database is unavailable to it, or something else keeps it from storing)."""
        if not self._connected.is_set() or self._lost:
            return False
        now = time.monotonic()
        return all(now - since < STALLED_AFTER_S for since in self._failing.values())

    async def start(self) -> None:
        """Start consuming. The protocol is chosen by the first probe the broker answers, in the background while
        it does not (a consumer started before its broker still speaks MQTT 5 to it). Waits up to 10 s for the
        connection; the consumer keeps trying afterwards."""
        self._task = asyncio.create_task(self._consume(), name="mqtt-consumer")
        self._opening = asyncio.create_task(self._open(), name="mqtt-open")
        await asyncio.to_thread(self._connected.wait, 10)
        if not self._connected.is_set():
            log.warning("MQTT broker not reachable yet; retrying in the background", extra={"url": self._host()})

    def _host(self) -> str:
        return parse_mqtt_url(self.url).host

    async def _open(self) -> None:
        delay = 0.5
        warned = False
        while True:
            version = await asyncio.to_thread(negotiate, self.url)
            if version is not None:
                break
            if not warned:
                log.warning(
                    "MQTT broker does not accept a connection (down, or refusing the credentials); "
                    "the protocol is chosen when it does",
                    extra={"url": self._host()},
                )
                warned = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, NEGOTIATE_MAX_S)
        if self._stopping:
            return
        self._connect_with(version == mqtt.MQTTv5)

    def _connect_with(self, mqtt5: bool) -> None:
        protocol = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
        client = new_client(self.url, self.settings.mqtt_client_id, protocol=protocol, persistent=True, manual_ack=True)
        client.max_inflight_messages_set(0)  # no cap: paho rescans its queue per PUBACK when capped
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        address = parse_mqtt_url(self.url)
        properties = None
        if mqtt5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            properties.ReceiveMaximum = RECEIVE_MAXIMUM
        connect_kwargs: dict[str, Any] = {"keepalive": KEEPALIVE_S, "properties": properties}
        if mqtt5:
            connect_kwargs["clean_start"] = False
        self._driver = LoopDriver(client, address.host, address.port, connect_kwargs)
        self._driver.start()
        self.protocol = "5" if mqtt5 else "3.1.1"
        log.info("MQTT consumer started", extra={"protocol": self.protocol, "topic": self.subscription})

    async def stop(self) -> None:
        """Finish the batch in flight (commit, acknowledge), then disconnect; what is left is redelivered."""
        self._stopping = True
        self._wakeup.set()
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._opening
        if self._task is not None:
            await self._task
        if self._driver is not None:
            await self._driver.stop()  # the acknowledgements and receipts queued go out before DISCONNECT

    # --- paho's callbacks (on the event loop's thread: see LoopDriver) --------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused", extra={"reason": str(reason)})
            return
        client.subscribe(self.subscription, qos=1)  # restored on every (re)connect
        self._lost = 0  # the broker delivers again what was left unacknowledged
        self.connections += 1
        self._connected.set()
        log.info("MQTT connected", extra={"session_present": bool(getattr(flags, "session_present", False))})

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        if not self._stopping:
            log.warning("MQTT disconnected; reconnecting", extra={"reason": str(reason)})

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.append(Incoming(message.mid, message.qos, message.topic, bytes(message.payload)))
        self._wakeup.set()

    # --- the event loop ---------------------------------------------------------------------------------------

    async def _consume(self) -> None:
        """Take what arrived as one batch and store it; up to ``IN_FLIGHT`` batches at once, so that the next
        batch is parsed and validated while the previous one commits. Acknowledgements stay in arrival order
        (MQTT asks for it): a batch confirms only after the one before it did."""
        slots = asyncio.Semaphore(IN_FLIGHT)
        previous: asyncio.Future[None] | None = None
        running: set[asyncio.Task[None]] = set()
        while not self._stopping:
            if not self._inbox:
                self._wakeup.clear()
                if not self._inbox:
                    await self._wakeup.wait()
                continue
            await slots.acquire()
            if self._stopping:
                slots.release()
                break
            batch = self._take_batch()
            confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._process(batch, previous, confirmed, slots), name="mqtt-batch")
            running.add(task)
            task.add_done_callback(running.discard)
            previous = confirmed
        if running:  # graceful stop: the batches in flight commit and are acknowledged; the rest is redelivered
            await asyncio.gather(*running, return_exceptions=True)

    def _take_batch(self) -> list[Incoming]:
        """What arrived, up to ``MAX_BATCH`` messages or ``MAX_BATCH_BYTES`` of payload (at least one message)."""
        inbox = self._inbox
        batch = [inbox.popleft()]
        size = len(batch[0].payload)
        while inbox and len(batch) < MAX_BATCH and size + len(inbox[0].payload) <= MAX_BATCH_BYTES:
            size += len(inbox[0].payload)
            batch.append(inbox.popleft())
        return batch

    async def _process(
        self,
        batch: list[Incoming],
        previous: asyncio.Future[None] | None,
        confirmed: asyncio.Future[None],
        slots: asyncio.Semaphore,
    ) -> None:
        try:
            receipts = await self._store_until_done(batch)
            if previous is not None:
                await previous
            if receipts is not None:
                self._confirm(batch, receipts)
        except Exception:
            # a bug: the batch stays unacknowledged until the next reconnection (the broker delivers it again
            # then); until then the consumer is not ready, so that someone looks
            self._lost += len(batch)
            log.exception("an MQTT batch failed", extra={"messages": len(batch)})
        finally:
            confirmed.set_result(None)
            slots.release()

    async def _store_until_done(self, batch: list[Incoming]) -> MessageReceipts | None:
        """Store the batch: at once (the usual case), or by retrying and splitting it (see the module's
        docstring); None if the consumer stopped meanwhile (nothing acknowledged: redelivered)."""
        try:
            return await self._store(batch)
        except Exception as exc:  # noqa: BLE001 - every failure is handled, by what it says (below)
            failure = exc
        key = id(batch)
        try:
            return await self._store_or_split(batch, key, failure)
        finally:
            self._failing.pop(key, None)
            self._note_recovery()

    async def _store_or_split(self, batch: list[Incoming], key: int, failure: BaseException) -> MessageReceipts | None:
        """``batch`` failed with ``failure``: retry it while the database is unavailable; when the failure is
        about its content, split it and store each half the same way, down to the single message, refused."""
        delay = RETRY_FIRST_S
        suspected = 0
        while True:
            if self._stopping:
                return None
            if not await self._retry_worth(failure, suspected):
                break
            if transient(failure) and (await self._database_answers()):
                # the database is back, but the pool may still hold connections broken by the outage, each of
                # which would fail once more: replace them all, so that only a batch that breaks a fresh
                # connection keeps failing (and is split after SUSPECT_AFTER such failures)
                await self.pool.expire_connections()
                suspected += 1
            self._failing.setdefault(key, time.monotonic())
            self._note_outage(failure, len(batch))
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            try:
                receipts = await self._store(batch)
            except Exception as exc:  # noqa: BLE001 - judged again at the top of the loop
                failure = exc
                continue
            self._failing.pop(key, None)
            return receipts
        self._failing.pop(key, None)
        if len(batch) == 1:
            return await self._refuse(batch[0], failure)
        log.info(
            "splitting an MQTT batch that cannot be stored",
            extra={"messages": len(batch), "error": _error_text(failure)},
        )
        merged: MessageReceipts = {}
        half = len(batch) // 2
        for part in (batch[:half], batch[half:]):
            try:
                stored: MessageReceipts | None = await self._store(part)
            except Exception as exc:  # noqa: BLE001 - the half is retried or split in turn
                stored = await self._store_or_split(part, key, exc)
            if stored is None:
                return None
            merged.update(stored)
        return merged

    async def _retry_worth(self, failure: BaseException, suspected: int) -> bool:
        """Whether a batch that failed with ``failure`` is to be retried as is: the database is unavailable
        (``telemon.db.transient``) and has not answered probes through ``SUSPECT_AFTER`` such failures of this
        batch; or the failure looked like one about the content while the database does not even answer a
        probe (an outage beginning: splitting then would refuse good messages)."""
        if transient(failure):
            return suspected < SUSPECT_AFTER
        return not await self._database_answers()

    async def _database_answers(self) -> bool:
        return await ping(self.pool) is None

    def _note_outage(self, failure: BaseException, messages: int) -> None:
        """Log the first failed attempt of an outage, not every retry of every batch."""
        if not self._outage:
            self._outage = True
            log.warning(
                "storing MQTT messages failed; retrying until the database takes them",
                extra={"error": _error_text(failure), "messages": messages},
            )

    def _note_recovery(self) -> None:
        if self._outage and not self._failing:
            self._outage = False
            log.info("storing MQTT messages again")

    async def _refuse(self, incoming: Incoming, failure: BaseException) -> MessageReceipts | None:
        """Record a message that cannot be stored as a rejection, and give it a rejection receipt. A NUL or a lone
        surrogate in it must not make the record fail too: ``RejectedItem`` escapes its texts, the service the
        device id."""
        device_id = device_of(incoming.topic)
        refused = RejectedItem(
            None,
            f"the message cannot be stored: {_error_text(failure)}",
            incoming.payload[:RAW_LIMIT].decode(errors="replace"),
        )
        reason = refused.reason
        item = Refusal("mqtt", device_id, refused)
        delay = RETRY_FIRST_S
        while not self._stopping:
            try:
                await self.service.receive_all([], [item])
                break
            except Exception as exc:
                if transient(exc) or not await self._database_answers():
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RETRY_MAX_S)
                    continue
                # acknowledged all the same: a message that could not even be recorded must not stop the others
                log.exception("recording a refused MQTT message failed", extra={"device_id": item.device_id})
                break
        else:
            return None
        self.refused_messages += 1
        log.warning(
            "an MQTT message was refused after its batch failed",
            extra={"device_id": item.device_id, "reason": reason, "bytes": len(incoming.payload)},
        )
        if device_id is None:
            return {}
        return {id(incoming): (device_id, Receipt(rejected=[{"index": None, "reason": reason}]))}

    async def _store(self, batch: list[Incoming]) -> MessageReceipts:
        """Decode the batch and hand it to the ingest service, which validates and stores it in one transaction;
        the device and receipt of each message (by ``id``; a message whose topic names no device gets none)."""
        decoded: list[tuple[Incoming, str, Any]] = []
        refused: list[tuple[Incoming, str | None, str]] = []
        for incoming in batch:
            device_id = device_of(incoming.topic)
            if device_id is None:
                refused.append((incoming, None, f"topic {incoming.topic[:100]!r} is not a readings topic"))
                continue
            if len(incoming.payload) > self.max_bytes:
                refused.append(
                    (incoming, device_id, f"payload of {len(incoming.payload)} bytes exceeds {self.max_bytes}")
                )
                continue
            try:
                decoded.append((incoming, device_id, fastjson.loads(incoming.payload)))
            except (ValueError, RecursionError) as exc:
                refused.append((incoming, device_id, f"payload is not JSON: {str(exc)[:200]}"))
        async with self.pool.acquire() as conn:  # one connection for the look-up and the transaction
            known = await devices_by_ids(conn, [d for _, d, _ in decoded]) if decoded else {}
            submissions: list[Submission] = []
            owners: list[Incoming] = []
            for incoming, device_id, payload in decoded:
                device = known.get(device_id)
                if device is None or not device.active:
                    refused.append((incoming, device_id, f"device {device_id} is unknown or disabled"))
                    continue
                submissions.append(Submission(device, "mqtt", payload))
                owners.append(incoming)
            refusals = [
                Refusal("mqtt", device_id, RejectedItem(None, reason, raw_text(incoming.payload)))
                for incoming, device_id, reason in refused
            ]
            answers = await self.service.receive_all(submissions, refusals, conn=conn)
        receipts: MessageReceipts = {
            id(m): (s.device.device_id, a) for m, s, a in zip(owners, submissions, answers, strict=True)
        }
        for incoming, device_id, reason in refused:
            if device_id is not None:
                receipts[id(incoming)] = (device_id, Receipt(rejected=[{"index": None, "reason": reason}]))
        return receipts

    def _confirm(self, batch: list[Incoming], receipts: MessageReceipts) -> None:
        """Committed: the receipts, in the order the messages came, then the acknowledgements."""
        self.stored_messages += len(batch)
        client = self._client
        assert client is not None
        for incoming in batch:
            receipt = receipts.get(id(incoming))
            if receipt is not None:
                device_id, answer = receipt
                with contextlib.suppress(ValueError):  # an id that makes an invalid topic gets no receipt
                    client.publish(receipts_topic(device_id), receipt_json(answer), qos=1)
        for incoming in batch:
            if incoming.qos > 0:
                client.ack(incoming.mid, incoming.qos)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {describe(exc)}"[:300]
