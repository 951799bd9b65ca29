"""The shipped Mosquitto configuration and ACL, enforced by a real broker.

A private Mosquitto runs ``deploy/mosquitto/mosquitto.conf`` (its paths rewritten into the test's directory)
with the real ``deploy/mosquitto/acl`` and a password file made by ``telemon.broker_passwords``. Absence of a
message is checked without sleeping: a message that must not arrive is sent, and acknowledged by the broker,
before an allowed "sentinel" message to the same subscriber; once the sentinel is in, the other would have been.
"""

from __future__ import annotations

import base64
import json
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from telemon.broker_passwords import mosquitto_password_hash, render_password_file
from tests.support.mosquitto import MosquittoError, shipped_config, start_mosquitto

WAIT = 5.0  # seconds; every wait polls and returns as soon as its condition holds

SERVICE_USER, SERVICE_PASSWORD = "telemon", "service-secret"
TOKENS = {"dev-a": "token-of-dev-a", "dev-b": "token-of-dev-b"}
READINGS_ALL = "telemon/v1/devices/+/readings"
SHARED_READINGS_ALL = f"$share/telemon/{READINGS_ALL}"
RECEIPTS_ALL = "telemon/v1/devices/+/receipts"
T = TypeVar("T")
PROTOCOLS, PROTOCOL_IDS = [mqtt.MQTTv311, mqtt.MQTTv5], ["mqtt311", "mqtt5"]


def readings(device: str) -> str:
    return f"telemon/v1/devices/{device}/readings"


def receipts(device: str) -> str:
    return f"telemon/v1/devices/{device}/receipts"


def reading_payload(value: float) -> bytes:
    body = {
        "readings": [
            {
                "id": str(uuid.uuid4()),
                "measured_at": "2024-05-02T07:05:00+02:00",
                "value": value,
                "unit": "mmol/L",
                "kind": "smbg",
                "context": "fasting",
            }
        ]
    }
    return json.dumps(body).encode()


def provisioned_config(tmp_path: Path) -> str:
    """The shipped configuration with a password file for the service account and the two test devices."""
    passwd = tmp_path / "passwd"
    passwd.write_text(
        render_password_file(
            [(SERVICE_USER, mosquitto_password_hash(SERVICE_PASSWORD))]
            + [(device, mosquitto_password_hash(token)) for device, token in TOKENS.items()]
        )
    )
    return shipped_config(tmp_path, passwd)


@dataclass
class Client:
    """A paho client run on its own network thread, with blocking helpers bounded by ``WAIT``."""

    port: int
    username: str | None
    password: str | None = None
    client_id: str = ""
    protocol: MQTTProtocolVersion = mqtt.MQTTv5
    clean_session: bool = True
    messages: queue.Queue[tuple[str, bytes]] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        self.client_id = self.client_id or f"test-{uuid.uuid4().hex[:12]}"
        # No automatic reconnection: a connection the broker closes must show, not be silently reopened.
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=self.protocol,
            clean_session=None if self.protocol == mqtt.MQTTv5 else self.clean_session,
            reconnect_on_failure=False,
        )
        if self.username is not None:
            self.paho.username_pw_set(self.username, self.password)
        self._connack: queue.Queue[ReasonCode] = queue.Queue()
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._pubacks: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()
        self.paho.on_connect = lambda _c, _u, _f, reason, _p: self._connack.put(reason)
        self.paho.on_message = lambda _c, _u, msg: self.messages.put((msg.topic, bytes(msg.payload)))
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_publish = self._on_publish

    def _on_subscribe(self, _c: object, _u: object, mid: int, reasons: list[ReasonCode], _p: object) -> None:
        with self._lock:
            self._subacks[mid] = reasons

    def _on_publish(self, _c: object, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        with self._lock:
            self._pubacks[mid] = reason

    def connect(self) -> ReasonCode:
        """Connect and return the broker's CONNACK reason; the network loop is stopped if it was refused."""
        if self.protocol == mqtt.MQTTv5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 0 if self.clean_session else 3600
            self.paho.connect(
                "127.0.0.1", self.port, keepalive=30, clean_start=self.clean_session, properties=properties
            )
        else:
            self.paho.connect("127.0.0.1", self.port, keepalive=30)
        self.paho.loop_start()
        reason = self._connack.get(timeout=WAIT)
        if reason.is_failure:
            self.close()
        return reason

    def subscribe(self, topic: str) -> ReasonCode:
        result, mid = self.paho.subscribe(topic, qos=1)
        assert result == mqtt.MQTT_ERR_SUCCESS and mid is not None
        return _poll(lambda: self._subacks.get(mid), f"SUBACK for {topic}")[0]

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        """Publish at QoS 1 and return the PUBACK reason (MQTT 5 carries "Not authorized"; 3.1.1 cannot)."""
        info = self.paho.publish(topic, payload, qos=1)
        return _poll(lambda: self._pubacks.get(info.mid), f"PUBACK for {topic}")

    def receive_until(self, sentinel: bytes) -> list[tuple[str, bytes]]:
        """Every message received up to and including the one whose payload is ``sentinel``."""
        received: list[tuple[str, bytes]] = []
        deadline = time.monotonic() + WAIT
        while not received or received[-1][1] != sentinel:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.username} never received {sentinel!r}; got {received}")
            try:
                received.append(self.messages.get(timeout=remaining))
            except queue.Empty:
                continue
        return received

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def _poll(get: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + WAIT
    while (value := get()) is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {WAIT} s")
        time.sleep(0.005)
    return value


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    with start_mosquitto(provisioned_config(tmp_path), tmp_path) as (_host, broker_port):
        yield broker_port
    print((tmp_path / "mosquitto.log").read_text())  # pytest shows it when the test failed


@pytest.fixture
def connect(port: int) -> Iterator[Callable[..., Client]]:
    """``connect(username, password, **options)``: a connected client, closed after the test."""
    clients: list[Client] = []

    def make(username: str | None, password: str | None = None, **options: object) -> Client:
        client = Client(port, username, password, **options)  # type: ignore[arg-type]
        clients.append(client)
        reason = client.connect()
        assert not reason.is_failure, f"{username} was refused: {reason}"
        return client

    yield make
    for client in clients:
        client.close()


# Authentication ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTOCOL_IDS)
@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("dev-a", "token-of-dev-b"),
        ("dev-a", ""),
        (SERVICE_USER, "token-of-dev-a"),
        ("dev-c", "token-of-dev-a"),
        (None, None),
    ],
    ids=["wrong-token", "empty-token", "service-with-device-token", "unknown-device", "anonymous"],
)
def test_bad_credentials_are_refused(
    port: int, username: str | None, password: str | None, protocol: MQTTProtocolVersion
) -> None:
    client = Client(port, username, password, protocol=protocol)
    reason = client.connect()
    assert reason.is_failure
    assert reason == "Not authorized"


