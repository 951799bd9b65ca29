"""``python -m bench.latency [--quick]``: how long a dangerous reading takes to reach the clinician's screen.

A fresh, uniquely named database (migrated, dropped at the end even on failure) on the PostgreSQL the tests use
(127.0.0.1:5432 if it answers, else an embedded one) holds one care team: meter patients and CGM wearers with
14 days of history each (meters 5 readings a day; CGM every 5 minutes from the real traces of
``../shared/data/cgm``), and the alerts that history raised (one population pass before measuring). telemon then
runs as it ships (``telemon serve``, roles ``api,mqtt,scheduler`` in one process) on a Mosquitto of the run's own
(``bench.ingest.private_broker``: the shipped settings, anonymous clients; ``--tests-broker``: the tests' broker,
127.0.0.1:1883 or an embedded one, never while tests may run), and for the whole run, from a process of its own,
a background load:

- every meter syncs every ``--meter-period`` seconds (its new reading and the two before, which are duplicates),
  half of them over HTTP, half over MQTT (QoS 1, one message a sync); values 81–135 mg/dL, never low;
- every CGM wearer sends its next reading every ``--cgm-period`` seconds (5 minutes), half over HTTP, half MQTT;
- a clinician of the team has the dashboard open: its event stream (``/events``, server-sent events) is read
  all along.

Then, every few seconds (a random pause, so that the probes fall anywhere in the engine's rhythm), one reading of
a level-2 hypoglycaemia (45 mg/dL) is sent for a random patient who has none open (alternately over MQTT and HTTP,
from her own device), and timed from the publish to the ``hypo_l2`` alert arriving on the clinician's stream. Its
way is split with what the service writes anyway, read by this process on its own LISTEN connection:

- ``ingest``: publish → the readings' NOTIFY (sent by the ingest transaction's commit);
- ``wait``: that commit → the engine's transaction that opened the alert began (the alert's ``updated_at``,
  ``now()`` of that transaction): the wait for the worker's pass;
- ``evaluation``: → the alert's NOTIFY (sent by that transaction's commit);
- ``to_sse``: → the event on the dashboard's stream (the API process's LISTEN, fan-out, the stream's audit row).

Nothing is added to the service to measure it. The last line printed is one JSON object with ``p50_ms``,
``p95_ms``, ``p99_ms`` (publish to the dashboard), the split at each percentile, per transport, and the run's
parameters. Target: p99 ≤ 250 ms. ``--quick``: 200 meters, 20 CGM wearers, 60 probes (3 to 4 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import heapq
import json
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from alerts.engine import Engine
from bench.common import (
    CONTEXT_CYCLE,
    READINGS_COLUMNS,
    BenchError,
    Helper,
    Publisher,
    cgm_traces,
    clean_env,
    clean_session,
    dumps,
    fresh_database,
    iso_z,
    say,
    start_api_server,
)
from bench.dashboard import PASSWORD, pct, signed_in
from bench.ingest import private_broker
from ingest.mqtt import broker_speaks_mqtt5
from ingest.readings import prepare
from ingest.service import devices_by_ids
from telemon import channels, devices, patients, teams
from telemon.db import create_pool
from telemon.settings import redact
from telemon.topics import readings_topic
from tests.support.services import mqtt_broker, postgres_server

TARGET_P99_MS = 250.0
PROBE_MGDL = 45  # ADA level 2 is < 54 mg/dL (alerts.profiles.HYPO_L2_MGDL)
HISTORY_DAYS = 14
METER_SLOTS_H = (7.5, 10.0, 14.0, 21.0, 22.5)  # local-ish hours of a meter's day (UTC here; context given)
PROBE_TIMEOUT_S = 30.0
SPLIT = ("ingest", "wait", "evaluation", "to_sse")


@dataclass(frozen=True)
class Params:
    mode: str
    meters: int
    cgm: int
    meter_period: float
    cgm_period: float
    probes: int
    probe_interval: float
    warmup: float
    tests_broker: bool  # the tests' shared broker rather than a private Mosquitto


def parse_args(argv: Sequence[str] | None) -> Params:
    parser = argparse.ArgumentParser(prog="python -m bench.latency", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 meters, 20 CGM wearers, 60 probes (~3 min)")
    parser.add_argument("--meters", type=int, help="meter patients (default 1,000; quick 200)")
    parser.add_argument("--cgm", type=int, help="CGM wearers (default 100; quick 20)")
    parser.add_argument("--meter-period", type=float, help="seconds between two syncs of a meter (default 60)")
    parser.add_argument("--cgm-period", type=float, default=300.0, help="seconds between CGM readings (300)")
    parser.add_argument("--probes", type=int, help="hypoglycaemias timed (default 200; quick 60)")
    parser.add_argument("--probe-interval", type=float, help="mean seconds between probes (default 3; quick 2)")
    parser.add_argument(
        "--tests-broker",
        action="store_true",
        help="use the tests' broker (127.0.0.1:1883, else embedded amqtt) instead of a private Mosquitto;"
        " its other clients receive the load",
    )
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    params = Params(
        mode="quick" if quick else "full",
        meters=args.meters if args.meters is not None else (200 if quick else 1000),
        cgm=args.cgm if args.cgm is not None else (20 if quick else 100),
        meter_period=args.meter_period or 60.0,
        cgm_period=args.cgm_period,
        probes=args.probes or (60 if quick else 200),
        probe_interval=args.probe_interval or (2.0 if quick else 3.0),
        warmup=10.0 if quick else 20.0,
        tests_broker=bool(args.tests_broker),
    )
    if params.meters + params.cgm < params.probes or params.meters < 2:
        parser.error("--meters + --cgm must be at least --probes (each probe takes a patient of her own)")
    return params


# --- the population -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wearer:
    """A patient and her one device, as the load and the probes use them."""

    patient_id: uuid.UUID
    device_id: str
    token: str
    kind: str  # meter | cgm
    transport: str  # http | mqtt: how her device syncs (the probes alternate on their own)
    trace: int  # CGM: index of her trace and where in it she is


def meter_history(index: int, now: dt.datetime) -> list[dict[str, Any]]:
    day0 = now.replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=HISTORY_DAYS)
    rng = random.Random(index)
    out: list[dict[str, Any]] = []
    for day in range(HISTORY_DAYS):
        for slot, hour in enumerate(METER_SLOTS_H):
            at = day0 + dt.timedelta(days=day, hours=hour, minutes=rng.randint(-20, 20))
            if at >= now - dt.timedelta(hours=1):
                break
            context, meal, minutes = CONTEXT_CYCLE[slot]
            item: dict[str, Any] = {
                "id": f"h{day}-{slot}",
                "measured_at": iso_z(at),
                "unit": "mmol/L",
                "value": round(rng.uniform(4.5, 7.5), 1),
                "kind": "smbg",
                "context": context,
            }
            if meal is not None:
                item["meal"], item["minutes_after_meal"] = meal, minutes
            out.append(item)
    return out


def cgm_value(trace: int, step: int) -> int:
    values = cgm_traces()[trace % len(cgm_traces())]
    return values[(trace * 397 + step) % len(values)]


def cgm_history(trace: int, now: dt.datetime) -> list[dict[str, Any]]:
    count = HISTORY_DAYS * 288
    last = now.replace(microsecond=0) - dt.timedelta(minutes=5)
    return [
        {"id": f"h{i}", "measured_at": iso_z(last - dt.timedelta(minutes=5 * (count - 1 - i))), "unit": "mg/dL",
         "value": cgm_value(trace, i), "kind": "cgm"}
        for i in range(count)
    ]  # fmt: skip


async def populate(pool: asyncpg.Pool, params: Params) -> tuple[list[Wearer], str]:
    """One team, its clinician (returns her e-mail), the patients and devices, their history (COPY), and the
    alerts the history raises (one population pass, as the scheduler's would have)."""
    email = f"dr.latency.{uuid.uuid4().hex[:6]}@bench.example"
    made: list[tuple[uuid.UUID, str, str, str]] = []
    async with pool.acquire() as conn:
        team = await teams.create_team(conn, "Maternité latence")
        await teams.create_clinician(conn, email=email, password=PASSWORD, team_id=team, role="diabetologist",
                                     display_name="Dr Latence", language="en")  # fmt: skip
        for i in range(params.meters + params.cgm):
            kind = "cgm" if i >= params.meters else "meter"
            patient = await patients.create_patient(
                conn, team_id=team, external_id=f"IPP-{i:06d}", display_name=f"Patient {i}",
                time_zone="Europe/Paris", due_date=dt.date.today() + dt.timedelta(days=60),
                treatment="insulin" if i % 3 == 0 else "diet",
            )  # fmt: skip
            device = await devices.add_device(conn, patient_id=patient, kind=kind)
            made.append((patient, device.device_id, device.token, kind))
    wearers = [
        Wearer(p, d, token, kind, "http" if i % 2 == 0 else "mqtt", i) for i, (p, d, token, kind) in enumerate(made)
    ]
    contexts = await devices_by_ids(pool, [w.device_id for w in wearers])
    now = dt.datetime.now(dt.UTC)
    records: list[tuple[Any, ...]] = []
    for w in wearers:
        history = cgm_history(w.trace, now) if w.kind == "cgm" else meter_history(w.trace, now)
        prepared = prepare({"readings": history}, contexts[w.device_id], now=now, source="http", max_readings=10**6)
        if prepared.rejected:
            raise BenchError(f"history refused: {prepared.rejected[0].reason}")
        records.extend(tuple(getattr(row, column) for column in READINGS_COLUMNS) for row in prepared.rows)
    async with pool.acquire() as conn:
        await conn.copy_records_to_table("readings", records=records, columns=list(READINGS_COLUMNS))
    await Engine(pool).evaluate_population()
    async with pool.acquire() as conn:
        await conn.execute("VACUUM (ANALYZE)")
    return wearers, email


# --- telemon and the background load --------------------------------------------------------------------------


async def start_server(db_url: str, mqtt_url: str, client_id: str, work: Path) -> tuple[Helper, str]:
    """``telemon serve`` with every role, as docker-compose runs it; returns it once ``/readyz`` says 200."""
    return await start_api_server(
        db_url,
        work,
        roles="api,mqtt,scheduler",
        ready_s=90,
        TELEMON_MQTT_URL=mqtt_url,
        TELEMON_MQTT_CLIENT_ID=client_id,
        TELEMON_LOG_FORMAT="text",
    )


async def start_load(spec: dict[str, Any], work: Path) -> Helper:
    path = work / "load.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    load = Helper("background load (python -m bench.latency load)", work / "load.log")
    await load.start([sys.executable, "-m", "bench.latency", "load", str(path)], clean_env({}), progress=True)
    await load.wait_ready(60)
    return load


@dataclass
class _Device:
    """A device of the load: what it sends next and what it sent last (sent again: duplicates)."""

    wearer: dict[str, Any]
    sent: int = 0
    last: list[dict[str, Any]] = field(default_factory=list)

    def sync(self, rng: random.Random) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        self.sent += 1
        if self.wearer["kind"] == "cgm":
            value = cgm_value(self.wearer["trace"], HISTORY_DAYS * 288 + self.sent)
            return {"readings": [{"id": f"l{self.sent}", "measured_at": iso_z(now), "value": value, "unit": "mg/dL",
                                  "kind": "cgm"}]}  # fmt: skip
        context, meal, minutes = CONTEXT_CYCLE[self.sent % len(CONTEXT_CYCLE)]
        item: dict[str, Any] = {
            "id": f"l{self.sent}",
            "measured_at": iso_z(now),
            "unit": "mmol/L",
            "value": round(rng.uniform(4.5, 7.5), 1),
            "kind": "smbg",
            "context": context,
        }
        if meal is not None:
            item["meal"], item["minutes_after_meal"] = meal, minutes
        self.last = [*self.last[-2:], item]
        return {"readings": list(self.last)}


async def _run_load(spec: dict[str, Any]) -> None:
    """The load process: every device syncs on its own period (a random phase each), until stdin says stop.
    Prints ``P <syncs sent> <syncs failed>`` (HTTP answers other than 200; MQTT publishes refused)."""
    stop = threading.Event()

    def stdin_closed() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=stdin_closed, daemon=True).start()
    rng = random.Random(5)
    publisher = Publisher(spec["mqtt_url"], f"telemon-bench-load-{spec['run_id']}", spec["mqtt5"], 0)
    await asyncio.to_thread(publisher.connect)
    counts = {"sent": 0, "failed": 0}
    limit = asyncio.Semaphore(8)
    tasks: set[asyncio.Task[None]] = set()

    async def post(client: httpx.AsyncClient, token: str, body: bytes) -> None:
        async with limit:
            try:
                answer = await client.post(f"{spec['base']}/api/v1/readings", content=body,
                                           headers={"Authorization": f"Bearer {token}",
                                                    "Content-Type": "application/json"})  # fmt: skip
                if answer.status_code != 200:
                    counts["failed"] += 1
            except httpx.HTTPError:
                counts["failed"] += 1

    loop = asyncio.get_running_loop()
    start = loop.time()
    devices_ = [_Device(w) for w in spec["devices"]]
    due = [
        (start + rng.uniform(0, spec["cgm_period"] if d.wearer["kind"] == "cgm" else spec["meter_period"]), i)
        for i, d in enumerate(devices_)
    ]
    heapq.heapify(due)
    print("READY", flush=True)
    last_report = 0.0
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=8)) as client:
        while not stop.is_set():
            at, i = due[0]
            pause = at - loop.time()
            if pause > 0:
                await asyncio.sleep(min(pause, 0.2))
            else:
                heapq.heapreplace(due, (at + (spec["cgm_period"] if devices_[i].wearer["kind"] == "cgm"
                                              else spec["meter_period"]), i))  # fmt: skip
                device = devices_[i]
                body = dumps(device.sync(rng))
                counts["sent"] += 1
                if device.wearer["transport"] == "http":
                    task = asyncio.create_task(post(client, device.wearer["token"], body))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                elif publisher.client.publish(readings_topic(device.wearer["device_id"]), body, qos=1).rc:
                    counts["failed"] += 1
            if loop.time() - last_report >= 1.0:
                last_report = loop.time()
                print(f"P {counts['sent']} {counts['failed']}", flush=True)
        if tasks:
            await asyncio.wait(tasks, timeout=30)
    print(f"P {counts['sent']} {counts['failed']}", flush=True)
    await asyncio.to_thread(publisher.close)


