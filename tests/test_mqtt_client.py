"""telemon's paho client handles the broker's PUBACKs as paho does: same callback arguments, same message
released, same errors — on every PUBACK shape, those it shortcuts and those it hands to paho; and its bounded
read takes what it is allowed to and leaves the rest in the socket."""

from __future__ import annotations

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
        assert client.read_packets(10) == mqtt.MQTT_ERR_SUCCESS  # 5 left, then nothing to read
        assert received == [b"%d" % n for n in range(25)]
    finally:
        client._sock = None
        ours.close()
        broker.close()
