"""Shared pieces of the benchmarks: a fresh database, bench devices and their readings, helper processes that
report their progress, a paced MQTT publisher, and MQTT session clean-up.

Run as ``python -m bench.common consumer|raw`` it is one of those helper processes:

- ``consumer``: telemon's real MQTT consumer (``open_services`` with the ``mqtt`` role) on
  ``BENCH_DATABASE_URL`` / ``BENCH_MQTT_URL`` with client id ``BENCH_CLIENT_ID``;
- ``raw``: a bare QoS 1 paho subscriber on the readings topics with the consumer's session settings (and its
  process's garbage-collector settings) that acknowledges every message at once and stores nothing; it counts
  the messages of the devices listed (one id a line) in the file ``BENCH_DEVICES_FILE``.

Both print ``P <done> <confirmed>`` on standard output whenever it changes (polled every 2 ms) and stop cleanly
when standard input closes or says ``stop``. ``done`` counts messages stored (the consumer's ``stored_messages``)
or received (raw); ``confirmed`` is a lower bound of the messages whose PUBACK has left the process: ``done`` minus
the packets still waiting in paho's outgoing queue. The consumer acknowledges after the commit, from the event
loop, and its paho thread can fall thousands of packets behind (receipts and acknowledgements share one queue),
so pacing the publisher on ``done`` alone lets the broker's queue overflow; pacing on ``confirmed`` does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.mqtt import RECEIVE_MAXIMUM, SESSION_EXPIRY_S, broker_speaks_mqtt5
from ingest.readings import DeviceContext
from telemon import loop
from telemon.db import connect
from telemon.migrate import migrate
from telemon.mqtt_client import new_client
from telemon.settings import parse_mqtt_url, redact
from telemon.topics import READINGS_TOPIC, device_of
from tests.support.data import iglu_by_subject

PROGRESS_INTERVAL_S = 0.002
READINGS_COLUMNS = (
    "patient_id", "device_id", "kind", "device_time", "value_raw", "unit_raw", "measured_at", "value_mgdl",
    "clock_offset_s", "context", "context_inferred", "meal", "minutes_after_meal", "flags", "source",
    "external_id", "note",
)  # fmt: skip


class BenchError(RuntimeError):
    """The benchmark cannot give a trustworthy figure (data lost, a helper died, a wrong answer)."""


def say(text: str) -> None:
    print(text, flush=True)


# --- database -----------------------------------------------------------------------------------------------


def with_database(url: str, database: str) -> str:
    """``url`` pointing at another database (keeps host, socket and credentials)."""
    head, sep, query = url.partition("?")
    base = head.rsplit("/", 1)[0]
    return f"{base}/{database}{sep}{query}"


@contextlib.asynccontextmanager
async def fresh_database(maintenance_url: str, prefix: str = "telemon_bench") -> AsyncIterator[str]:
    """A uniquely named database, created and migrated; dropped on the way out, even after a failure."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await connect(maintenance_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(maintenance_url, name)
        try:
            conn = await connect(url)
            try:
                await migrate(conn)
            finally:
                await conn.close()
            yield url
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            say(f"dropped database {name}")
    finally:
        await admin.close()


# --- bench devices and their readings -------------------------------------------------------------------------

CONTEXT_CYCLE: tuple[tuple[str, str | None, int | None], ...] = (
    ("fasting", None, None),
    ("after_meal", "breakfast", 120),
    ("after_meal", "lunch", 120),
    ("after_meal", "dinner", 60),
    ("bedtime", None, None),
)


@dataclass(frozen=True)
class BenchDevice:
    device_id: str
    token: str
    context: DeviceContext
    readings: list[dict[str, Any]]