# --- the probes -----------------------------------------------------------------------------------------------


@dataclass
class Probe:
    number: int
    wearer: Wearer
    transport: str
    published: float = 0.0  # time.time() just before the publish (or the POST)
    committed: float | None = None  # the readings' NOTIFY naming her reached this process
    alert_notified: float | None = None  # the alert's NOTIFY reached this process
    on_screen: float | None = None  # the alert's event came on the clinician's stream
    alert_id: int | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    split: dict[str, float] = field(default_factory=dict)  # ms

    @property
    def total_ms(self) -> float:
        assert self.on_screen is not None
        return (self.on_screen - self.published) * 1000


class Watch:
    """This process's view of the way: its own LISTEN connection (both channels) and the clinician's stream."""

    def __init__(self) -> None:
        self.probe: Probe | None = None
        self.events = 0
        self.hello = asyncio.Event()

    def on_notify(self, _conn: Any, _pid: int, channel: str, payload: str) -> None:
        at = time.time()
        probe = self.probe
        if probe is None:
            return
        patient = str(probe.wearer.patient_id)
        if patient not in payload:
            return
        if channel == channels.READINGS:
            if probe.committed is None:
                probe.committed = at
        elif probe.alert_notified is None:
            data = json.loads(payload)
            if data.get("rule") == "hypo_l2":
                probe.alert_notified = at

    async def read_stream(self, http: httpx.AsyncClient) -> None:
        async with http.stream("GET", "/events", timeout=None) as response:
            if response.status_code != 200:
                raise BenchError(f"/events answered {response.status_code}")
            kind = None
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    at = time.time()
                    self.events += 1
                    if kind == "hello":
                        self.hello.set()
                    elif kind == "alert":
                        self._alert(json.loads(line[6:]), at)
                    kind = None

    def _alert(self, data: dict[str, Any], at: float) -> None:
        probe = self.probe
        if (
            probe is not None
            and probe.on_screen is None
            and data.get("patient_id") == str(probe.wearer.patient_id)
            and data.get("rule") == "hypo_l2"
        ):
            probe.on_screen, probe.alert_id = at, data.get("id")
            probe.arrived.set()


