"""What a device is given to send with: its credentials and where to send them, for a meter gateway or the phone
app (HTTP and MQTT) or for a CGM uploader (Nightscout's URL and API secret). The hospital API answers it as JSON;
the dashboard prints it as the pairing sheet handed to the patient."""

from __future__ import annotations

from dataclasses import dataclass

from telemon import topics
from telemon.settings import Settings, parse_mqtt_url


@dataclass(frozen=True)
class HttpAccess:
    readings_url: str
    authorization: str


@dataclass(frozen=True)
class MqttAccess:
    host: str
    port: int
    tls: bool
    username: str
    password: str
    readings_topic: str
    receipts_topic: str


@dataclass(frozen=True)
class NightscoutAccess:
    url: str
    api_secret: str
    xdrip_url: str


@dataclass(frozen=True)
class Sheet:
    device_id: str
    kind: str
    token: str
    http: HttpAccess | None
    mqtt: MqttAccess | None
    nightscout: NightscoutAccess | None


def reached_at(settings: Settings, request_base_url: str, service_mqtt_url: str | None) -> tuple[str, str | None]:
    """Where a patient's device reaches telemon: the public addresses when they are configured
    (``TELEMON_PUBLIC_URL``, ``TELEMON_PUBLIC_MQTT_URL``: behind a proxy, the address a clinician's browser used or
    the broker's inside address is not the one a phone on the patient's home network can reach), else the address
    the clinician's request came to and the broker this service uses."""
    return settings.public_url or request_base_url, settings.public_mqtt_url or service_mqtt_url


def sheet(kind: str, device_id: str, token: str, *, base_url: str, mqtt_url: str | None) -> Sheet:
    """The sheet of a device reached at ``base_url`` (HTTP) and ``mqtt_url`` (the broker; None without one). A CGM
    uploader gets Nightscout's URL and the token as its API secret (the uploader sends the secret's SHA-1), and
    xDrip+'s single "Base URL" with the secret in it; the others get the readings URL with its bearer header, and
    the broker's host, port and TLS with the device's own login and topics, never the service account's."""
    base = base_url.rstrip("/")
    http = mqtt = nightscout = None
    if kind == "cgm":
        scheme, _, rest = base.partition("://")
        nightscout = NightscoutAccess(
            url=f"{base}/ns", api_secret=token, xdrip_url=f"{scheme}://{token}@{rest}/ns/api/v1/"
        )
    else:
        http = HttpAccess(readings_url=f"{base}/api/v1/readings", authorization=f"Bearer {token}")
        if mqtt_url:
            broker = parse_mqtt_url(mqtt_url)
            mqtt = MqttAccess(
                host=broker.host,
                port=broker.port,
                tls=broker.tls,
                username=device_id,
                password=token,
                readings_topic=topics.readings_topic(device_id),
                receipts_topic=topics.receipts_topic(device_id),
            )
    return Sheet(device_id=device_id, kind=kind, token=token, http=http, mqtt=mqtt, nightscout=nightscout)
