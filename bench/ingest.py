"""Ingest throughput against the database's own ceiling, measured in one run on loopback.

``python -m bench.ingest [--quick]`` (``make bench``) creates a fresh, uniquely named database (migrated with
``telemon.migrate.migrate``, dropped at the end even on failure) on the PostgreSQL the tests use (127.0.0.1:5432
if it answers, else an embedded one) and starts a private Mosquitto for the run (``private_broker``: the settings
of ``deploy/mosquitto/mosquitto.conf`` without its authentication, on a free loopback port), so that the flood
never reaches the shared broker's other clients (every consumer subscribes to every device's topic) and their
traffic does not disturb the figures; ``--tests-broker`` uses the tests' broker instead (127.0.0.1:1883 if it
answers, else an embedded amqtt), never while tests may run. It registers devices (one patient each) and writes the same valid readings (inside each pregnancy, never
in the future, unique per device) in every phase, starting each phase from an empty ``readings`` table:

- ``copy``: ``copy_records_to_table`` of the very rows the service writes (the ceiling);
- ``naive``: one autocommitted INSERT per reading (a sample);
- ``http_batch``: ``telemon serve --roles api`` as a subprocess, fed by httpx with bodies of 1,000 readings,
  a few requests in flight; done when every response came back (they come after the commit);
- ``mqtt_batch`` / ``mqtt_single``: the real consumer (``open_services`` with the ``mqtt`` role) in a subprocess,
  fed QoS 1 messages of 50 readings / 1 reading for many devices; done when the consumer has stored them all;
- ``mqtt_raw``: a bare QoS 1 subscriber (paho's own client on its network thread, manual ack, acks at once,
  stores nothing) in a subprocess, fed the same single-reading stream.

``--consumers N`` runs N consumer processes on one shared subscription (``TELEMON_MQTT_SHARED_GROUP``) instead
of one. The MQTT single-reading and raw phases also print the CPU time their receiving processes used (``/proc``):
the cores they kept busy and messages per CPU-second, the ratio per core (``per_cpu_s_by_round`` in the JSON).

Every server runs in its own process so that the client does not share a GIL with it; on a 2-core machine
client, server, broker and PostgreSQL still share the CPUs, as they would on a small production host.
The publisher keeps at most ``--window`` messages not yet acknowledged by the receiving process (see
``bench.common``), so the broker never queues more than its ``max_queued_messages`` (Mosquitto's default: 1000);
every phase checks that the table holds exactly what was sent and fails loudly otherwise.

Other work on the machine moves single figures by tens of percent, so every phase but ``naive`` runs in
``--rounds`` rounds (single-reading and raw MQTT back to back in each) and the best round counts; the ratio within
each round is printed beside it (and in ``ratios_by_round``) to show the spread. The last line printed is one
JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import (
    READINGS_COLUMNS,
    BenchDevice,
    BenchError,
    Helper,
    Publisher,
    clean_env,
    clean_session,
    device_readings,
    dumps,
    fresh_database,
    say,
    start_api_server,
)
from ingest.mqtt import broker_speaks_mqtt5
from ingest.readings import prepare
from ingest.service import devices_by_ids
from telemon.db import create_pool
from telemon.settings import redact
from telemon.topics import readings_topic
from tests.support.factories import patient_with_device
from tests.support.mosquitto import DEPLOY, start_mosquitto
from tests.support.services import mqtt_broker, postgres_server

HTTP_BATCH = 1000
MQTT_BATCH = 50
TARGETS = (  # (ratio key, phase, its baseline, threshold, what)
    ("http_vs_copy", "http_batch", "copy", 0.40, "HTTP batch >= 40 % of COPY"),
    ("mqtt_batch_vs_copy", "mqtt_batch", "copy", 0.40, "MQTT 50-reading >= 40 % of COPY"),
    ("mqtt_single_vs_raw", "mqtt_single", "mqtt_raw", 0.70, "MQTT single >= 70 % of raw MQTT"),
)
PHASES = ("copy", "naive", "http_batch", "mqtt_batch", "mqtt_single", "mqtt_raw")
DB_CHECK_TIMEOUT_S = 10.0
STALL_S = 30.0


@dataclass(frozen=True)
class Params:
    mode: str
    devices: int
    per_device: int  # readings per device in copy, http and mqtt 50-reading phases
    single_per_device: int  # single-reading messages per device (mqtt single and raw)
    naive: int
    http_concurrency: int
    window: int  # MQTT messages published but not yet acknowledged by the receiving process
    publisher_inflight: int
    rounds: int
    tests_broker: bool  # the tests' shared broker rather than a private Mosquitto
    consumers: int  # consumer processes, on one shared subscription when more than one
    broker_inflight: int | None  # the private broker's max_inflight_messages, if not the shipped one

    @property
    def readings(self) -> int:
        return self.devices * self.per_device

    @property
    def single_messages(self) -> int:
        return self.devices * self.single_per_device


@dataclass(frozen=True)
class Phase:
    name: str
    count: int
    seconds: float
    unit: str = "readings"
    cpu: float = 0.0  # CPU seconds the receiving process(es) used meanwhile (MQTT phases)

    @property
    def rate(self) -> float:
        return self.count / self.seconds


def parse_args(argv: Sequence[str] | None) -> Params:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes (under a minute)")
    parser.add_argument("--devices", type=int, help="devices (one patient each); default 100")
    parser.add_argument("--per-device", type=int, help="readings per device, a multiple of 1000")
    parser.add_argument("--single-per-device", type=int, help="single-reading MQTT messages per device")
    parser.add_argument("--naive", type=int, help="readings in the one-INSERT-each sample")
    parser.add_argument("--http-concurrency", type=int, default=4, help="HTTP requests in flight (default 4)")
    parser.add_argument(
        "--window",
        type=int,
        default=1000,
        help="MQTT messages unconfirmed at most (default 1000 = Mosquitto's max_queued_messages)",
    )
    parser.add_argument(
        "--publisher-inflight",
        type=int,
        default=0,
        help="publisher's paho max_inflight_messages (default 0 = unlimited: --window bounds it;"
        " a limit makes paho rescan its whole queue on every PUBACK)",
    )
    parser.add_argument("--rounds", type=int, help="rounds of every phase but naive; the best counts (2 quick, 5)")
    parser.add_argument(
        "--tests-broker",
        action="store_true",
        help="use the tests' broker (127.0.0.1:1883, else embedded amqtt) instead of a private Mosquitto;"
        " its other clients receive the flood",
    )
    parser.add_argument(
        "--consumers",
        type=int,
        default=1,
        help="consumer processes splitting the messages on one shared subscription (TELEMON_MQTT_SHARED_GROUP);"
        " default 1",
    )
    parser.add_argument(
        "--broker-inflight",
        type=int,
        help="the private broker's max_inflight_messages (default: deploy/mosquitto/mosquitto.conf's; 0 = no limit)",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    params = Params(
        mode="quick" if quick else "full",
        devices=args.devices or 100,
        per_device=args.per_device or (1000 if quick else 3000),
        single_per_device=args.single_per_device or (100 if quick else 500),
        naive=args.naive or (2000 if quick else 10_000),
        http_concurrency=args.http_concurrency,
        window=args.window,
        publisher_inflight=args.publisher_inflight,
        rounds=args.rounds or (2 if quick else 5),
        tests_broker=bool(args.tests_broker),
        consumers=args.consumers,
        broker_inflight=args.broker_inflight,
    )
    if params.per_device % HTTP_BATCH or params.per_device % MQTT_BATCH or params.per_device <= 0:
        parser.error(f"--per-device must be a positive multiple of {HTTP_BATCH}")
    if not 0 < params.single_per_device <= params.per_device:
        parser.error("--single-per-device must be between 1 and --per-device")
    if min(params.window, params.devices, params.http_concurrency, params.rounds, params.naive, params.consumers) < 1:
        parser.error("--window, --devices, --http-concurrency, --rounds, --naive and --consumers must be positive")
    return params


# --- set-up -----------------------------------------------------------------------------------------------------


async def make_devices(pool: asyncpg.Pool, count: int, per_device: int, now: dt.datetime) -> list[BenchDevice]:
    setups = [await patient_with_device(pool, kind="meter" if i % 4 == 3 else "cgm") for i in range(count)]
    contexts = await devices_by_ids(pool, [s.device_id for s in setups])
    return [
        BenchDevice(s.device_id, s.token, contexts[s.device_id], device_readings(i, per_device, now))
        for i, s in enumerate(setups)
    ]


def rows_for_copy(devices: list[BenchDevice], now: dt.datetime) -> list[tuple[Any, ...]]:
    """The rows the service would write for every reading, through its own parse → validate → normalise."""
    records: list[tuple[Any, ...]] = []
    for device in devices:
        prepared = prepare({"readings": device.readings}, device.context, now=now, source="copy", max_readings=10**9)
        if prepared.rejected:
            raise BenchError(f"generated readings refused: {prepared.rejected[0].reason}")
        records.extend(tuple(getattr(row, column) for column in READINGS_COLUMNS) for row in prepared.rows)
    return records


def interleave(per_device: list[list[Any]]) -> list[Any]:
    """Item 0 of every device, then item 1 of every device, and so on."""
    longest = max(len(items) for items in per_device)
    return [items[i] for i in range(longest) for items in per_device if i < len(items)]


def chunks(items: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def mqtt_messages(devices: list[BenchDevice], size: int, per_device: int) -> list[tuple[str, bytes]]:
    return interleave(
        [[(readings_topic(d.device_id), dumps({"readings": c})) for c in chunks(d.readings[:per_device], size)]
         for d in devices]
    )  # fmt: skip


# --- checks -----------------------------------------------------------------------------------------------------


class Tables:
    """Where a phase's readings land: the whole tables of a database of this run (emptied before each phase)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def reset(self) -> None:
        await self.pool.execute("TRUNCATE readings, ingest_rejections")

    async def count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM readings"))

    async def refused(self) -> list[str]:
        return [r["reason"] for r in await self.pool.fetch("SELECT reason FROM ingest_rejections LIMIT 3")]


