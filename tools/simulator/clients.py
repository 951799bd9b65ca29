"""The three transports, spoken as real clients speak them (blocking calls, run in worker threads):

- meters over MQTT: username = device id, password = token; QoS 1 on ``telemon/v1/devices/{id}/readings``; the
  receipts on ``…/receipts``, one per message, in order. Timestamps are the meter's own wall clock, without a
  time zone (as most meters keep them), and ``device_time`` is the meter's clock when it sends.
- phone apps over HTTP: ``POST /api/v1/readings`` with ``Authorization: Bearer <token>``; times with their
  UTC offset (a phone knows its zone and its clock is right).
- CGM uploaders through the Nightscout API: ``POST /ns/api/v1/entries`` with ``api-secret`` = SHA-1 hex of the
  token; ``sgv`` entries in mg/dL with ``date`` in epoch milliseconds; the receipt is in ``X-Telemon-*`` headers.

Only the standard library and paho-mqtt: the HTTP client is ``http.client`` with one kept-alive connection per
worker thread.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from telemon.mqtt_client import new_client
from telemon.security import nightscout_secret
from telemon.settings import SettingsError, parse_mqtt_url
from telemon.topics import readings_topic, receipts_topic
from tools.simulator.measures import Measure
from tools.simulator.physiology import Reading, Sync

DEFAULT_URL = "http://127.0.0.1:8000"
READINGS_PATH = "/api/v1/readings"
ENTRIES_PATH = "/ns/api/v1/entries"


@dataclass
class Receipt:
    """telemon's answer to one message, or why there was none."""

    readings: int
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int | None, str]] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def of(cls, readings: int, answer: Any) -> Receipt:
        if not isinstance(answer, dict):
            return cls(readings, error="answer is not a receipt")
        rejected = [(r.get("index"), str(r.get("reason", ""))) for r in answer.get("rejected") or []]
        return cls(readings, int(answer.get("accepted", 0)), int(answer.get("duplicates", 0)), rejected)


# --- payloads ---------------------------------------------------------------------------------------------------


def _naive_local(moment: dt.datetime, zone: dt.tzinfo) -> str:
    return moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


