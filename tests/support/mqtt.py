"""MQTT helpers for tests: a consumer running in-process, a publisher, and a receipts listener."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from telemon.app.services import Services, open_services
from telemon.mqtt_client import new_client
from telemon.settings import Settings, parse_mqtt_url
from telemon.topics import readings_topic, receipts_topic
from tests.support.mosquitto import HOST, MOSQUITTO


@contextlib.contextmanager
def mosquitto_at(port: int, config: str, directory: Path, *, timeout: float = 10.0) -> Iterator[str]:
    """A private Mosquitto on a port chosen by the caller, for tests that need the broker to come (back) on the
    same address: started after its clients, or restarted (``start_mosquitto`` picks a new port each time).
    Yields its URL; leaving the block terminates it (its persistence file, if any, is written then)."""
    directory.mkdir(parents=True, exist_ok=True)
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "\nuser " not in f"\n{config}":
        config = config.rstrip("\n") + "\nuser root\n"  # see tests/support/mosquitto.py
    conf = directory / "mosquitto.conf"
    conf.write_text(f"{config.rstrip()}\nlistener {port} {HOST}\n", encoding="utf-8")
    log_path = directory / "mosquitto.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [MOSQUITTO, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            assert process.poll() is None, f"mosquitto exited: {log_path.read_text(errors='replace')}"
            try:
                with socket.create_connection((HOST, port), timeout=0.2):
                    break
            except OSError:
                assert time.monotonic() < deadline, f"mosquitto not up: {log_path.read_text(errors='replace')}"
                time.sleep(0.02)
        yield f"mqtt://{HOST}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


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


def recent(minutes: int = 30) -> str:
    """An ISO 8601 instant ``minutes`` ago."""
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).isoformat()


def reading(**extra: Any) -> dict[str, Any]:
    """A valid reading of 30 minutes ago; ``extra`` adds or replaces fields."""
    return {"measured_at": recent(), "value": 95, "unit": "mg/dL", **extra}


# Messages that once stopped MQTT ingest (PostgreSQL refuses a NUL or a lone surrogate in text; the others made
# parsing raise): each must be refused with a receipt and recorded, and never hold back the messages after it.
POISONS: dict[str, bytes] = {
    "nul-in-note": json.dumps({"readings": [reading(note="before\u0000after")]}).encode(),
    "nul-in-id": json.dumps({"readings": [reading(id="r-\u0000-1")]}).encode(),
    "surrogate-payload": b'"\\ud800"',
    "surrogate-item": b'{"readings": ["\\ud800"]}',
    "surrogate-note": json.dumps({"readings": [reading(note="\ud800")]}).encode(),
    "400-digit-value": b'{"readings": [{"measured_at": "%s", "value": %s, "unit": "mg/dL"}]}'
    % (recent().encode(), b"9" * 400),
    "year-1-clock-year-9999-reading": json.dumps(
        {"device_time": "0001-01-01T00:00:00Z", "readings": [reading(measured_at="9999-12-31T23:59:59Z")]}
    ).encode(),
    "nested-1000-deep": b'{"readings": [{"measured_at": "%s", "unit": "mg/dL", "value": %s%s}]}'
    % (recent().encode(), b"[" * 1000, b"]" * 1000),
}