class DevicesTables(Tables):
    """Only the rows of some devices (and their patients) in a database that holds others: nothing is emptied,
    each phase sends its own devices' readings, and its count is what they added (``bench.scale``)."""

    def __init__(self, pool: asyncpg.Pool, devices: Sequence[BenchDevice]) -> None:
        super().__init__(pool)
        self.device_ids = [d.device_id for d in devices]
        self.patient_ids = [d.context.patient_id for d in devices]

    async def reset(self) -> None:
        pass

    async def count(self) -> int:
        return int(await self.pool.fetchval(OF_PATIENTS_COUNT, self.patient_ids))

    async def refused(self) -> list[str]:
        return [r["reason"] for r in await self.pool.fetch(OF_DEVICES_REFUSED, self.device_ids)]


OF_PATIENTS_COUNT = "SELECT count(*) FROM readings WHERE patient_id = ANY($1::uuid[])"
OF_DEVICES_REFUSED = "SELECT reason FROM ingest_rejections WHERE device_id = ANY($1::text[]) LIMIT 3"


async def check_stored(tables: Tables, phase: str, base: int, expected: int, wait: float = 0.0) -> None:
    """The tables hold exactly ``expected`` readings more than ``base`` and nothing was refused; fail loudly
    otherwise."""
    deadline = time.perf_counter() + wait
    while True:
        stored = await tables.count() - base
        if stored >= expected or time.perf_counter() >= deadline:
            break
        await asyncio.sleep(0.2)
    refused = await tables.refused()
    if stored != expected or refused:
        raise BenchError(
            f"{phase}: {stored} readings stored of {expected} sent"
            + (f"; rejections recorded: {'; '.join(refused)}" if refused else "")
            + (" - DATA LOST" if stored < expected else "")
        )


