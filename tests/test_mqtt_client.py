"""telemon's paho client handles the broker's PUBACKs as paho does: same callback arguments, same message
released, same errors — on every PUBACK shape, those it shortcuts and those it hands to paho; and its bounded
read takes what it is allowed to and leaves the rest in the socket."""

from __future__ import annotations

import inspect
import socket
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket

from telemon.mqtt_client import Client

PUBACK = 0x40

# after the 2-byte message id: nothing (3.1.1, or MQTT 5 Success), a reason code alone, a reason code and an
# empty property list, a reason code with a reason string, a failure (not authorised)
TAILS = [b"", b"\x00", b"\x10", b"\x00\x00", b"\x10\x00", b"\x00\x05\x1f\x00\x02ok", b"\x87", b"\x80"]


def test_paho_still_has_every_private_member_the_client_relies_on() -> None:
    """A paho upgrade that renames or drops one fails here, not in production."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    missing = [name for name in Client.PAHO_PRIVATE if not hasattr(client, name)]
    assert missing == []
    # the overridden method keeps the signature paho calls it with
    assert list(inspect.signature(mqtt.Client._handle_pubackcomp).parameters) == ["self", "cmd"]


def outcome(cls: type[mqtt.Client], protocol: MQTTProtocolVersion, packet: bytes) -> dict[str, Any]:
    """Publish one QoS 1 message (not connected: paho keeps it for delivery), feed ``packet`` as its PUBACK."""
    client = cls(CallbackAPIVersion.VERSION2, protocol=protocol)
    calls: list[tuple[Any, ...]] = []
    client.on_publish = lambda c, userdata, mid, reason, props: calls.append(
        (mid, reason.value, str(reason), reason.is_failure, reason.packetType, props.packetType, props.json())
    )
    info = client.publish("telemon/v1/devices/d/receipts", b"{}", qos=1)
    client._in_packet["command"] = PUBACK
    client._in_packet["packet"] = bytearray(info.mid.to_bytes(2, "big") + packet[2:])
    try:
        result: Any = client._handle_pubackcomp("PUBACK")
    except MalformedPacket:  # paho refuses a malformed packet; so must we
        result = MalformedPacket
    return {
        "result": result,
        "calls": calls,
        "pending": list(client._out_messages),
        "inflight": client._inflight_messages,
    }


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["3.1.1", "5"])
@pytest.mark.parametrize("tail", TAILS, ids=[t.hex() or "id-only" for t in TAILS])
def test_puback_handled_as_paho_does(protocol: MQTTProtocolVersion, tail: bytes) -> None:
    packet = b"\x00\x00" + tail
    ours, pahos = outcome(Client, protocol, packet), outcome(mqtt.Client, protocol, packet)
    assert ours == pahos
    if protocol == mqtt.MQTTv5 or not tail:
        assert ours["calls"] and ours["pending"] == []  # the message was released


def test_puback_for_an_unknown_message_changes_nothing() -> None:
    client = Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    calls: list[int] = []
    client.on_publish = lambda c, userdata, mid, reason, props: calls.append(mid)
    info = client.publish("telemon/v1/devices/d/receipts", b"{}", qos=1)
    client._in_packet["command"] = PUBACK
    client._in_packet["packet"] = bytearray((info.mid + 1).to_bytes(2, "big"))
    assert client._handle_pubackcomp("PUBACK") == mqtt.MQTT_ERR_SUCCESS
    assert calls == [] and list(client._out_messages) == [info.mid]


def test_read_packets_reads_at_most_the_limit_and_keeps_the_rest() -> None:
    """The event loop's read takes ``limit`` packets a turn; the rest waits in the socket, nothing is lost."""
    client = Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    received: list[bytes] = []
    client.on_message = lambda c, userdata, message: received.append(message.payload)
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    topic = b"telemon/v1/devices/d/readings"
    for n in range(25):  # QoS 0 PUBLISH packets: header, remaining length, topic, payload
        body = len(topic).to_bytes(2, "big") + topic + b"%d" % n
        broker.sendall(bytes([0x30, len(body)]) + body)
    try:
        assert client.read_packets(10) == mqtt.MQTT_ERR_SUCCESS and len(received) == 10
        assert client.read_packets(10) == mqtt.MQTT_ERR_SUCCESS and len(received) == 20
        # 5 left, then nothing to read: said so, so that a reader that drains the socket knows when to stop
        assert client.read_packets(10) == mqtt.MQTT_ERR_AGAIN and len(received) == 25
        assert received == [b"%d" % n for n in range(25)]
    finally:
        client._sock = None
        ours.close()
        broker.close()