def iso_z(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


@functools.cache
def cgm_traces() -> tuple[tuple[int, ...], ...]:
    """The glucose values (mg/dL) of the five real CGM traces in ``../shared/data/cgm`` (iglu), one per subject."""
    return tuple(tuple(value for _, value in trace) for trace in iglu_by_subject().values())


def device_readings(index: int, count: int, now: dt.datetime) -> list[dict[str, Any]]:
    """``count`` valid wire-format readings of device number ``index``, oldest first, every 5 minutes, ending
    about an hour before ``now`` (inside the pregnancy window and never in the future). One device in four is a
    meter sending mmol/L with a context; the others are CGMs in mg/dL whose context the service infers, and whose
    values are a real CGM trace (iglu's subjects in turn, each device from its own place in it, wrapping around):
    the alert engine evaluating the ingested patients meets what sensors report, not a synthetic saw-tooth (which
    set off a ketone-check episode every few readings)."""
    end = now.replace(microsecond=0) - dt.timedelta(hours=1, seconds=7 * index)
    step = dt.timedelta(minutes=5)
    start = end - step * count
    meter = index % 4 == 3
    trace = cgm_traces()[index % len(cgm_traces())]
    offset = index * 397
    out: list[dict[str, Any]] = []
    for i in range(count):
        at = iso_z(start + step * i)
        if meter:
            context, meal, minutes = CONTEXT_CYCLE[i % len(CONTEXT_CYCLE)]
            item: dict[str, Any] = {
                "id": f"m{index}-{i}", "measured_at": at, "value": round(3.9 + ((i * 7 + index) % 60) / 10, 1),
                "unit": "mmol/L", "kind": "smbg", "context": context,
            }  # fmt: skip
            if meal is not None:
                item["meal"] = meal
            if minutes is not None:
                item["minutes_after_meal"] = minutes
            if i % 10 == 0:
                item["flags"] = ["manual"]
        else:
            item = {"id": f"c{index}-{i}", "measured_at": at, "value": trace[(offset + i) % len(trace)],
                    "unit": "mg/dL", "kind": "cgm"}  # fmt: skip
        out.append(item)
    return out


# --- helper processes -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any ``TELEMON_*`` / ``BENCH_*`` setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEMON_", "BENCH_"))}
    env.update(extra)
    return env


class Progress(Protocol):
    """What a publisher paces itself by: one receiving process (``Helper``) or several (``bench.ingest``)."""

    @property
    def confirmed(self) -> int: ...

    @property
    def changed(self) -> asyncio.Event: ...

    def alive(self) -> bool: ...

    def died(self) -> BenchError: ...


def peak_rss_mb(pid: int) -> float:
    """The peak resident memory of a running process (Linux ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Helper:
    """A child process whose standard error goes to a log file and, for workers, whose ``P n`` lines update
    ``done``; ``reached(n)`` waits until ``done >= n`` and returns the ``perf_counter`` time it was seen."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None
        self.done = 0
        self.confirmed = 0
        self.changed = asyncio.Event()
        self.ready = asyncio.Event()
        self._last_change = time.perf_counter()
        self._reader: asyncio.Task[None] | None = None
        self._log: TextIO | None = None

    async def start(self, args: Sequence[str], env: dict[str, str], *, progress: bool) -> None:
        self._log = self.log_path.open("w", encoding="utf-8")
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE if progress else asyncio.subprocess.DEVNULL,
            stderr=self._log,
            env=env,
        )
        if progress:
            self._reader = asyncio.create_task(self._read(), name=f"{self.name}-progress")

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            text = line.decode().strip()
            if text.startswith("P "):
                done, confirmed = text[2:].split()
                self.done, self.confirmed = int(done), int(confirmed)
                self._last_change = time.perf_counter()
                self.changed.set()
            elif text == "READY":
                self.ready.set()
        self.changed.set()  # end of output: the process is gone

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the process has used so far (Linux ``/proc``; 0 elsewhere)."""
        if self.proc is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def died(self) -> BenchError:
        code = self.proc.returncode if self.proc else None
        return BenchError(f"{self.name} exited (status {code}); last lines of {self.log_path}:\n{self.log_tail()}")

    async def wait_ready(self, timeout: float) -> None:
        """Wait for the helper's ``READY`` line (its MQTT session is connected and subscribed)."""
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except TimeoutError:
            error = self.died() if not self.alive() else BenchError(f"{self.name}: not ready after {timeout:.0f} s")
            raise error from None

    async def wait_progress(self, target: int, stall: float) -> float:
        """Wait until the helper reported ``target`` messages done; the ``perf_counter`` time it was read.
        Fails when the helper dies or reports no progress for ``stall`` seconds (messages were lost)."""
        self._last_change = max(self._last_change, time.perf_counter() - 1)
        while self.done < target:
            if self._reader is not None and self._reader.done():
                raise self.died()
            self.changed.clear()
            if self.done >= target:
                break
            if time.perf_counter() - self._last_change > stall:
                raise BenchError(
                    f"{self.name}: stuck at {self.done} of {target} messages for {stall:.0f} s: messages were lost"
                    " (a broker drops QoS 1 messages queued beyond its max_queued_messages: see its log);"
                    f" last lines of {self.log_path}:\n{self.log_tail()}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1.0)
        return time.perf_counter()

    async def stop(self, timeout: float = 20.0) -> None:
        """Ask it to stop (close stdin; SIGTERM for a server), then wait; kill it only if it does not go."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError, RuntimeError):
                    proc.stdin.write(b"stop\n")
                    await proc.stdin.drain()
                    proc.stdin.close()
            if self._reader is None:  # a server: it stops on SIGTERM
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, 5)
        if self._log is not None:
            self._log.close()
            self._log = None


# --- MQTT -----------------------------------------------------------------------------------------------------


async def start_api_server(
    db_url: str, state_dir: Path, *, roles: str = "api", ready_s: float = 60, **settings: str
) -> tuple[Helper, str]:
    """``telemon serve`` with ``roles`` as a child process on a free port, with ``settings`` (``TELEMON_*`` names)
    beside the database; returns it once ``/readyz`` says 200 (within ``ready_s``), and its base URL."""
    import httpx

    port = free_port()
    env = clean_env({
        "TELEMON_DATABASE_URL": db_url, "TELEMON_ROLES": roles, "TELEMON_HOST": "127.0.0.1",
        "TELEMON_PORT": str(port), "TELEMON_STATE_DIR": str(state_dir), "TELEMON_LOG_LEVEL": "INFO", **settings,
    })  # fmt: skip
    label = f"telemon serve --roles {roles}"
    server = Helper(label, state_dir / ("api.log" if roles == "api" else "server.log"))
    base = f"http://127.0.0.1:{port}"
    try:
        await server.start([sys.executable, "-m", "telemon", "serve"], env, progress=False)
        async with httpx.AsyncClient() as client:
            deadline = time.perf_counter() + ready_s
            while True:
                if not server.alive():
                    raise server.died()
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{base}/readyz", timeout=2)).status_code == 200:
                        return server, base
                if time.perf_counter() > deadline:
                    raise BenchError(f"{label} not ready after {ready_s:g} s:\n{server.log_tail()}")
                await asyncio.sleep(0.1)
    except BaseException:
        await server.stop()
        raise


def _wait_connected(client: mqtt.Client, address_host: str, port: int, timeout: float, **kwargs: Any) -> None:
    connected = threading.Event()
    refused: list[str] = []

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if getattr(reason, "is_failure", False):
            refused.append(str(reason))
        connected.set()

    client.on_connect = on_connect
    client.connect(address_host, port, keepalive=30, **kwargs)
    client.loop_start()
    if not connected.wait(timeout) or refused:
        client.loop_stop()
        raise BenchError(f"MQTT connection refused or timed out: {refused or 'no CONNACK'}")


def clean_session(url: str, client_id: str, mqtt5: bool) -> None:
    """Delete the broker's persistent session of ``client_id``: connect with a clean start, then disconnect."""
    address = parse_mqtt_url(url)
    protocol = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
    client = new_client(url, client_id, protocol=protocol, persistent=False)
    kwargs: dict[str, Any] = {}
    if mqtt5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        kwargs = {"clean_start": True, "properties": props}
    _wait_connected(client, address.host, address.port, 10, **kwargs)
    client.disconnect()
    client.loop_stop()


class Publisher:
    """A QoS 1 paho publisher (clean session, unique id) whose sends the caller paces."""

    def __init__(self, url: str, client_id: str, mqtt5: bool, max_inflight: int) -> None:
        self.url = url
        protocol = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
        self.client = new_client(url, client_id, protocol=protocol, persistent=False)
        self.client.max_inflight_messages_set(max_inflight)
        self.client.max_queued_messages_set(0)
        self.acked = 0
        self._lock = threading.Lock()
        self.client.on_publish = self._on_publish
        self.mqtt5 = mqtt5

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self.acked += 1

    def connect(self) -> None:
        address = parse_mqtt_url(self.url)
        kwargs: dict[str, Any] = {"clean_start": True} if self.mqtt5 else {}
        _wait_connected(self.client, address.host, address.port, 10, **kwargs)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    async def send_paced(
        self, messages: Sequence[tuple[str, bytes]], helper: Progress, window: int, base: int = 0
    ) -> float:
        """Publish ``messages`` keeping at most ``window`` of them not yet confirmed (acknowledged) by
        ``helper`` (whose count starts at ``base``); returns the ``perf_counter`` time of the first publish."""
        publish = self.client.publish
        started = time.perf_counter()
        sent = 0
        total = len(messages)
        while sent < total:
            room = window - (sent - (helper.confirmed - base))
            if room <= 0:
                if not helper.alive():
                    raise helper.died()
                helper.changed.clear()
                if window - (sent - (helper.confirmed - base)) <= 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(helper.changed.wait(), 5)
                continue
            end = min(total, sent + room)
            for topic, payload in messages[sent:end]:
                info = publish(topic, payload, qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    raise BenchError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
            sent = end
            await asyncio.sleep(0)
        return started


# --- the helper processes themselves --------------------------------------------------------------------------


def _stdin_closed(stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


def _unsent_packets(client: mqtt.Client | None) -> int:
    """Packets paho has queued but not yet written (a private attribute of paho 2.x, read for measurement only)."""
    queue = getattr(client, "_out_packet", None)
    return len(queue) if queue is not None else 0


def _report(done: Callable[[], int], client: Callable[[], mqtt.Client | None], stop: threading.Event) -> None:
    last: tuple[int, int] = (-1, -1)
    print("READY", flush=True)
    while not stop.is_set():
        count = done()
        value = (count, max(0, count - _unsent_packets(client())))
        if value != last:
            print(f"P {value[0]} {value[1]}", flush=True)
            last = value
        time.sleep(PROGRESS_INTERVAL_S)


async def _run_consumer() -> None:
    from telemon import logs
    from telemon.app.services import open_services
    from telemon.settings import Settings

    env = os.environ
    settings = dataclasses.replace(
        Settings.from_env({}),
        database_url=env["BENCH_DATABASE_URL"],
        mqtt_url=env["BENCH_MQTT_URL"],
        mqtt_client_id=env["BENCH_CLIENT_ID"],
        roles=("mqtt",),
        mqtt_shared_group=env.get("BENCH_SHARED_GROUP", ""),
        state_dir=Path(env.get("BENCH_STATE_DIR", ".telemon")),
    )
    logs.configure(env.get("BENCH_LOG_LEVEL", "INFO"))
    stop = threading.Event()
    threading.Thread(target=_stdin_closed, args=(stop,), daemon=True).start()
    async with open_services(settings) as services:
        consumer = services.consumer
        if consumer is None:
            raise BenchError("the mqtt role started no consumer")
        reporter = threading.Thread(
            target=_report, args=(lambda: consumer.stored_messages, lambda: consumer._client, stop), daemon=True
        )
        reporter.start()
        while not stop.is_set():
            await asyncio.sleep(0.05)
        reporter.join()


def _run_raw() -> None:
    env = os.environ
    url, client_id = env["BENCH_MQTT_URL"], env["BENCH_CLIENT_ID"]
    wanted = set(Path(env["BENCH_DEVICES_FILE"]).read_text(encoding="utf-8").split())
    mqtt5 = broker_speaks_mqtt5(url)
    # paho's own client, not telemon's (``telemon.mqtt_client.Client``): the baseline is what a plain paho
    # subscriber costs, and does not move when telemon's client handles a packet in fewer steps
    if mqtt5:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, protocol=mqtt.MQTTv5, manual_ack=True)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, clean_session=False, manual_ack=True)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    counted = [0]

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if device_of(message.topic) in wanted:
            counted[0] += 1
        if message.qos > 0:
            client.ack(message.mid, message.qos)

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any) -> None:
        subscribed.set()

    subscribed = threading.Event()
    client.on_message = on_message
    client.on_subscribe = on_subscribe
    address = parse_mqtt_url(url)
    kwargs: dict[str, Any] = {}
    if mqtt5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        kwargs = {"clean_start": False, "properties": props}
    _wait_connected(client, address.host, address.port, 10, **kwargs)
    client.subscribe(READINGS_TOPIC, qos=1)
    if not subscribed.wait(10):
        raise BenchError("raw subscriber: no SUBACK")
    stop = threading.Event()
    threading.Thread(target=_stdin_closed, args=(stop,), daemon=True).start()
    loop.settle_gc()  # the collector's settings of telemon's processes (``open_services``): the same for both
    _report(lambda: counted[0], lambda: client, stop)
    client.disconnect()
    client.loop_stop()


def describe_url(url: str) -> str:
    return redact(url)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["consumer"]:
        loop.run(_run_consumer())  # as `telemon serve` runs it
    elif args == ["raw"]:
        _run_raw()
    else:
        print("usage: python -m bench.common consumer|raw (driven by bench.ingest)", file=sys.stderr)
        return 2
    return 0


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


if __name__ == "__main__":
    sys.exit(main())