def test_the_provisioned_credentials_are_accepted(port: int) -> None:
    for username, password in [(SERVICE_USER, SERVICE_PASSWORD), *TOKENS.items()]:
        client = Client(port, username, password)
        reason = client.connect()
        client.close()
        assert reason == "Success", f"{username}: {reason}"


# Readings ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("subscription", [READINGS_ALL, SHARED_READINGS_ALL], ids=["plain", "shared"])
def test_a_device_reading_reaches_the_service(connect: Callable[..., Client], subscription: str) -> None:
    service = connect(SERVICE_USER, SERVICE_PASSWORD)
    assert service.subscribe(subscription) == "Granted QoS 1"
    device = connect("dev-a", TOKENS["dev-a"])
    payload = reading_payload(5.1)

    assert device.publish(readings("dev-a"), payload) == "Success"

    assert service.receive_until(payload) == [(readings("dev-a"), payload)]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTOCOL_IDS)
def test_a_device_cannot_publish_readings_for_another_device(
    connect: Callable[..., Client], protocol: MQTTProtocolVersion
) -> None:
    service = connect(SERVICE_USER, SERVICE_PASSWORD)
    service.subscribe(READINGS_ALL)
    dev_a = connect("dev-a", TOKENS["dev-a"], protocol=protocol)
    dev_b = connect("dev-b", TOKENS["dev-b"])
    forged, sentinel = reading_payload(9.9), reading_payload(6.0)

    forged_ack = dev_a.publish(readings("dev-b"), forged)  # acknowledged: the broker has routed or dropped it
    assert dev_b.publish(readings("dev-b"), sentinel) == "Success"

    assert service.receive_until(sentinel) == [(readings("dev-b"), sentinel)]
    if protocol == mqtt.MQTTv5:
        assert forged_ack == "Not authorized"


# Receipts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTOCOL_IDS)
def test_a_device_receives_its_own_receipts_and_nothing_else(
    connect: Callable[..., Client], protocol: MQTTProtocolVersion
) -> None:
    dev_a = connect("dev-a", TOKENS["dev-a"], protocol=protocol)
    for subscription in (receipts("dev-a"), receipts("dev-b"), RECEIPTS_ALL, READINGS_ALL, readings("dev-b"), "#"):
        dev_a.subscribe(subscription)  # Mosquitto 2.0 grants them all; what it delivers is checked below
    dev_b = connect("dev-b", TOKENS["dev-b"])
    dev_b.subscribe(receipts("dev-b"))
    service = connect(SERVICE_USER, SERVICE_PASSWORD)
    service.subscribe(READINGS_ALL)
    for_b = b'{"accepted": 2, "duplicates": 0, "rejected": []}'
    for_a = b'{"accepted": 1, "duplicates": 1, "rejected": []}'
    reading_b, reading_a = reading_payload(6.2), reading_payload(6.3)

    assert dev_b.publish(readings("dev-b"), reading_b) == "Success"
    assert dev_a.publish(readings("dev-a"), reading_a) == "Success"
    assert service.receive_until(reading_a) == [(readings("dev-b"), reading_b), (readings("dev-a"), reading_a)]
    assert service.publish(receipts("dev-b"), for_b) == "Success"
    assert dev_b.receive_until(for_b) == [(receipts("dev-b"), for_b)]
    assert service.publish(receipts("dev-a"), for_a) == "Success"

    assert dev_a.receive_until(for_a) == [(receipts("dev-a"), for_a)]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=PROTOCOL_IDS)