def _reset_scenario() -> float:
    """Seconds the driver took to notice a reset connection, on uvloop, against a fake broker."""
    import asyncio
    import time

    import uvloop

    from telemon.mqtt_client import LoopDriver

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    host, port = server.getsockname()

    async def scenario() -> float:
        client = Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        disconnected = asyncio.Event()
        client.on_disconnect = lambda c, userdata, flags, reason, props: disconnected.set()
        received: list[bytes] = []
        client.on_message = lambda c, userdata, message: received.append(message.payload)
        driver = LoopDriver(client, host, port, {"keepalive": RESET_KEEPALIVE})
        driver.start()
        loop = asyncio.get_running_loop()
        broker, _ = await loop.run_in_executor(None, server.accept)
        try:
            broker.recv(1024)  # CONNECT
            broker.sendall(b"\x20\x02\x00\x00")  # CONNACK
            while not client.is_connected():
                await asyncio.sleep(0.01)
            client.publish("telemon/v1/devices/d/receipts", b"{}", qos=0)  # left unread: closing resets
            await asyncio.sleep(0.1)
            topic = b"telemon/v1/devices/d/readings"
            body = len(topic).to_bytes(2, "big") + topic + b"x"
            broker.sendall((bytes([0x30, len(body)]) + body) * (LoopDriver.READ_BURST * 3))
            broker.close()
            reset_at = time.monotonic()
            await asyncio.wait_for(disconnected.wait(), RESET_KEEPALIVE)
            return time.monotonic() - reset_at
        finally:
            await driver.stop()

    try:
        return uvloop.run(scenario())
    finally:
        server.close()


RESET_KEEPALIVE = 30


def test_a_connection_reset_is_noticed_within_seconds_on_uvloop() -> None:
    """A broker that exits with unread data resets the connection. uvloop then closes its poll handle without
    calling the reader again, so the reset was noticed only by keep-alive (45 s) while acknowledgements were
    lost. ``LoopDriver`` reads the socket every second too: the client learns within seconds, and reconnects.

    The scenario runs in a fresh interpreter, as the consumer does in its own process: uvloop started inside
    the test session, after other tests' event loops, could miss its executor's wake-ups and hang."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from tests.test_mqtt_client import _reset_scenario; print(_reset_scenario())"],
        capture_output=True,
        text=True,
        timeout=2 * RESET_KEEPALIVE,
        check=True,
    )
    elapsed = float(done.stdout.strip().splitlines()[-1])
    assert elapsed < RESET_KEEPALIVE / 6  # keep-alive would have taken 1.5 x keepalive


async def test_a_broker_that_accepts_but_never_answers_is_connected_to_again() -> None:
    """A broker mid-shutdown (or loading a large persistence file) may accept the TCP connection and send no
    CONNACK. Waiting for keep-alive would leave the consumer unconnected for the whole interval; the driver
    connects again after ``CONNACK_TIMEOUT_S`` and takes the answer of the broker that does answer."""
    import asyncio
    import time

    from telemon.mqtt_client import LoopDriver

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    host, port = server.getsockname()
    client = Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    driver = LoopDriver(client, host, port, {"keepalive": 60})
    loop = asyncio.get_running_loop()

    def received(sock: socket.socket) -> asyncio.Future[bytes]:
        return loop.run_in_executor(None, sock.recv, 1024)

    driver.start()
    try:
        silent, _ = await loop.run_in_executor(None, server.accept)
        silent_at = time.monotonic()
        assert (await received(silent))[0] == 0x10  # CONNECT, left unanswered
        answering, _ = await asyncio.wait_for(loop.run_in_executor(None, server.accept), 30)
        again_after = time.monotonic() - silent_at
        assert (await received(answering))[0] == 0x10
        answering.sendall(b"\x20\x02\x00\x00")  # CONNACK
        deadline = time.monotonic() + 10
        while not client.is_connected():
            assert time.monotonic() < deadline, "the CONNACK of the second connection was not taken"
            await asyncio.sleep(0.05)
        assert LoopDriver.CONNACK_TIMEOUT_S <= again_after < 60 / 2  # keep-alive would have taken 60 s and more
        assert await received(silent) == b""  # the first connection was closed, not left open
    finally:
        await driver.stop(timeout=1)
        server.close()