def _item(r: Reading, measured_at: str, tags: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {"id": str(r.seq), "measured_at": measured_at, "value": r.value, "kind": r.kind}
    if tags:
        for key in ("context", "meal", "minutes_after_meal"):
            value = getattr(r, key)
            if value is not None:
                item[key] = value
    if r.flags:
        item["flags"] = list(r.flags)
    return item


def measure_item(m: Measure, measured_at: str) -> dict[str, Any]:
    """An insulin dose, ketone, weight or blood pressure as the device contract carries it."""
    return {"id": str(m.seq), "measured_at": measured_at, "kind": m.kind, **dict(m.values)}


def meter_payload(sync: Sync, now: dt.datetime) -> dict[str, Any]:
    """A meter's sync: its own wall-clock stamps and its clock at send time (``now`` is the true time)."""
    p = sync.patient
    zone = p.zone
    readings = []
    for r in sync.readings:
        item = _item(r, _naive_local(r.stamp, zone))
        item["unit"] = p.unit
        readings.append(item)
    readings.extend(measure_item(m, _naive_local(m.stamp, zone)) for m in sync.measures)
    device_time = now + dt.timedelta(seconds=sync.clock_skew_s)
    return {"device_time": _naive_local(device_time, zone), "readings": readings}


def app_payload(
    readings: list[Reading], unit: str, zone: dt.tzinfo, measures: tuple[Measure, ...] = ()
) -> dict[str, Any]:
    items = []
    for r in readings:
        item = _item(r, r.stamp.astimezone(zone).isoformat(timespec="seconds"))
        item["unit"] = unit
        items.append(item)
    items.extend(measure_item(m, m.stamp.astimezone(zone).isoformat(timespec="seconds")) for m in measures)
    return {"readings": items}


def _direction(rate: float | None) -> str:
    """Nightscout's trend arrow from the rate of change in mg/dL per minute (the CGM arrows' bands: < 1, 1–2, 2–3, > 3 mg/dL/min; Battelino et al., Diabetes Care 2019)."""
    if rate is None:
        return "NONE"
    for limit, up, down in (
        (3, "DoubleUp", "DoubleDown"),
        (2, "SingleUp", "SingleDown"),
        (1, "FortyFiveUp", "FortyFiveDown"),
    ):
        if rate > limit:
            return up
        if rate < -limit:
            return down
    return "Flat"


def cgm_entries(readings: list[Reading]) -> list[dict[str, Any]]:
    entries = []
    previous: Reading | None = None
    for r in readings:
        rate = None
        if previous is not None and dt.timedelta(0) < r.stamp - previous.stamp <= dt.timedelta(minutes=10):
            rate = (r.value - previous.value) / ((r.stamp - previous.stamp).total_seconds() / 60)
        millis = int(r.stamp.timestamp() * 1000)
        entries.append(
            {
                "type": "sgv",
                "sgv": int(r.value),
                "date": millis,
                "dateString": r.stamp.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "direction": _direction(rate),
                "device": "telemon-simulator CGM",
            }
        )
        previous = r
    return entries


# --- MQTT -------------------------------------------------------------------------------------------------------


def mqtt_session(
    url: str,
    device_id: str,
    token: str,
    payloads: list[bytes],
    *,
    timeout: float,
    abort: threading.Event | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One sync session of a meter: connect with its credentials, subscribe to its receipts, publish each
    payload with QoS 1, wait for one receipt per payload, disconnect. Returns the receipts received (in order)
    and the reason when some are missing."""
    address = parse_mqtt_url(url, "--mqtt-url")
    client = new_client(url, device_id, username=device_id, password=token)
    client.max_inflight_messages_set(50)
    lock = threading.Condition()
    receipts: list[dict[str, Any]] = []
    state: dict[str, Any] = {"connected": False, "refused": None, "subscribed": False}

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with lock:
            if getattr(reason, "is_failure", False):
                state["refused"] = str(reason)
            else:
                state["connected"] = True
            lock.notify_all()

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
        with lock:
            state["subscribed"] = True
            lock.notify_all()

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            answer = json.loads(message.payload)
        except ValueError:
            answer = None
        with lock:
            receipts.append(answer)
            lock.notify_all()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    deadline = time.monotonic() + timeout

    def wait(condition: Any) -> bool:
        with lock:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0 or (abort is not None and abort.is_set()):
                    return False
                lock.wait(min(left, 0.2))
            return True

    try:
        client.connect(address.host, address.port, keepalive=30)
    except OSError as exc:
        return [], f"broker {address.host}:{address.port} unreachable: {exc}"
    client.loop_start()
    try:
        if not wait(lambda: state["connected"] or state["refused"]):
            return [], "no answer from the broker to CONNECT"
        if state["refused"]:
            return [], f"broker refused the meter's login: {state['refused']}"
        client.subscribe(receipts_topic(device_id), qos=1)
        if not wait(lambda: state["subscribed"]):
            return [], "receipts subscription not acknowledged"
        for payload in payloads:
            client.publish(readings_topic(device_id), payload, qos=1)
        if not wait(lambda: len(receipts) >= len(payloads)):
            return list(receipts), f"{len(payloads) - len(receipts)} receipts missing after {timeout:g} s"
        return list(receipts), None
    finally:
        client.disconnect()
        client.loop_stop()


# --- HTTP -------------------------------------------------------------------------------------------------------


class Http:
    """A small HTTP/1.1 client for telemon's URL: one kept-alive connection per thread, retried on a dropped
    connection (a request that failed before its answer is sent again: telemon's dedup makes that safe)."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SettingsError(f"--url: {base_url!r} is not an http(s) URL (for example http://127.0.0.1:8000)")
        self.base_url = base_url.rstrip("/")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = kind(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        last: Exception | None = None
        for attempt in range(4):
            conn = self._connection()
            try:
                conn.request(method, self.prefix + path, body=body, headers=headers or {})
                response = conn.getresponse()
                data = response.read()
                return response.status, {k.lower(): v for k, v in response.getheaders()}, data
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                self._local.conn = None
                last = exc
                time.sleep(0.1 * 2**attempt)
        raise ConnectionError(f"telemon at {self.base_url} did not answer: {last}")

    def answers(self) -> bool:
        try:
            status, _, _ = self.request("GET", "/healthz")
        except ConnectionError:
            return False
        return status == 200

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def _error(status: int, body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        detail = None
    text = detail if isinstance(detail, str) else body[:200].decode("utf-8", "replace")
    return f"HTTP {status}: {text}"


def post_app(client: Http, token: str, payload: dict[str, Any]) -> Receipt:
    count = len(payload["readings"])
    body = json.dumps(payload).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        status, _, data = client.request("POST", READINGS_PATH, body, headers)
    except ConnectionError as exc:
        return Receipt(count, error=str(exc))
    if status != 200:
        return Receipt(count, error=_error(status, data))
    return Receipt.of(count, json.loads(data))


def post_cgm(client: Http, token: str, entries: list[dict[str, Any]]) -> Receipt:
    body = json.dumps(entries).encode()
    headers = {"api-secret": nightscout_secret(token), "Content-Type": "application/json"}
    try:
        status, found, data = client.request("POST", ENTRIES_PATH, body, headers)
    except ConnectionError as exc:
        return Receipt(len(entries), error=str(exc))
    if status != 200:
        return Receipt(len(entries), error=_error(status, data))
    rejected = int(found.get("x-telemon-rejected", 0))
    return Receipt(
        len(entries),
        int(found.get("x-telemon-accepted", 0)),
        int(found.get("x-telemon-duplicates", 0)),
        [(None, "refused (a Nightscout answer carries counts only; telemon keeps the reasons)")] * rejected,
    )
