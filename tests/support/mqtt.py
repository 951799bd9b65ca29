"""MQTT helpers for tests: a consumer running in-process, a publisher, and a receipts listener."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import paho.mqtt.client as mqtt

from ingest.mqtt import readings_topic, receipts_topic
from telemon.mqtt_client import new_client
from telemon.services import Services, open_services
from telemon.settings import Settings, parse_mqtt_url


def forget_session(url: str, client_id: str) -> None:
    """Connect with a clean session under ``client_id`` so the broker drops what it kept for it."""
    address = parse_mqtt_url(url)
    client = new_client(url, client_id)
    client.connect(address.host, address.port)
    client.loop_start()
    time.sleep(0.2)
    client.disconnect()
    client.loop_stop()


@contextlib.asynccontextmanager
async def running_consumer(settings: Settings, mqtt_url: str, client_id: str | None = None) -> AsyncIterator[Services]:
    client_id = client_id or f"test-consumer-{uuid.uuid4().hex[:8]}"
    consumer_settings = dataclasses.replace(settings, roles=("mqtt",), mqtt_url=mqtt_url, mqtt_client_id=client_id)
    try:
        async with open_services(consumer_settings) as services:
            yield services
    finally:
        forget_session(mqtt_url, client_id)


@contextlib.contextmanager
def publisher(url: str, username: str | None = None, password: str | None = None) -> Iterator[mqtt.Client]:
    address = parse_mqtt_url(url)
    client = new_client(url, f"test-pub-{uuid.uuid4().hex[:8]}", username=username, password=password)
    client.max_inflight_messages_set(100)
    client.connect(address.host, address.port)
    client.loop_start()
    try:
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def publish(client: mqtt.Client, device_id: str, payload: Any) -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    info = client.publish(readings_topic(device_id), data, qos=1)
    info.wait_for_publish(10)


class Receipts:
    """Collects the receipts published for some devices."""

    def __init__(self, url: str, device_ids: list[str]) -> None:
        self.url = url
        self.device_ids = device_ids
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        address = parse_mqtt_url(url)
        self.client = new_client(url, f"test-receipts-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self._ready.set()
        self.client.connect(address.host, address.port)
        self.client.subscribe([(receipts_topic(d), 1) for d in device_ids])
        self.client.loop_start()
        assert self._ready.wait(10), "receipts subscription not acknowledged"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append(json.loads(message.payload))

    async def wait_for(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """Waits without blocking the event loop (the consumer under test runs on it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{len(self.received)} receipts of {count} within {timeout} s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Receipts:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
