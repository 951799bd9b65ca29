"""The MQTT consumer: ``telemon/v1/devices/{device_id}/readings`` in, receipts out.

The paho-mqtt client runs on the event loop (``telemon.mqtt_client.LoopDriver``): its callbacks queue the
messages that arrive while the previous batch is being stored. Messages are micro-batched: everything that arrived
is parsed, stored in one transaction, and only after the commit is each message acknowledged (manual PUBACK) and
its receipt published. A crash before the commit means the broker delivers again; the dedup key makes that harmless.
A bad message is recorded as a rejection and acknowledged; it never stops the consumer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

import asyncpg
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.readings import Prepared, RejectedItem, raw_text
from ingest.service import Answer, IngestService, RejectedItemOf, devices_by_ids
from telemon import fastjson
from telemon.mqtt_client import LoopDriver, new_client, probe
from telemon.settings import Settings, parse_mqtt_url

log = logging.getLogger(__name__)

TOPIC_PREFIX = "telemon/v1/devices/"
READINGS_TOPIC = TOPIC_PREFIX + "+/readings"
SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: the broker keeps our session (and queues) for a week
RECEIVE_MAXIMUM = 2000  # MQTT 5: unacknowledged messages the broker may send us, i.e. the largest micro-batch
MAX_BATCH = 2000
MAX_BATCH_BYTES = 512 * 1024  # payload per batch: a batch of big syncs commits (and is confirmed) sooner
IN_FLIGHT = 2  # batches stored at once


def readings_topic(device_id: str) -> str:
    return f"{TOPIC_PREFIX}{device_id}/readings"


def receipts_topic(device_id: str) -> str:
    return f"{TOPIC_PREFIX}{device_id}/receipts"


def device_of(topic: str) -> str | None:
    """The device id in ``telemon/v1/devices/{id}/readings``, or None for any other topic."""
    if not topic.startswith(TOPIC_PREFIX) or not topic.endswith("/readings"):
        return None
    device_id = topic[len(TOPIC_PREFIX) : -len("/readings")]
    return device_id if device_id and "/" not in device_id else None


@dataclass(frozen=True)
class Incoming:
    mid: int
    qos: int
    topic: str
    payload: bytes


def broker_speaks_mqtt5(url: str, timeout: float = 3.0) -> bool:
    """Whether the broker accepts an MQTT 5 connection (Mosquitto does; amqtt speaks 3.1.1 only)."""
    return probe(url, timeout, protocol=mqtt.MQTTv5)


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
        self.connections = 0  # successful (re)connections
        self._client: mqtt.Client | None = None
        self._driver: LoopDriver | None = None
        self._inbox: collections.deque[Incoming] = collections.deque()
        self._wakeup = asyncio.Event()
        self._connected = threading.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def is_connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        mqtt5 = await asyncio.to_thread(broker_speaks_mqtt5, self.url)
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
        connect_kwargs: dict[str, Any] = {"keepalive": 30, "properties": properties}
        if mqtt5:
            connect_kwargs["clean_start"] = False
        self._driver = LoopDriver(client, address.host, address.port, connect_kwargs)
        self._driver.start()
        self._task = asyncio.create_task(self._consume(), name="mqtt-consumer")
        await asyncio.to_thread(self._connected.wait, 10)
        if not self._connected.is_set():
            log.warning("MQTT broker not reachable yet; retrying in the background", extra={"url": address.host})
        log.info("MQTT consumer started", extra={"protocol": "5" if mqtt5 else "3.1.1", "topic": self.subscription})

    async def stop(self) -> None:
        """Finish the batch in flight (commit, acknowledge), then disconnect; what is left is redelivered."""
        self._stopping = True
        self._wakeup.set()
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
        except Exception:  # not acknowledged: the broker delivers the batch again after a reconnect
            log.exception("an MQTT batch failed", extra={"messages": len(batch)})
        finally:
            confirmed.set_result(None)
            slots.release()

    async def _store_until_done(self, batch: list[Incoming]) -> dict[int, tuple[str, Answer]] | None:
        """Store the batch, retrying until the database takes it; None if the consumer stopped meanwhile."""
        delay = 0.5
        while True:
            try:
                return await self._store(batch)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # nothing was acknowledged: retry the same batch until the database takes it
                log.warning("storing an MQTT batch failed; retrying", extra={"error": str(exc), "messages": len(batch)})
                if self._stopping:
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def _store(self, batch: list[Incoming]) -> dict[int, tuple[str, Answer]]:
        """Parse, validate and store the batch in one transaction; the device and receipt of each message (by
        ``id``; a message whose topic names no device gets none)."""
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
            prepared: list[Prepared] = []
            owners: list[Incoming] = []
            for incoming, device_id, payload in decoded:
                device = known.get(device_id)
                if device is None or not device.active:
                    refused.append((incoming, device_id, f"device {device_id} is unknown or disabled"))
                    continue
                prepared.append(self.service.prepare(payload, device, "mqtt"))
                owners.append(incoming)
            extra = [
                RejectedItemOf("mqtt", device_id, RejectedItem(None, reason, raw_text(incoming.payload)))
                for incoming, device_id, reason in refused
            ]
            answers = await self.service.store(prepared, extra, conn=conn)
        receipts: dict[int, tuple[str, Answer]] = {
            id(m): (p.device.device_id, a) for m, p, a in zip(owners, prepared, answers, strict=True)
        }
        for incoming, device_id, reason in refused:
            if device_id is not None:
                receipts[id(incoming)] = (device_id, Answer(rejected=[{"index": None, "reason": reason}]))
        return receipts

    def _confirm(self, batch: list[Incoming], receipts: dict[int, tuple[str, Answer]]) -> None:
        """Committed: the receipts, in the order the messages came, then the acknowledgements."""
        self.stored_messages += len(batch)
        client = self._client
        assert client is not None
        for incoming in batch:
            receipt = receipts.get(id(incoming))
            if receipt is not None:
                device_id, answer = receipt
                with contextlib.suppress(ValueError):  # an id that makes an invalid topic gets no receipt
                    client.publish(receipts_topic(device_id), fastjson.dumps(answer.as_dict()), qos=1)
        for incoming in batch:
            if incoming.qos > 0:
                client.ack(incoming.mid, incoming.qos)
