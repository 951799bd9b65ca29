"""telemon's paho client handles the broker's PUBACKs as paho does: same callback arguments, same message
released, same errors — on every PUBACK shape, those it shortcuts and those it hands to paho; and its bounded
read takes what it is allowed to and leaves the rest in the socket."""

from __future__ import annotations

import contextlib
import inspect
import socket
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion, _ConnectionState
from paho.mqtt.exception import MalformedPacket

from telemon.mqtt_client import _PUBLISH_NO_PROPERTIES, Client

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


TOPIC = b"telemon/v1/devices/d/readings"
# PUBLISH packets (first byte, then what follows the remaining length): MQTT 5 QoS 1 without properties (the fast
# path), with dup and retain, an empty payload; with a property; QoS 0 and 2; an empty topic; truncated ones
PUBLISHES = [
    (0x32, len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x00\x07\x00" + b'{"readings":[]}'),
    (0x3B, len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x01\x00\x00" + b"x"),
    (0x32, len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x00\x09\x00"),
    (0x32, len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x00\x07\x02\x01\x01" + b"{}"),
    (0x30, len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x00" + b"{}"),
    (0x34, len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x00\x07\x00" + b"{}"),
    (0x32, b"\x00\x00\x00\x07\x00{}"),
    (0x32, len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x00\x07"),
    (0x32, len(TOPIC).to_bytes(2, "big") + TOPIC[:5]),
    (0x32, b"\x00"),
]


def received(cls: type[mqtt.Client], protocol: MQTTProtocolVersion, header: int, body: bytes, manual: bool) -> Any:
    """Feed one PUBLISH packet to a client; what its ``on_message`` saw and what it queued to send."""
    client = cls(CallbackAPIVersion.VERSION2, protocol=protocol, manual_ack=manual)
    seen: list[tuple[Any, ...]] = []
    client.on_message = lambda c, userdata, m: seen.append(
        (m.mid, m.topic, m.payload, type(m.payload), m.qos, m.dup, m.retain, m.properties and m.properties.json())  # type: ignore[no-untyped-call]
    )
    client._in_packet["command"] = header
    client._in_packet["packet"] = bytearray(body)
    try:
        result: Any = client._handle_publish()
    except MalformedPacket:
        result = MalformedPacket
    return result, seen, [bytes(p["packet"]) for p in client._out_packet]


@pytest.mark.parametrize("protocol", [mqtt.MQTTv311, mqtt.MQTTv5], ids=["3.1.1", "5"])
@pytest.mark.parametrize("manual", [True, False], ids=["manual-ack", "auto-ack"])
@pytest.mark.parametrize(("header", "body"), PUBLISHES, ids=[f"{h:x}-{b[-6:].hex()}" for h, b in PUBLISHES])
def test_publish_handled_as_paho_does(protocol: MQTTProtocolVersion, manual: bool, header: int, body: bytes) -> None:
    ours = received(Client, protocol, header, body, manual)
    assert ours == received(mqtt.Client, protocol, header, body, manual)
    if (protocol, header, body) == (mqtt.MQTTv5, *PUBLISHES[0]):
        assert ours[1] == [(7, TOPIC.decode(), b'{"readings":[]}', bytes, 1, False, False, {})]
        fast = Client(CallbackAPIVersion.VERSION2, protocol=protocol, manual_ack=True)
        messages: list[mqtt.MQTTMessage] = []
        fast.on_message = lambda c, userdata, m: messages.append(m)
        fast._in_packet["command"], fast._in_packet["packet"] = header, bytearray(body)
        fast._handle_publish()
        assert messages[0].properties is _PUBLISH_NO_PROPERTIES  # the fast path was taken


def test_event_loop_writes_go_out_together_and_in_order() -> None:
    """Queued packets go out in one system call, in the order they were queued, a partial write resumed where it
    stopped; a QoS 0 PUBLISH (paho calls on_publish once it is written) keeps paho's own path."""
    client = Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    client.event_loop_io = True
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client._sock = ours
    client._state = _ConnectionState.MQTT_CS_CONNECTED
    client.on_socket_register_write = lambda c, userdata, sock: None  # queued, written by loop_write (as a loop)
    published: list[int] = []
    client.on_publish = lambda c, userdata, mid, reason, props: published.append(mid)
    expected = bytearray()
    try:
        for n in range(300):
            client.publish("telemon/v1/devices/d/receipts", b"r%d" % n + b"." * 200, qos=1)
            client.ack(n + 1, 1)
        client.publish("telemon/v1/devices/d/receipts", b"last", qos=0)
        expected.extend(b"".join(bytes(p["packet"]) for p in client._out_packet))
        got = bytearray()
        while len(got) < len(expected):
            client.loop_write()
            with contextlib.suppress(BlockingIOError):
                got.extend(broker.recv(1 << 20, socket.MSG_DONTWAIT))
        assert bytes(got) == bytes(expected) and not client._out_packet
        assert published == [301]  # the QoS 0 message, once written; the QoS 1 ones wait for their PUBACK
    finally:
        client._sock = None
        ours.close()
        broker.close()


def test_event_loop_reads_are_buffered_and_never_lost() -> None:
    """Read in chunks: what was read beyond ``limit`` waits in the client (``buffered``), not in the socket,
    and is handed to paho in order; bytes read from a socket since replaced are dropped with it."""
    client = Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.event_loop_io = True
    seen: list[bytes] = []
    client.on_message = lambda c, userdata, message: seen.append(message.payload)
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    for n in range(25):
        body = len(TOPIC).to_bytes(2, "big") + TOPIC + b"%d" % n
        broker.sendall(bytes([0x30, len(body)]) + body)
    try:
        assert client.read_packets(10) == mqtt.MQTT_ERR_SUCCESS and len(seen) == 10 and client.buffered()
        assert client.read_packets(100) == mqtt.MQTT_ERR_AGAIN and seen == [b"%d" % n for n in range(25)]
        assert not client.buffered()
        broker.sendall(bytes([0x30, len(TOPIC) + 3]) + len(TOPIC).to_bytes(2, "big") + TOPIC + b"x")
        broker.sendall(bytes([0x30, len(TOPIC) + 3]) + len(TOPIC).to_bytes(2, "big") + TOPIC + b"y")
        assert client.read_packets(1) == mqtt.MQTT_ERR_SUCCESS and seen[-1] == b"x" and client.buffered()
        other, _peer = socket.socketpair()
        client._sock = other  # a new connection: what the old one left is not read on it
        assert not client.buffered()
        other.setblocking(False)
        assert client.read_packets(1) == mqtt.MQTT_ERR_AGAIN and seen[-1] == b"x"
        other.close()
        _peer.close()
    finally:
        client._sock = None
        ours.close()
        broker.close()


def stream_outcome(event_loop_io: bool, pieces: list[bytes]) -> list[tuple[int, bytes, int, int]]:
    """Send ``pieces`` one after the other to a client, reading all it can after each; what it received."""
    client = Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    client.event_loop_io = event_loop_io
    seen: list[tuple[int, bytes, int, int]] = []
    client.on_message = lambda c, userdata, m: seen.append((m.mid, m.payload, m.qos, len(m.topic)))
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    client._sock = ours
    try:
        for piece in pieces:
            broker.sendall(piece)
            while client.read_packets(7) == mqtt.MQTT_ERR_SUCCESS:
                pass
        return seen
    finally:
        client._sock = None
        ours.close()
        broker.close()


def test_event_loop_reads_whole_and_cut_packets_as_paho_does() -> None:
    """Packets of every size (one- and two-byte remaining lengths), cut anywhere between two reads."""
    stream = bytearray()
    for n in range(60):
        payload = b"p%d" % n + b"." * (n * 7)
        if n % 3:  # QoS 1, no properties
            body = len(TOPIC).to_bytes(2, "big") + TOPIC + (n + 1).to_bytes(2, "big") + b"\x00" + payload
            header = 0x32
        else:  # QoS 0 with a property
            body = len(TOPIC).to_bytes(2, "big") + TOPIC + b"\x02\x01\x01" + payload
            header = 0x30
        length = bytearray()
        rest = len(body)
        while True:
            length.append((rest & 127) | (128 if rest > 127 else 0))
            rest >>= 7
            if not rest:
                break
        stream.extend(bytes([header]) + length + body)
    whole = stream_outcome(False, [bytes(stream)])
    assert len(whole) == 60
    for cut in (1, 2, 3, 37, 300, len(stream) // 2, len(stream) - 1):
        pieces = [bytes(stream[:cut]), bytes(stream[cut:])]
        assert stream_outcome(True, pieces) == whole
    assert stream_outcome(True, [bytes(stream[i : i + 97]) for i in range(0, len(stream), 97)]) == whole


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
            await loop.run_in_executor(None, broker.recv, 1024)  # CONNECT (off the loop: the driver sends it)
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