async def send_probe(probe: Probe, publisher: Publisher, http: httpx.AsyncClient, base: str) -> None:
    at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    w = probe.wearer
    item = {"id": f"probe-{probe.number}", "measured_at": iso_z(at), "value": PROBE_MGDL, "unit": "mg/dL",
            "kind": "cgm" if w.kind == "cgm" else "smbg"}  # fmt: skip
    body = dumps({"readings": [item]})
    if probe.transport == "mqtt":
        probe.published = time.time()
        if publisher.client.publish(readings_topic(w.device_id), body, qos=1).rc:
            raise BenchError("publishing a probe failed")
    else:
        probe.published = time.time()
        answer = await http.post(
            f"{base}/api/v1/readings",
            content=body,
            headers={"Authorization": f"Bearer {w.token}", "Content-Type": "application/json"},
        )
        if answer.status_code != 200 or answer.json().get("accepted") != 1:
            raise BenchError(f"probe answered {answer.status_code}: {answer.text[:200]}")


async def complete(probe: Probe, pool: asyncpg.Pool) -> None:
    """The split of a probe that arrived, from the alert's ``updated_at`` (``now()`` of the engine's transaction
    that wrote it) and what this process heard."""
    started = await pool.fetchval("SELECT extract(epoch FROM updated_at)::float8 FROM alerts WHERE id = $1",
                                  probe.alert_id)  # fmt: skip
    if started is None or probe.committed is None or probe.alert_notified is None or probe.on_screen is None:
        raise BenchError(f"probe {probe.number}: its alert or a notification is missing")
    probe.split = {
        "ingest": (probe.committed - probe.published) * 1000,
        "wait": (started - probe.committed) * 1000,
        "evaluation": (probe.alert_notified - started) * 1000,
        "to_sse": (probe.on_screen - probe.alert_notified) * 1000,
    }