@pytest.mark.parametrize("target", ["dev-a", "dev-b"])
def test_a_device_cannot_forge_receipts(
    connect: Callable[..., Client], protocol: MQTTProtocolVersion, target: str
) -> None:
    listener = connect(target, TOKENS[target])
    listener.subscribe(receipts(target))
    forger = connect("dev-a", TOKENS["dev-a"], protocol=protocol)
    service = connect(SERVICE_USER, SERVICE_PASSWORD)
    forged = b'{"accepted": 99, "duplicates": 0, "rejected": []}'
    sentinel = b'{"accepted": 1, "duplicates": 0, "rejected": []}'

    forged_ack = forger.publish(receipts(target), forged)
    assert service.publish(receipts(target), sentinel) == "Success"

    assert listener.receive_until(sentinel) == [(receipts(target), sentinel)]
    if protocol == mqtt.MQTTv5:
        assert forged_ack == "Not authorized"


@pytest.mark.parametrize("topic", ["telemon/v1/devices/dev-a", "telemon/v1/devices/dev-a/readings/x", "other"])
def test_a_device_can_publish_nowhere_else(connect: Callable[..., Client], topic: str) -> None:
    device = connect("dev-a", TOKENS["dev-a"])  # MQTT 5: the PUBACK says whether the broker took the message

    assert device.publish(topic, b"{}") == "Not authorized"


# "Nothing lost": persistence, and no queue-count limit --------------------------------------------------------------------


def test_an_offline_consumer_session_keeps_more_than_mosquittos_default_queue(
    connect: Callable[..., Client], port: int
) -> None:
    consumer_id = "telemon-consumer-offline-test"
    consumer = connect(
        SERVICE_USER, SERVICE_PASSWORD, client_id=consumer_id, protocol=mqtt.MQTTv311, clean_session=False
    )
    consumer.subscribe(READINGS_ALL)
    consumer.close()
    device = connect("dev-a", TOKENS["dev-a"])
    count = 2500  # Mosquitto's default max_queued_messages 1000 would drop about 1500 of these
    infos = [device.paho.publish(readings("dev-a"), f"{i}".encode(), qos=1) for i in range(count)]
    for info in infos:
        info.wait_for_publish(timeout=WAIT)

    back = connect(SERVICE_USER, SERVICE_PASSWORD, client_id=consumer_id, protocol=mqtt.MQTTv311, clean_session=False)

    received = back.receive_until(f"{count - 1}".encode())
    assert sorted(int(payload) for _topic, payload in received) == list(range(count))


# The password file and the test broker itself ----------------------------------------------------------


def test_the_hash_is_the_one_mosquitto_passwd_writes(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(path), "dev-a", "token-of-dev-a"], check=True)
    username, reference = path.read_text().strip().split(":", 1)
    _empty, kind, iterations, salt, _digest = reference.split("$")

    ours = mosquitto_password_hash("token-of-dev-a", iterations=int(iterations), salt=base64.b64decode(salt))

    assert (username, kind) == ("dev-a", "7")
    assert ours == reference
    assert render_password_file([("dev-a", ours)]) == f"dev-a:{reference}\n"


@pytest.mark.parametrize("username", ["", "dev:a", "dev/a", "dev+a", "dev#a", "dev\na"])
def test_the_password_file_refuses_usernames_mosquitto_would_misread(username: str) -> None:
    with pytest.raises(ValueError, match="cannot appear"):
        render_password_file([(username, mosquitto_password_hash("x"))])


def test_the_password_file_refuses_duplicates_and_plain_passwords() -> None:
    with pytest.raises(ValueError, match="twice"):
        render_password_file([("dev-a", mosquitto_password_hash("x")), ("dev-a", mosquitto_password_hash("y"))])
    with pytest.raises(ValueError, match="not a Mosquitto hash"):
        render_password_file([("dev-a", "plain-token")])


def test_a_broker_that_cannot_start_reports_its_log(tmp_path: Path) -> None:
    config = f"allow_anonymous false\npassword_file {tmp_path / 'missing'}\n"

    with pytest.raises(MosquittoError, match="Unable to open pwfile"), start_mosquitto(config, tmp_path, timeout=5):
        pass