async def emptied(tables: Tables) -> int:
    """Ready the tables for a phase; the count the phase starts from."""
    await tables.reset()
    return await tables.count()


def cpu_note(phase: Phase) -> str:
    """The receiving processes' CPU: the cores they kept busy, and messages per CPU-second (the ratio per core)."""
    if phase.cpu <= 0:
        return ""
    return f"(CPU {phase.cpu:.2f} s = {phase.cpu / phase.seconds:.2f} cores; {phase.count / phase.cpu:,.0f}/CPU-s)"


def report(phase: Phase, note: str = "") -> None:
    say(
        f"  {phase.name:<24} {phase.count:>9,} {phase.unit:<8} in {phase.seconds:7.2f} s"
        f" = {phase.rate:>10,.0f} {phase.unit}/s{('  ' + note) if note else ''}"
    )


# --- phases -----------------------------------------------------------------------------------------------------


async def phase_copy(tables: Tables, records: list[tuple[Any, ...]]) -> Phase:
    base = await emptied(tables)
    async with tables.pool.acquire() as conn:
        started = time.perf_counter()
        await conn.copy_records_to_table("readings", records=records, columns=list(READINGS_COLUMNS))
        seconds = time.perf_counter() - started
    await check_stored(tables, "copy", base, len(records))
    return Phase("COPY (ceiling)", len(records), seconds)


