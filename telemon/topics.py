"""The MQTT topics of the device contract: a device publishes its readings on
``telemon/v1/devices/{device_id}/readings`` and may listen for its receipts on ``.../receipts``. A public contract,
in the core: the consumer subscribes to it, devices, the simulator, the broker's ACL and the benchmarks write to it."""

from __future__ import annotations

TOPIC_PREFIX = "telemon/v1/devices/"
READINGS_TOPIC = TOPIC_PREFIX + "+/readings"


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
