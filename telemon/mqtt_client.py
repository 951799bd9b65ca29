"""One way to make a paho-mqtt client from a telemon MQTT URL, and a readiness probe."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from telemon.settings import parse_mqtt_url


def new_client(
    url: str,
    client_id: str = "",
    *,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    persistent: bool = False,
    manual_ack: bool = False,
    username: str | None = None,
    password: str | None = None,
) -> mqtt.Client:
    """A client for ``url`` (credentials from the URL unless given); not yet connected."""
    address = parse_mqtt_url(url)
    kwargs: dict[str, object] = {"client_id": client_id, "protocol": protocol, "manual_ack": manual_ack}
    if protocol != mqtt.MQTTv5:
        kwargs["clean_session"] = not persistent
    client = mqtt.Client(CallbackAPIVersion.VERSION2, **kwargs)  # type: ignore[arg-type]
    user = username if username is not None else address.username
    if user is not None:
        client.username_pw_set(user, password if password is not None else address.password)
    if address.tls:
        client.tls_set()
    return client


def probe(url: str, timeout: float = 2.0, protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311) -> bool:
    """True when the broker at ``url`` accepts a connection in ``protocol`` within ``timeout`` seconds (a broker
    that does not speak it closes the connection: False at once)."""
    address = parse_mqtt_url(url)
    client = new_client(url, protocol=protocol)
    accepted: list[bool] = []
    answered = threading.Event()

    def on_connect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        accepted.append(not getattr(reason, "is_failure", False))
        answered.set()

    def on_disconnect(client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        answered.set()

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        client.connect(address.host, address.port, keepalive=10)
    except OSError:
        return False
    client.loop_start()
    try:
        answered.wait(timeout)
        return bool(accepted and accepted[0])
    finally:
        client.disconnect()
        client.loop_stop()