async def phase_naive(tables: Tables, records: list[tuple[Any, ...]]) -> Phase:
    base = await emptied(tables)
    placeholders = ", ".join(f"${i}" for i in range(1, len(READINGS_COLUMNS) + 1))
    insert = f"INSERT INTO readings ({', '.join(READINGS_COLUMNS)}) VALUES ({placeholders})"
    async with tables.pool.acquire() as conn:
        started = time.perf_counter()
        for record in records:
            await conn.execute(insert, *record)
        seconds = time.perf_counter() - started
    await check_stored(tables, "naive", base, len(records))
    return Phase("naive INSERT per reading", len(records), seconds)


async def post_all(base: str, requests: list[tuple[str, bytes, int]], concurrency: int) -> float:
    """POST every body (``concurrency`` in flight); check each answer; returns the seconds taken."""
    pending = iter(requests)

    async def worker(client: httpx.AsyncClient) -> None:
        for token, body, count in pending:
            response = await client.post(
                f"{base}/api/v1/readings", content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )  # fmt: skip
            if response.status_code != 200:
                raise BenchError(f"HTTP {response.status_code}: {response.text[:300]}")
            answer = response.json()
            if answer.get("accepted") != count or answer.get("rejected"):
                raise BenchError(f"HTTP answer {str(answer)[:300]} for {count} new readings")

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker(client))
        return time.perf_counter() - started


async def phase_http(
    tables: Tables, url: str, requests: list[tuple[str, bytes, int]], concurrency: int, server: Helper
) -> Phase:
    base = await emptied(tables)
    seconds = await post_all(url, requests, concurrency)
    if not server.alive():
        raise server.died()
    total = sum(count for _, _, count in requests)
    await check_stored(tables, "http_batch", base, total)
    return Phase(f"HTTP {HTTP_BATCH}/request x{concurrency}", total, seconds)


async def start_mqtt_helper(kind: str, mqtt_url: str, client_id: str, state_dir: Path, extra: dict[str, str]) -> Helper:
    env = clean_env({"BENCH_MQTT_URL": mqtt_url, "BENCH_CLIENT_ID": client_id, "BENCH_STATE_DIR": str(state_dir),
                     **extra})  # fmt: skip
    helper = Helper(f"{kind} ({client_id})", state_dir / f"{kind}.log")
    try:
        await helper.start([sys.executable, "-m", "bench.common", kind], env, progress=True)
        await helper.wait_ready(60)
        await asyncio.sleep(0.5)  # let the SUBACK land before anything is published
    except BaseException:
        await helper.stop()
        raise
    return helper


class Consumers:
    """Consumer processes on one shared subscription, paced and waited for as one: their counts add up."""

    def __init__(self, helpers: list[Helper]) -> None:
        self.helpers = helpers
        self.changed = asyncio.Event()
        for helper in helpers:  # every helper's progress wakes whoever waits on the group
            helper.changed = self.changed

    @property
    def done(self) -> int:
        return sum(h.done for h in self.helpers)

    @property
    def confirmed(self) -> int:
        return sum(h.confirmed for h in self.helpers)

    def alive(self) -> bool:
        return all(h.alive() for h in self.helpers)

    def died(self) -> BenchError:
        return next((h.died() for h in self.helpers if not h.alive()), BenchError("a consumer stopped"))

    def cpu_seconds(self) -> float:
        return sum(h.cpu_seconds() for h in self.helpers)

    async def wait_progress(self, target: int, stall: float) -> float:
        """Wait until the consumers together report ``target`` messages; fail like ``Helper.wait_progress``."""
        last, last_change = self.done, time.perf_counter()
        while self.done < target:
            if not self.alive():
                raise self.died()
            if self.done != last:
                last, last_change = self.done, time.perf_counter()
            elif time.perf_counter() - last_change > stall:
                raise BenchError(f"consumers: stuck at {self.done} of {target} messages for {stall:.0f} s")
            self.changed.clear()
            if self.done < target:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 1.0)
        return time.perf_counter()


