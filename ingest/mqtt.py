"""The MQTT consumer: ``telemon/v1/devices/{device_id}/readings`` in, receipts out.

paho-mqtt runs its network loop in its own thread; its callbacks only hand messages to the event loop
(Home Assistant's pattern). On the loop, messages are micro-batched: everything that arrived is parsed, stored
in one transaction, and only after the commit is each message acknowledged (manual PUBACK) and its receipt
published. A crash before the commit means the broker delivers again; the dedup key makes that harmless.
A bad message is recorded as a rejection and acknowledged; it never stops the consumer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
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
from telemon.mqtt_client import new_client, probe
from telemon.settings import Settings, parse_mqtt_url

log = logging.getLogger(__name__)

TOPIC_PREFIX = "telemon/v1/devices/"
READINGS_TOPIC = TOPIC_PREFIX + "+/readings"
SESSION_EXPIRY_S = 7 * 24 * 3600  # MQTT 5: the broker keeps our session (and queues) for a week
RECEIVE_MAXIMUM = 2000  # MQTT 5: unacknowledged messages the broker may send us, i.e. the largest micro-batch
MAX_BATCH = 2000


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
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: collections.deque[Incoming] = collections.deque()
        self._wakeup = asyncio.Event()
        self._connected = threading.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def is_connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        mqtt5 = await asyncio.to_thread(broker_speaks_mqtt5, self.url)
        protocol = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
        client = new_client(self.url, self.settings.mqtt_client_id, protocol=protocol, persistent=True, manual_ack=True)
        client.max_inflight_messages_set(0)  # no cap: paho rescans its queue per PUBACK when capped
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
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
        client.connect_async(address.host, address.port, **connect_kwargs)
        client.loop_start()
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
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()

    # --- paho's thread: hand over, nothing else ---------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("MQTT connection refused", extra={"reason": str(reason)})
            return
        client.subscribe(self.subscription, qos=1)  # restored on every (re)connect
        self._connected.set()
        log.info("MQTT connected", extra={"session_present": bool(getattr(flags, "session_present", False))})

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self._connected.clear()
        if not self._stopping:
            log.warning("MQTT disconnected; reconnecting", extra={"reason": str(reason)})

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        was_empty = not self._inbox
        self._inbox.append(Incoming(message.mid, message.qos, message.topic, bytes(message.payload)))
        if was_empty and self._loop is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    # --- the event loop ---------------------------------------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            if not self._inbox:
                if self._stopping:
                    return
                self._wakeup.clear()
                if not self._inbox:
                    await self._wakeup.wait()
                continue
            if self._stopping and not self._inbox:
                return
            batch = [self._inbox.popleft() for _ in range(min(len(self._inbox), MAX_BATCH))]
            await self._handle_until_stored(batch)
            if self._stopping:
                return

    async def _handle_until_stored(self, batch: list[Incoming]) -> None:
        delay = 0.5
        while True:
            try:
                await self._handle(batch)
                return
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # nothing was acknowledged: retry the same batch until the database takes it
                log.warning("storing an MQTT batch failed; retrying", extra={"error": str(exc), "messages": len(batch)})
                if self._stopping:
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def _handle(self, batch: list[Incoming]) -> None:
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
                decoded.append((incoming, device_id, json.loads(incoming.payload)))
            except (ValueError, RecursionError) as exc:
                refused.append((incoming, device_id, f"payload is not JSON: {str(exc)[:200]}"))
        known = await devices_by_ids(self.pool, [d for _, d, _ in decoded]) if decoded else {}
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
        answers = await self.service.store(prepared, extra)
        self.stored_messages += len(batch)
        # committed: now the receipts, in the order the messages came, and the acknowledgements
        receipts: dict[int, Answer] = {id(m): a for m, a in zip(owners, answers, strict=True)}
        for incoming, device_id, reason in refused:
            if device_id is not None:
                receipts[id(incoming)] = Answer(rejected=[{"index": None, "reason": reason}])
        client = self._client
        assert client is not None
        for incoming in batch:
            answer = receipts.get(id(incoming))
            if answer is not None:
                self._publish_receipt(incoming.topic, answer)
        for incoming in batch:
            if incoming.qos > 0:
                client.ack(incoming.mid, incoming.qos)

    def _publish_receipt(self, topic: str, answer: Answer) -> None:
        device_id = device_of(topic)
        if device_id is None or self._client is None:
            return
        with contextlib.suppress(ValueError):  # an id that makes an invalid topic gets no receipt
            self._client.publish(receipts_topic(device_id), json.dumps(answer.as_dict()), qos=1)