async def run_probes(
    params: Params, wearers: list[Wearer], watch: Watch, pool: asyncpg.Pool, publisher: Publisher, base: str
) -> tuple[list[Probe], int]:
    rng = random.Random(17)
    taken = {r["patient_id"] for r in await pool.fetch("SELECT patient_id FROM alerts WHERE rule = 'hypo_l2'")}
    candidates = [w for w in wearers if w.patient_id not in taken]
    rng.shuffle(candidates)
    if len(candidates) < params.probes:
        raise BenchError(f"only {len(candidates)} patients without a level-2 hypoglycaemia for {params.probes} probes")
    done: list[Probe] = []
    missed = 0
    async with httpx.AsyncClient(timeout=30) as http:
        for number, wearer in enumerate(candidates[: params.probes]):
            await asyncio.sleep(rng.uniform(0.5, 1.5) * params.probe_interval)
            probe = Probe(number, wearer, "mqtt" if number % 2 == 0 else "http")
            watch.probe = probe
            await send_probe(probe, publisher, http, base)
            try:
                await asyncio.wait_for(probe.arrived.wait(), PROBE_TIMEOUT_S)
            except TimeoutError:
                missed += 1
                say(f"  probe {number}: no alert on the dashboard after {PROBE_TIMEOUT_S:.0f} s")
                continue
            await asyncio.sleep(0.05)  # the NOTIFYs this process hears may come a moment after the stream's event
            await complete(probe, pool)
            done.append(probe)
            if (number + 1) % 20 == 0:
                recent = [p.total_ms for p in done[-20:]]
                say(f"  {number + 1:>4} probes: last 20 p50 {pct(recent, 50):6.1f} ms, max {max(recent):6.1f} ms")
    watch.probe = None
    return done, missed