async def publish_and_wait(
    publisher: Publisher, helper: Helper | Consumers, messages: list[tuple[str, bytes]], window: int
) -> float:
    base = helper.done
    started = await publisher.send_paced(messages, helper, window, base)
    finished = await helper.wait_progress(base + len(messages), STALL_S)
    return finished - started


@dataclass(frozen=True)
class MqttRun:
    """What the MQTT phases of one round need."""

    tables: Tables
    db_url: str
    mqtt_url: str
    mqtt5: bool
    state_dir: Path
    run_id: str
    publisher: Publisher
    batch_messages: list[tuple[str, bytes]]
    single_messages: list[tuple[str, bytes]]
    warm: list[tuple[str, bytes]]
    ids_file: Path
    window: int
    consumers: int


async def phases_consumer(
    m: MqttRun, round_no: int, on_stop: Callable[[Helper], None] | None = None
) -> tuple[Phase, Phase]:
    """The real consumer in its own process (or ``--consumers`` of them on one shared subscription): 50-reading
    messages, then single-reading messages; ``on_stop`` sees each consumer before it is stopped."""
    consumer_ids = [f"telemon-bench-consumer-{m.run_id}-{round_no}-{k}" for k in range(m.consumers)]
    env = {"BENCH_DATABASE_URL": m.db_url}
    if m.consumers > 1:
        env["BENCH_SHARED_GROUP"] = f"bench{m.run_id}"
    helpers: list[Helper] = []
    try:
        for consumer_id in consumer_ids:
            helpers.append(await start_mqtt_helper("consumer", m.mqtt_url, consumer_id, m.state_dir, env))
        consumer = Consumers(helpers)
        await publish_and_wait(m.publisher, consumer, m.warm, m.window)
        readings = sum(len(json.loads(payload)["readings"]) for _, payload in m.batch_messages)
        base = await emptied(m.tables)
        seconds = await publish_and_wait(m.publisher, consumer, m.batch_messages, m.window)
        await check_stored(m.tables, "mqtt_batch", base, readings, DB_CHECK_TIMEOUT_S)
        batch = Phase(f"MQTT {MQTT_BATCH}/message", readings, seconds)
        report(batch, f"({len(m.batch_messages):,} messages)")

        base = await emptied(m.tables)
        cpu = consumer.cpu_seconds()
        seconds = await publish_and_wait(m.publisher, consumer, m.single_messages, m.window)
        cpu = consumer.cpu_seconds() - cpu
        await check_stored(m.tables, "mqtt_single", base, len(m.single_messages), DB_CHECK_TIMEOUT_S)
        name = "MQTT 1/message" if m.consumers == 1 else f"MQTT 1/message x{m.consumers}"
        single = Phase(name, len(m.single_messages), seconds, cpu=cpu)
        report(single, cpu_note(single))
        return batch, single
    finally:
        for helper in helpers:
            if on_stop is not None and helper.alive():
                on_stop(helper)
            await helper.stop()
        for consumer_id in consumer_ids:
            await asyncio.to_thread(clean_session, m.mqtt_url, consumer_id, m.mqtt5)


async def phase_raw(m: MqttRun, round_no: int) -> Phase:
    """The bare subscriber in its own process, on the same single-reading stream."""
    raw_id = f"telemon-bench-raw-{m.run_id}-{round_no}"
    raw: Helper | None = None
    try:
        raw = await start_mqtt_helper("raw", m.mqtt_url, raw_id, m.state_dir, {"BENCH_DEVICES_FILE": str(m.ids_file)})
        await publish_and_wait(m.publisher, raw, m.warm, m.window)
        base = raw.done
        cpu = raw.cpu_seconds()
        seconds = await publish_and_wait(m.publisher, raw, m.single_messages, m.window)
        cpu = raw.cpu_seconds() - cpu
        await asyncio.sleep(0.2)
        if raw.done - base != len(m.single_messages):
            raise BenchError(f"raw subscriber counted {raw.done - base} of {len(m.single_messages)} messages")
        phase = Phase("raw MQTT subscriber", len(m.single_messages), seconds, "messages", cpu)
        report(phase, cpu_note(phase))
        return phase
    finally:
        if raw is not None:
            await raw.stop()
        await asyncio.to_thread(clean_session, m.mqtt_url, raw_id, m.mqtt5)


