"""``telemon simulate``: a synthetic GDM cohort sending to a running telemon as its real devices would.

1. The cohort (:mod:`~tools.simulator.physiology`) is drawn from the seed; its care team, patients and devices
   are created in the database with telemon's own functions (or found again: the device tokens are kept in the
   state file, ``TELEMON_STATE_DIR/simulator.json``, so a second run sends as the same devices).
2. Backfill: every sync the devices made from the start of the history (or from where the last run stopped)
   until now is sent, as fast as telemon takes it, with a progress bar.
3. Live: simulated time then runs ``speed`` times faster than the real clock, but never ahead of it (telemon
   refuses readings from the future): with ``--speed`` above 1 and a ``--duration``, the backfill stops
   ``(speed − 1) × duration`` before now, so that the live run catches up with the present as it ends. Without
   a duration, speed 1 (real time) is the only pace that can last, and the live run follows the clock.

Everything sent is added to the PLAN: the distinct readings telemon should store (a full-memory re-sync adds
none), the mistyped entries it should refuse, the planned hypoglycaemias with their readings, the patients who
stopped measuring, the re-syncs and the deliveries. It is returned in the report and written beside the state
file (``simulator-plan.json``), so that a test can hold telemon to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO, TypeVar

import asyncpg

from telemon.settings import SettingsError
from tools.simulator import clients
from tools.simulator.measures import Measure
from tools.simulator.physiology import (
    DAY,
    CohortSpec,
    DeviceTimeline,
    PatientPlan,
    Reading,
    Sync,
    all_syncs,
    make_cohort,
)
from tools.simulator.plan import (
    STATE_VERSION,
    TRANSPORTS,
    Options,
    Phase,
    Plan,
    Report,
    Tally,
    iso,
    parse_iso,
    plan_file,
    utcnow,
)
from tools.simulator.progress import Progress
from tools.simulator.records import (
    DeviceRecord,
    device_records,
    ensure_device,
    ensure_plan,
    ensure_team,
    load_state,
    record_delivery,
    records_json,
    save_state,
)

BACKFILL_BATCH = {"app": 100, "cgm": 288}  # readings per upload when an app or uploader sends its backlog
METER_SESSION = 200  # messages per MQTT session of a meter's backlog
SAVE_EVERY_S = 30.0
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------------------------


def _coalesce(syncs: list[Sync], size: int) -> list[Sync]:
    """A backlog of ordinary syncs as uploads of at most ``size`` items (full-memory syncs stay whole)."""
    merged: list[Sync] = []
    pending: list[Reading] = []
    measures: list[Measure] = []

    def flush(sync: Sync | None) -> None:
        if (pending or measures) and sync is not None:
            merged.append(Sync(sync.at, sync.patient, tuple(pending), measures=tuple(measures)))
            pending.clear()
            measures.clear()

    last: Sync | None = None
    for sync in syncs:
        if sync.full_memory or sync.clock_skew_s:
            flush(last)
            merged.append(sync)
            continue
        for reading in sync.readings:
            pending.append(reading)
            if len(pending) + len(measures) >= size:
                flush(sync)
        for measure in sync.measures:
            measures.append(measure)
            if len(pending) + len(measures) >= size:
                flush(sync)
        last = sync
    flush(last)
    return merged


class Sender:
    def __init__(
        self,
        options: Options,
        records: dict[str, DeviceRecord],
        plan: Plan,
        http: clients.Http,
        executor: ThreadPoolExecutor,
    ) -> None:
        self.options = options
        self.records = records
        self.plan = plan
        self.http = http
        self.executor = executor
        self.tallies = {t: Tally() for t in TRANSPORTS}
        self.abort = threading.Event()
        self._lock = threading.Lock()

    async def _thread(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def send(self, syncs: list[Sync], *, progress: Progress | None = None, backlog: bool = False) -> None:
        by_device: dict[str, list[Sync]] = {}
        for sync in syncs:
            by_device.setdefault(sync.patient.external_id, []).append(sync)
        gate = asyncio.Semaphore(self.options.concurrency)

        async def device(items: list[Sync]) -> None:
            async with gate:
                await self._device(items, progress, backlog)

        await asyncio.gather(*(device(items) for items in by_device.values()))

    def _count(self, transport: str, receipt: clients.Receipt, progress: Progress | None) -> None:
        with self._lock:
            self.tallies[transport].add(receipt)
        if progress is not None:
            progress.advance(receipt.readings)

    async def _device(self, items: list[Sync], progress: Progress | None, backlog: bool) -> None:
        p = items[0].patient
        record = self.records[p.external_id]
        if backlog and p.device_kind in BACKFILL_BATCH:
            items = _coalesce(items, BACKFILL_BATCH[p.device_kind])
        for sync in items:
            self.plan.add(sync)
        if p.device_kind == "meter":
            for session in _meter_sessions(items):
                if self.abort.is_set():
                    return
                answers, error = await self._thread(self._meter_session, record, session)
                for k, sync in enumerate(session):
                    if k < len(answers):
                        receipt = clients.Receipt.of(sync.size, answers[k])
                    else:
                        receipt = clients.Receipt(sync.size, error=error or "no receipt")
                    self._count("mqtt", receipt, progress)
            return
        for sync in items:
            if self.abort.is_set():
                return
            if p.device_kind == "app":
                payload = clients.app_payload(list(sync.readings), p.unit, p.zone, sync.measures)
                receipt = await self._thread(clients.post_app, self.http, record.token, payload)
                self._count("http", receipt, progress)
                continue
            if sync.readings:
                entries = clients.cgm_entries(list(sync.readings))
                receipt = await self._thread(clients.post_cgm, self.http, record.token, entries)
                self._count("nightscout", receipt, progress)
            if sync.measures:  # her phone sends her doses and measurements with the uploader's token
                payload = clients.app_payload([], p.unit, p.zone, sync.measures)
                receipt = await self._thread(clients.post_app, self.http, record.token, payload)
                self._count("http", receipt, progress)

    def _meter_session(self, record: DeviceRecord, syncs: list[Sync]) -> tuple[list[dict[str, Any]], str | None]:
        assert self.options.mqtt_url is not None
        now = dt.datetime.now(dt.UTC)  # the meter's clock when it sends is the true time plus its error
        payloads = [json.dumps(clients.meter_payload(sync, now)).encode() for sync in syncs]
        return clients.mqtt_session(
            self.options.mqtt_url,
            record.device_id,
            record.token,
            payloads,
            timeout=self.options.receipt_timeout,
            abort=self.abort,
        )


# ---------------------------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------------------------


def _new_state(options: Options, now: dt.datetime) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "seed": options.seed,
        "patients": options.patients,
        "cgm": options.cgm,
        "team": options.team,
        "created": iso(now),
        "start": iso(now - dt.timedelta(days=options.days)),
        "sent_until": None,
        "devices": {},
        "deliveries": [],
    }


def _check_state(state: dict[str, Any], options: Options) -> None:
    held = {k: state.get(k) for k in ("seed", "patients", "cgm", "team")}
    asked = {"seed": options.seed, "patients": options.patients, "cgm": options.cgm, "team": options.team}
    if state.get("version") != STATE_VERSION or held != asked:
        described = ", ".join(f"--{k} {v}" for k, v in held.items())
        raise SettingsError(
            f"--state: {options.state_file} holds another cohort ({described}); run with those options, or "
            f"remove the file (or give another --state) to start a new cohort"
        )


class Simulation:
    """One run: records, backfill, live; ``run()`` returns the report (also when stopped or cancelled)."""

    def __init__(
        self,
        options: Options,
        pool: asyncpg.Pool,
        *,
        stop: asyncio.Event | None = None,
        out: TextIO | None = None,
        on_backfill: Callable[[Report], None] | None = None,
    ) -> None:
        options.check()
        self.on_backfill = on_backfill
        self.options = options
        self.pool = pool
        self.stop = stop or asyncio.Event()
        self.out = out or sys.stderr
        self.state: dict[str, Any] = {}
        self.report: Report | None = None

    def _save(self) -> None:
        save_state(self.options.state_file, self.state)

    async def _setup(self) -> tuple[CohortSpec, list[PatientPlan], dict[str, DeviceRecord], int]:
        options = self.options
        state = load_state(options.state_file)
        if state is None:
            state = _new_state(options, utcnow())
        else:
            _check_state(state, options)
        self.state = state
        created, start = parse_iso(state.get("created")), parse_iso(state.get("start"))
        if created is None or start is None:
            raise SettingsError(f"--state: {options.state_file} is damaged (no created/start); remove it")
        spec = CohortSpec(options.seed, options.patients, options.cgm, created, start)
        cohort = make_cohort(spec)
        known = device_records(state)
        records: dict[str, DeviceRecord] = {}
        made = 0
        async with self.pool.acquire() as conn:
            team_id = await ensure_team(conn, options.team)
            for p in cohort:
                record, new = await ensure_device(
                    conn,
                    team_id,
                    known.get(p.external_id),
                    external_id=p.external_id,
                    display_name=p.display_name,
                    time_zone=p.time_zone,
                    due_date=p.due_date,
                    kind=p.device_kind,
                    label=f"simulated {p.device_kind} ({p.transport})",
                    profile=p.profile,
                    treatment=p.treatment,
                    readings_per_day=p.readings_per_day,
                    diagnosis_date=p.diagnosis_date,
                )
                records[p.external_id] = record
                made += new
                await ensure_plan(conn, record.patient_uuid, p.care)
        state["devices"] = records_json(records)
        self._save()
        if options.mqtt_url is None and any(p.device_kind == "meter" for p in cohort):
            raise SettingsError(
                "--mqtt-url: no broker known for the meters: give --mqtt-url, set TELEMON_MQTT_URL, or start "
                "`telemon serve` on embedded services (it writes TELEMON_STATE_DIR/endpoints.json)"
            )
        return spec, cohort, records, made

    async def _deliveries(self, plan: Plan, cohort: list[PatientPlan], until: dt.datetime) -> None:
        done = set(self.state.get("deliveries") or [])
        due = [p for p in cohort if p.delivery_at <= until and p.external_id not in done]
        if not due:
            return
        async with self.pool.acquire() as conn:
            for p in due:
                record = plan.records[p.external_id]
                await record_delivery(conn, record.patient_uuid, p.delivery_date)
                done.add(p.external_id)
                plan.deliveries.append(
                    {
                        "external_id": p.external_id,
                        "patient_id": record.patient_id,
                        "delivered_at": iso(p.delivery_at),
                        "date": p.delivery_date.isoformat(),
                    }
                )
        self.state["deliveries"] = sorted(done)

    async def _abort_on_stop(self, sender: Sender) -> None:
        """Stopping interrupts the sending at once (the state keeps the last step that was sent whole)."""
        await self.stop.wait()
        sender.abort.set()

    async def _wait_for_server(self, http: clients.Http) -> None:
        deadline = time.monotonic() + self.options.server_wait
        while True:
            if await asyncio.to_thread(http.answers):
                return
            if time.monotonic() >= deadline or self.stop.is_set():
                raise SettingsError(
                    f"--url: telemon does not answer at {http.base_url}/healthz; start `telemon serve` or give its URL"
                )
            await asyncio.sleep(0.5)

    async def run(self) -> Report:
        options = self.options
        http = clients.Http(options.url)
        await self._wait_for_server(http)
        spec, cohort, records, made = await self._setup()
        plan = Plan(cohort, records)
        timelines = [DeviceTimeline(spec, p) for p in cohort]
        executor = ThreadPoolExecutor(max_workers=options.concurrency + 1, thread_name_prefix="simulator")
        sender = Sender(options, records, plan, http, executor)
        report = self.report = Report(options, plan, sender.tallies, created_patients=made)
        loop = asyncio.get_running_loop()
        watcher = asyncio.create_task(self._abort_on_stop(sender))
        try:
            now = utcnow()
            sent_until = parse_iso(self.state.get("sent_until")) or spec.start
            lead = dt.timedelta(0)
            if options.live and options.duration and options.speed > 1:
                lead = dt.timedelta(seconds=(options.speed - 1) * options.duration)
            begin = max(sent_until, now - dt.timedelta(days=options.days), spec.start)
            end = max(begin, now - lead)
            report.backfill = Phase(begin, end)
            syncs = await loop.run_in_executor(executor, all_syncs, timelines, begin, end)
            await self._deliveries(plan, cohort, end)
            total = sum(s.size for s in syncs)
            progress = Progress(total, "backfill", enabled=options.progress, stream=self.out)
            started = time.monotonic()
            await sender.send(syncs, progress=progress, backlog=True)
            progress.close()
            report.backfill.seconds = time.monotonic() - started
            report.backfill.readings = total
            plan.until = end
            self.state["sent_until"] = iso(end)
            self._save()
            if self.on_backfill is not None:
                self.on_backfill(report)
            if options.live and not self.stop.is_set():
                await self._live(report, plan, sender, timelines, cohort, end)
        finally:
            watcher.cancel()
            sender.abort.set()
            executor.shutdown(wait=False, cancel_futures=True)
            http.close()
            with contextlib.suppress(OSError):
                self._save()
                report.plan_file = plan_file(options.state_file)
                save_state(report.plan_file, plan.as_dict())
        return report

    async def _live(
        self,
        report: Report,
        plan: Plan,
        sender: Sender,
        timelines: list[DeviceTimeline],
        cohort: list[PatientPlan],
        begin: dt.datetime,
    ) -> None:
        options = self.options
        loop = asyncio.get_running_loop()
        phase = report.live = Phase(begin, begin)
        started = time.monotonic()
        saved = started
        last = begin
        while True:
            elapsed = time.monotonic() - started
            final = self.stop.is_set() or (options.duration is not None and elapsed >= options.duration)
            span = elapsed if options.duration is None else min(elapsed, options.duration)
            target = min(utcnow(), begin + dt.timedelta(seconds=options.speed * span))
            if target > last:
                syncs = await loop.run_in_executor(sender.executor, all_syncs, timelines, last, target)
                await self._deliveries(plan, cohort, target)
                await sender.send(syncs)
                phase.readings += sum(s.size for s in syncs)
                last = phase.end = plan.until = target
                self.state["sent_until"] = iso(target)
                for timeline in timelines:
                    if timeline.patient.device_kind == "cgm":
                        timeline.forget((target - 3 * DAY).date())
            phase.seconds = time.monotonic() - started
            if time.monotonic() - saved > SAVE_EVERY_S:
                saved = time.monotonic()
                self._save()
            if final:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), timeout=options.tick)


async def simulate(
    options: Options, pool: asyncpg.Pool, *, stop: asyncio.Event | None = None, out: TextIO | None = None
) -> Report:
    return await Simulation(options, pool, stop=stop, out=out).run()


def _meter_sessions(items: list[Sync]) -> list[list[Sync]]:
    """A meter's syncs in MQTT sessions of at most ``METER_SESSION`` messages, a full-memory re-send always
    opening a session of its own, sent once the earlier ones are answered: as a meter does it (it re-sends its
    memory in a later sync, after its clock was fixed, say), and so that the re-sent copies arrive after the
    originals. Messages of one session may be stored in either order (the consumer stores two micro-batches at
    once), and the first copy of a reading stored is the one kept: the original, corrected by its sync's clock."""
    sessions: list[list[Sync]] = []
    for sync in items:
        opens_resend = sync.full_memory and not (sessions and sessions[-1][-1].full_memory)
        if not sessions or opens_resend or len(sessions[-1]) >= METER_SESSION:
            sessions.append([])
        sessions[-1].append(sync)
    return sessions