# --- the run --------------------------------------------------------------------------------------------------


def figures(probes: Sequence[Probe]) -> dict[str, Any]:
    totals = [p.total_ms for p in probes]
    out: dict[str, Any] = {f"p{q}_ms": round(pct(totals, q), 1) for q in (50, 95, 99)}
    out["max_ms"] = round(max(totals, default=float("nan")), 1)
    for q in (50, 95, 99):
        out[f"split_p{q}_ms"] = {k: round(pct([p.split[k] for p in probes], q), 1) for k in SPLIT}
    return out


def table(name: str, probes: Sequence[Probe]) -> None:
    if not probes:
        return
    say(f"  {name:<7} n={len(probes):>3}  {'':>10} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}")
    rows = [("total", [p.total_ms for p in probes])] + [(k, [p.split[k] for p in probes]) for k in SPLIT]
    for label, values in rows:
        say(f"  {'':<13} {label:>10} {pct(values, 50):8.1f} {pct(values, 95):8.1f} {pct(values, 99):8.1f}"
            f" {max(values):8.1f}")  # fmt: skip


async def run(params: Params, maintenance_url: str, mqtt_url: str, work: Path) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:10]
    mqtt5 = await asyncio.to_thread(broker_speaks_mqtt5, mqtt_url)
    say(f"bench.latency ({params.mode}): {params.meters} meters syncing every {params.meter_period:.0f} s and"
        f" {params.cgm} CGM wearers every {params.cgm_period:.0f} s (half HTTP, half MQTT), a dashboard on the"
        f" event stream; {params.probes} level-2 hypoglycaemias every ~{params.probe_interval:.0f} s; run {run_id},"
        f" {os.cpu_count()} CPUs")  # fmt: skip
    say(f"  PostgreSQL {redact(maintenance_url)}; broker {mqtt_url} (MQTT {'5' if mqtt5 else '3.1.1'})")
    client_id = f"telemon-bench-latency-{run_id}"
    async with fresh_database(maintenance_url, "telemon_bench_latency") as db_url:
        pool = await create_pool(db_url, max_size=4)
        listener: asyncpg.Connection | None = None
        server: Helper | None = None
        load: Helper | None = None
        publisher = Publisher(mqtt_url, f"telemon-bench-probe-{run_id}", mqtt5, 0)
        try:
            started = time.perf_counter()
            wearers, email = await populate(pool, params)
            stored = await pool.fetchval("SELECT count(*) FROM readings")
            alerts = await pool.fetchval("SELECT count(*) FROM alerts")
            say(f"  {len(wearers):,} patients, {stored:,} readings of history, {alerts:,} alerts:"
                f" {time.perf_counter() - started:.1f} s")  # fmt: skip
            server, base = await start_server(db_url, mqtt_url, client_id, work)
            watch = Watch()
            listener = await asyncpg.connect(db_url)
            for channel in (channels.READINGS, channels.ALERTS):
                await listener.add_listener(channel, watch.on_notify)
            http = await signed_in(base, email)
            stream = asyncio.create_task(watch.read_stream(http))
            await asyncio.wait_for(watch.hello.wait(), 30)
            await asyncio.to_thread(publisher.connect)
            spec = {"base": base, "mqtt_url": mqtt_url, "mqtt5": mqtt5, "run_id": run_id,
                    "meter_period": params.meter_period, "cgm_period": params.cgm_period,
                    "devices": [{"device_id": w.device_id, "token": w.token, "kind": w.kind,
                                 "transport": w.transport, "trace": w.trace} for w in wearers]}  # fmt: skip
            load = await start_load(spec, work)
            say(f"  telemon serving, background load and dashboard stream running; warming up {params.warmup:.0f} s")
            await asyncio.sleep(params.warmup)
            measured_at = time.perf_counter()
            probes, missed = await run_probes(params, wearers, watch, pool, publisher, base)
            seconds = time.perf_counter() - measured_at
            syncs, failed = load.done, load.confirmed
            if stream.done():
                raise BenchError(f"the dashboard's stream ended: {stream.exception()!r}")
            stream.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stream
            await http.aclose()
        finally:
            if load is not None:
                await load.stop()
            if server is not None:
                await server.stop()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(publisher.close)
            if listener is not None:
                await listener.close()
            await pool.close()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(clean_session, mqtt_url, client_id, mqtt5)
    if not probes:
        raise BenchError("no probe reached the dashboard")
    say(f"background load: {syncs:,} syncs ({failed} failed), {watch.events:,} events on the dashboard's stream;"
        f" {len(probes)} probes in {seconds:.0f} s, {missed} missed")  # fmt: skip
    say("publish → alert on the dashboard's stream, ms (split: ingest commit, wait for the engine's pass, evaluation,"
        " NOTIFY to the stream):")  # fmt: skip
    table("all", probes)
    by_transport = {t: [p for p in probes if p.transport == t] for t in ("mqtt", "http")}
    for transport, subset in by_transport.items():
        table(transport, subset)
    slowest = sorted(probes, key=lambda p: -p.total_ms)[:5]
    say("slowest: " + "; ".join(
        f"{p.total_ms:.0f} ms {p.transport} ({' / '.join(f'{p.split[k]:.0f}' for k in SPLIT)})" for p in slowest
    ))  # fmt: skip
    summary = figures(probes)
    verdict = "PASS" if summary["p99_ms"] <= TARGET_P99_MS and not missed else "MISS"
    say(
        f"target: {verdict}  p99 {summary['p99_ms']:.1f} ms ≤ {TARGET_P99_MS:.0f} ms"
        + (f", {missed} missed" if missed else "")
    )
    return summary | {
        "by_transport": {t: figures(s) for t, s in by_transport.items() if s},
        "slowest_ms": [
            {"total": round(p.total_ms, 1), "transport": p.transport} | {k: round(p.split[k], 1) for k in SPLIT}
            for p in slowest
        ],
        "probes": len(probes),
        "missed": missed,
        "target": verdict,
        "params": {
            "mode": params.mode, "meters": params.meters, "cgm": params.cgm, "meter_period_s": params.meter_period,
            "cgm_period_s": params.cgm_period, "probe_interval_s": params.probe_interval, "history_days": HISTORY_DAYS,
            "syncs": syncs, "sync_failures": failed, "roles": "api,mqtt,scheduler in one process",
            "mqtt_protocol": "5" if mqtt5 else "3.1.1", "cpus": os.cpu_count(), "run_id": run_id,
            "broker": "tests" if params.tests_broker else "private mosquitto",
            "statistic": "publish (time.time) to the event on the dashboard's stream; split from NOTIFYs heard by"
            " the bench and the alert's updated_at",
        },
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["load"] and len(args) == 2:
        asyncio.run(_run_load(json.loads(Path(args[1]).read_text(encoding="utf-8"))))
        return 0
    params = parse_args(args)
    with tempfile.TemporaryDirectory(prefix="telemon-bench-latency-") as tmp:
        broker = mqtt_broker() if params.tests_broker else private_broker(Path(tmp))
        try:
            with postgres_server() as maintenance_url, broker as mqtt_url:
                summary = asyncio.run(run(params, maintenance_url, mqtt_url, Path(tmp)))
        except BenchError as exc:
            print(f"bench.latency: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