# --- the run ----------------------------------------------------------------------------------------------------


async def measure(
    params: Params, pool: asyncpg.Pool, db_url: str, mqtt_url: str, mqtt5: bool, work: Path, run_id: str
) -> dict[str, list[Phase]]:
    now = dt.datetime.now(dt.UTC)
    prepared_at = time.perf_counter()
    everyone = await make_devices(pool, params.devices + 1, params.per_device, now)
    devices, warmup = everyone[:-1], everyone[-1]
    records = rows_for_copy(devices, now)
    requests = interleave(
        [[(d.token, dumps({"readings": c}), len(c)) for c in chunks(d.readings, HTTP_BATCH)] for d in devices]
    )
    ids_file = work / "devices.txt"
    ids_file.write_text("\n".join(d.device_id for d in everyone), encoding="utf-8")
    publisher = Publisher(mqtt_url, f"telemon-bench-pub-{run_id}", mqtt5, params.publisher_inflight)
    tables = Tables(pool)
    mqtt_run = MqttRun(
        tables, db_url, mqtt_url, mqtt5, work, run_id, publisher,
        batch_messages=mqtt_messages(devices, MQTT_BATCH, params.per_device),
        single_messages=mqtt_messages(devices, 1, params.single_per_device),
        warm=mqtt_messages([warmup], MQTT_BATCH, len(warmup.readings))[:20],
        ids_file=ids_file, window=params.window, consumers=params.consumers,
    )  # fmt: skip
    say(f"  {len(everyone)} patients and devices registered, readings and messages prepared"
        f" in {time.perf_counter() - prepared_at:.1f} s")  # fmt: skip

    results: dict[str, list[Phase]] = {name: [] for name in PHASES}
    results["naive"].append(await phase_naive(tables, records[: params.naive]))
    report(results["naive"][-1])
    server, base = await start_api_server(db_url, work)
    await asyncio.to_thread(publisher.connect)
    try:
        warm = [(warmup.token, dumps({"readings": c}), len(c)) for c in chunks(warmup.readings, HTTP_BATCH)]
        await post_all(base, warm[: params.http_concurrency], params.http_concurrency)
        for round_no in range(1, params.rounds + 1):
            say(f"round {round_no} of {params.rounds}")
            results["copy"].append(await phase_copy(tables, records))
            report(results["copy"][-1])
            results["http_batch"].append(await phase_http(tables, base, requests, params.http_concurrency, server))
            report(results["http_batch"][-1], f"({len(requests):,} requests)")
            batch, single = await phases_consumer(mqtt_run, round_no)
            results["mqtt_batch"].append(batch)
            results["mqtt_single"].append(single)
            results["mqtt_raw"].append(await phase_raw(mqtt_run, round_no))
    finally:
        await server.stop()
        await asyncio.to_thread(publisher.close)
    return results


async def run(params: Params, maintenance_url: str, mqtt_url: str, work: Path) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:10]
    mqtt5 = await asyncio.to_thread(broker_speaks_mqtt5, mqtt_url)
    say(
        f"telemon ingest benchmark ({params.mode}): {params.devices} devices, {params.readings:,} readings,"
        f" {params.single_messages:,} single-reading messages, {params.rounds} rounds, run {run_id},"
        f" {os.cpu_count()} CPUs"
    )
    broker = "the tests' broker" if params.tests_broker else "private Mosquitto"
    say(f"  PostgreSQL {redact(maintenance_url)}; {broker} {mqtt_url} (MQTT {'5' if mqtt5 else '3.1.1'})")
    say("  servers run as subprocesses: `telemon serve --roles api`; the consumer (open_services, role mqtt);"
        " the raw subscriber")  # fmt: skip
    async with fresh_database(maintenance_url) as db_url:
        say(f"  database {db_url.rsplit('/', 1)[-1].split('?')[0]} created and migrated")
        pool = await create_pool(db_url, max_size=4)
        try:
            results = await measure(params, pool, db_url, mqtt_url, mqtt5, work, run_id)
        finally:
            await pool.close()
    best = {name: max(phases, key=lambda p: p.rate) for name, phases in results.items()}
    say(f"best of {params.rounds} rounds (readings/s; raw: messages/s):")
    for name, phase in best.items():
        spread = ", ".join(f"{p.rate:,.0f}" for p in results[name])
        say(f"  {name + '_rps':<18} {phase.rate:>10,.0f}   (rounds: {spread})")
    rates = {f"{name}_rps": round(phase.rate, 1) for name, phase in best.items()}
    ratios = {key: best[phase].rate / best[base].rate for key, phase, base, _, _ in TARGETS}
    # the same ratio within each round (a phase and its baseline ran minutes apart at most): the spread
    by_round = {
        key: [p.rate / b.rate for p, b in zip(results[phase], results[base], strict=True)]
        for key, phase, base, _, _ in TARGETS
    }
    say("targets (best round against best round; in brackets, the ratio within each round):")
    verdicts: dict[str, str] = {}
    for key, _, _, threshold, what in TARGETS:
        verdicts[key] = "PASS" if ratios[key] >= threshold else "MISS"
        spread = ", ".join(f"{r:.0%}" for r in by_round[key])
        say(f"  {verdicts[key]}  {what}: {ratios[key]:.1%}   ({spread}; median {statistics.median(by_round[key]):.0%})")
    return {
        **rates,
        **{key: round(value, 4) for key, value in ratios.items()},
        "ratios_by_round": {key: [round(r, 4) for r in values] for key, values in by_round.items()},
        # messages per CPU-second of the receiving process(es), by round: the ratio per core
        "per_cpu_s_by_round": {
            name: [round(p.count / p.cpu) if p.cpu > 0 else None for p in results[name]]
            for name in ("mqtt_single", "mqtt_raw")
        },
        "targets": verdicts,
        "params": {
            "mode": params.mode, "rounds": params.rounds, "statistic": "best round", "devices": params.devices,
            "readings": params.readings, "readings_per_device": params.per_device, "http_batch": HTTP_BATCH,
            "http_concurrency": params.http_concurrency, "mqtt_batch": MQTT_BATCH,
            "mqtt_single_messages": params.single_messages, "naive_readings": params.naive,
            "mqtt_window": params.window, "publisher_inflight": params.publisher_inflight,
            "mqtt_protocol": "5" if mqtt5 else "3.1.1", "servers": "subprocess", "cpus": os.cpu_count(),
            "broker": "tests" if params.tests_broker else "private mosquitto", "consumers": params.consumers,
            "broker_inflight": params.broker_inflight,
            "run_id": run_id,
        },
    }  # fmt: skip


@contextlib.contextmanager
def private_broker(work: Path, inflight: int | None = None) -> Iterator[str]:
    """A Mosquitto of this run only, with the shipped settings that shape a flood (no queue-count limit, 100
    messages in flight per client unless ``inflight`` says otherwise, persistence) and anonymous clients: its
    authentication is not measured."""
    broker_dir = work / "mosquitto"
    (broker_dir / "data").mkdir(parents=True)
    config = (DEPLOY / "mosquitto.conf").read_text(encoding="utf-8")
    for key, value in (
        ("listener", None),
        ("password_file", None),
        ("acl_file", None),
        ("allow_anonymous", "true"),
        ("persistence_location", f"{broker_dir / 'data'}/"),
        *([("max_inflight_messages", str(inflight))] if inflight is not None else []),
    ):
        line = "" if value is None else f"{key} {value}"
        config, count = re.subn(rf"^{key}\s.*$", line, config, flags=re.MULTILINE)
        if count != 1:
            raise BenchError(f"{key} should appear once in {DEPLOY / 'mosquitto.conf'}")
    with start_mosquitto(config, broker_dir) as (host, port):
        yield f"mqtt://{host}:{port}"


def main(argv: Sequence[str] | None = None) -> int:
    params = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="telemon-bench-") as tmp:
        work = Path(tmp)
        broker = mqtt_broker() if params.tests_broker else private_broker(work, params.broker_inflight)
        try:
            with postgres_server() as maintenance_url, broker as mqtt_url:
                summary = asyncio.run(run(params, maintenance_url, mqtt_url, work))
        except BenchError as exc:
            print(f"bench.ingest: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
