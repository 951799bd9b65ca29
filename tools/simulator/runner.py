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
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import asyncpg

from telemon.settings import SettingsError
from tools.simulator import clients
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
from tools.simulator.progress import Progress
from tools.simulator.records import (
    DeviceRecord,
    device_records,
    ensure_device,
    ensure_team,
    load_state,
    record_delivery,
    records_json,
    save_state,
)

DEFAULT_URL = clients.DEFAULT_URL
DEFAULT_TEAM = "Simulation"
STATE_NAME = "simulator.json"
STATE_VERSION = 1
TRANSPORTS = ("mqtt", "http", "nightscout")
BACKFILL_BATCH = {"app": 100, "cgm": 288}  # readings per upload when an app or uploader sends its backlog
METER_SESSION = 200  # messages per MQTT session of a meter's backlog
SAVE_EVERY_S = 30.0
T = TypeVar("T")


def plan_file(state_file: Path) -> Path:
    """Where the plan of the cohort of ``state_file`` is written: ``simulator.json`` → ``simulator-plan.json``."""
    return state_file.with_name(f"{state_file.stem}-plan.json")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment is not None else None


def _parse(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class Options:
    seed: int = 1
    patients: int = 40
    cgm: int = 4
    days: float = 21.0
    team: str = DEFAULT_TEAM
    url: str = DEFAULT_URL
    mqtt_url: str | None = None
    state_file: Path = Path(".telemon") / STATE_NAME
    speed: float = 1.0
    live: bool = False
    duration: float | None = None  # real seconds of live traffic; None: until stopped
    concurrency: int = 8
    receipt_timeout: float = 60.0
    server_wait: float = 10.0  # seconds to wait for telemon to answer /healthz
    tick: float = 2.0  # real seconds between live steps
    progress: bool = True

    def check(self) -> None:
        if self.seed < 0:
            raise SettingsError(f"--seed: {self.seed} must be 0 or more")
        if not 1 <= self.patients <= 10_000:
            raise SettingsError(f"--patients: {self.patients} is outside 1..10000")
        if not 0 <= self.cgm <= self.patients:
            raise SettingsError(f"--cgm: {self.cgm} must be between 0 and --patients ({self.patients})")
        if not 0 <= self.days <= 120:
            raise SettingsError(f"--days: {self.days:g} is outside 0..120")
        if not 0 < self.speed <= 100_000:
            raise SettingsError(f"--speed: {self.speed:g} must be above 0 (1 = real time)")
        if self.duration is not None and self.duration < 0:
            raise SettingsError(f"--duration: {self.duration:g} must be 0 or more seconds")
        if not 1 <= self.concurrency <= 256:
            raise SettingsError(f"--concurrency: {self.concurrency} is outside 1..256")
        if not self.team.strip():
            raise SettingsError("--team: give a team name")


# ---------------------------------------------------------------------------------------------------------------
# Receipts and the plan
# ---------------------------------------------------------------------------------------------------------------

_NUMBERS = re.compile(r"\d+(?:[.,:]\d+)*")


@dataclass
class Tally:
    """What one transport sent and what telemon answered."""

    messages: int = 0
    readings: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    unanswered_messages: int = 0
    unanswered_readings: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, receipt: clients.Receipt) -> None:
        self.messages += 1
        self.readings += receipt.readings
        if receipt.error is not None:
            self.unanswered_messages += 1
            self.unanswered_readings += receipt.readings
            self.errors[_NUMBERS.sub("#", receipt.error)] += 1
            return
        self.accepted += receipt.accepted
        self.duplicates += receipt.duplicates
        self.rejected += len(receipt.rejected)
        for _, reason in receipt.rejected:
            self.reasons[_NUMBERS.sub("#", reason)] += 1

    def merge(self, other: Tally) -> None:
        for name in ("messages", "readings", "accepted", "duplicates", "rejected"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.unanswered_messages += other.unanswered_messages
        self.unanswered_readings += other.unanswered_readings
        self.reasons.update(other.reasons)
        self.errors.update(other.errors)

    def as_dict(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "readings": self.readings,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "rejected_reasons": dict(self.reasons.most_common(10)),
            "rejected_kinds": dict(rejection_kinds(self.reasons).most_common()),
            "unanswered_messages": self.unanswered_messages,
            "unanswered_readings": self.unanswered_readings,
            "errors": dict(self.errors.most_common(5)),
        }


# What the simulator's rejections are, by the words of telemon's reason (ingest.readings): the mistyped manual entries
# of the phone apps (a value typed ten times too large, physiology.py) are the only ones it sends on purpose.
_REJECTION_KINDS = (
    ("plausible range", "value outside the plausible range (simulated typos)"),
    ("Nightscout answer", "refused through the Nightscout API (its answers give counts, not reasons)"),
    ("in the future", "measured in the future"),
    ("before this pregnancy began", "measured before the pregnancy began"),
    ("after clock correction", "time out of range after the clock correction"),
)


def rejection_kind(reason: str) -> str:
    """A short name for a rejection reason (numbers already replaced by #): the simulator's own cause when known,
    else telemon's reason itself."""
    for words, kind in _REJECTION_KINDS:
        if words in reason:
            return kind
    return reason if len(reason) <= 80 else reason[:79] + "…"


def rejection_kinds(reasons: Counter[str]) -> Counter[str]:
    """Rejection counts by :func:`rejection_kind`."""
    kinds: Counter[str] = Counter()
    for reason, count in reasons.items():
        kinds[rejection_kind(reason)] += count
    return kinds


def describe_rejections(reasons: Counter[str]) -> str:
    """How many readings telemon rejected and what they were, grouped, the most frequent first:
    ``12 rejected: 7 value outside the plausible range (simulated typos), 5 measured in the future``."""
    kinds = rejection_kinds(reasons)
    total = sum(kinds.values())
    if not total:
        return "0 rejected"
    return f"{total:,} rejected: " + ", ".join(f"{count:,} {kind}" for kind, count in kinds.most_common())


@dataclass
class PlannedHypo:
    external_id: str
    patient_id: str
    day: str  # the patient's local date
    kind: str  # smbg | cgm
    readings: list[Reading] = field(default_factory=list)

    @property
    def level(self) -> str:
        return "hypo_l2" if any(r.event == "hypo_l2" for r in self.readings) else "hypo_l1"

    @property
    def first_at(self) -> dt.datetime:
        return min(r.taken_at for r in self.readings)

    def as_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "patient_id": self.patient_id,
            "day": self.day,
            "kind": self.kind,
            "level": self.level,
            "readings": [
                {"taken_at": _iso(r.taken_at), "device_time": _iso(r.stamp), "value_mgdl": round(r.value_mgdl, 2)}
                for r in sorted(self.readings, key=lambda r: r.taken_at)
            ],
        }


class Plan:
    """What telemon should make of everything sent so far."""

    def __init__(self, cohort: list[PatientPlan], records: dict[str, DeviceRecord]) -> None:
        self.cohort = cohort
        self.records = records
        self.keys: dict[str, set[tuple[str, dt.datetime, float]]] = {p.external_id: set() for p in cohort}
        self.refused: dict[str, set[tuple[str, dt.datetime, float]]] = {p.external_id: set() for p in cohort}
        self.last_taken: dict[str, dt.datetime] = {}
        self.hypos: dict[tuple[str, str], PlannedHypo] = {}
        self.resyncs: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.sent = 0
        self.until: dt.datetime | None = None
        self._lock = threading.Lock()

    def add(self, sync: Sync) -> None:
        p = sync.patient
        record = self.records[p.external_id]
        with self._lock:
            self.sent += len(sync.readings)
            keys, refused = self.keys[p.external_id], self.refused[p.external_id]
            new = 0
            for r in sync.readings:
                if r.key not in keys:
                    new += 1
                    keys.add(r.key)
                if r.event == "typo":
                    refused.add(r.key)
                    continue
                last = self.last_taken.get(p.external_id)
                if last is None or r.taken_at > last:
                    self.last_taken[p.external_id] = r.taken_at
                if r.event in ("hypo_l1", "hypo_l2"):
                    day = r.taken_at.astimezone(p.zone).date().isoformat()
                    hypo = self.hypos.setdefault(
                        (p.external_id, day), PlannedHypo(p.external_id, record.patient_id, day, r.kind)
                    )
                    if all(h.key != r.key for h in hypo.readings):
                        hypo.readings.append(r)
            if sync.full_memory:
                self.resyncs.append(
                    {
                        "external_id": p.external_id,
                        "patient_id": record.patient_id,
                        "at": _iso(sync.at),
                        "readings": len(sync.readings),
                        "already_sent": len(sync.readings) - new,
                        "clock_skew_s": sync.clock_skew_s,
                    }
                )

    def stored_readings(self, external_id: str) -> int:
        """Distinct readings of a patient telemon should hold: sent once or many times, not refused."""
        return len(self.keys[external_id] - self.refused[external_id])

    @property
    def readings(self) -> int:
        return sum(self.stored_readings(p.external_id) for p in self.cohort)

    @property
    def refusals(self) -> int:
        return sum(len(keys) for keys in self.refused.values())

    def hypoglycaemias(self) -> list[PlannedHypo]:
        return sorted(self.hypos.values(), key=lambda h: (h.external_id, h.day))

    def stopped(self) -> list[dict[str, Any]]:
        """Patients who stopped measuring before the end of what was sent (not after a delivery)."""
        found = []
        for p in self.cohort:
            if p.stop_at is None or self.until is None or p.stop_at > self.until or p.delivery_at <= p.stop_at:
                continue
            record = self.records[p.external_id]
            found.append(
                {
                    "external_id": p.external_id,
                    "patient_id": record.patient_id,
                    "device": p.device_kind,
                    "stopped_at": _iso(p.stop_at),
                    "last_reading_at": _iso(self.last_taken.get(p.external_id)),
                }
            )
        return found

    def patients(self) -> list[dict[str, Any]]:
        return [
            {
                "external_id": p.external_id,
                "patient_id": self.records[p.external_id].patient_id,
                "device_id": self.records[p.external_id].device_id,
                "device": p.device_kind,
                "transport": p.transport,
                "unit": p.unit,
                "time_zone": p.time_zone,
                "profile": p.profile,
                "treatment": p.treatment,
                "due_date": p.due_date.isoformat(),
                "delivery_at": _iso(p.delivery_at),
                "clock_skew_s": p.clock_skew_s,
                "clock_fixed_at": _iso(p.clock_fixed_at),
                "features": p.features(),
                "roles": list(p.roles),
                "readings": self.stored_readings(p.external_id),
                "refused": len(self.refused[p.external_id]),
            }
            for p in self.cohort
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "readings_sent": self.sent,
            "readings": self.readings,
            "refused": self.refusals,
            "hypoglycaemias": len(self.hypos),
            "stopped": len(self.stopped()),
            "resyncs": len(self.resyncs),
            "deliveries": len(self.deliveries),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "until": _iso(self.until),
            **self.summary(),
            "patients": self.patients(),
            "hypoglycaemias": [h.as_dict() for h in self.hypoglycaemias()],
            "stopped": self.stopped(),
            "resyncs": self.resyncs,
            "deliveries": self.deliveries,
        }


@dataclass
class Phase:
    start: dt.datetime
    end: dt.datetime
    seconds: float = 0.0
    readings: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": _iso(self.start),
            "to": _iso(self.end),
            "seconds": round(self.seconds, 2),
            "readings": self.readings,
        }


@dataclass
class Report:
    options: Options
    plan: Plan
    tallies: dict[str, Tally]
    backfill: Phase | None = None
    live: Phase | None = None
    plan_file: Path | None = None
    created_patients: int = 0

    def total(self) -> Tally:
        total = Tally()
        for tally in self.tallies.values():
            total.merge(tally)
        return total

    def as_dict(self) -> dict[str, Any]:
        devices = Counter(p.transport for p in self.plan.cohort)
        return {
            "team": self.options.team,
            "seed": self.options.seed,
            "patients": len(self.plan.cohort),
            "created_patients": self.created_patients,
            "devices": {t: devices.get(t, 0) for t in TRANSPORTS},
            "state_file": str(self.options.state_file),
            "plan_file": str(self.plan_file) if self.plan_file else None,
            "backfill": self.backfill.as_dict() if self.backfill else None,
            "live": ({**self.live.as_dict(), "speed": self.options.speed} if self.live else None),
            "sent": {t: self.tallies[t].as_dict() for t in TRANSPORTS},
            "total": self.total().as_dict(),
            "plan": self.plan.summary(),
        }


def format_report(report: Report) -> str:
    data = report.as_dict()
    lines = [
        f"telemon simulate: {data['patients']} patients of team {data['team']!r} (seed {data['seed']}): "
        f"{data['devices']['mqtt']} meters over MQTT, {data['devices']['http']} phone apps over HTTP, "
        f"{data['devices']['nightscout']} CGM uploaders over the Nightscout API"
    ]
    for name, phase in (("backfill", report.backfill), ("live", report.live)):
        if phase is not None:
            lines.append(
                f"{name}: {_iso(phase.start)} → {_iso(phase.end)} (simulated), {phase.readings:,} readings sent "
                f"in {phase.seconds:.1f} s"
            )
    for transport in TRANSPORTS:
        t = report.tallies[transport]
        if not t.messages:
            continue
        line = (
            f"  {transport:<10} {t.messages:>7,} messages {t.readings:>8,} readings: accepted {t.accepted:,}, "
            f"duplicates {t.duplicates:,}, {describe_rejections(t.reasons)}"
        )
        if t.unanswered_messages:
            line += f"; no receipt for {t.unanswered_readings:,} ({'; '.join(t.errors)})"
        lines.append(line)
    plan = data["plan"]
    lines.append(
        f"plan: {plan['readings']:,} distinct readings to store, {plan['refused']} mistyped entries to refuse, "
        f"{plan['hypoglycaemias']} hypoglycaemias, {plan['stopped']} patients who stopped measuring, "
        f"{plan['resyncs']} full-memory re-sync messages, {plan['deliveries']} deliveries"
    )
    lines.append(f"state: {data['state_file']}   plan: {data['plan_file']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Sending
# ---------------------------------------------------------------------------------------------------------------


def _coalesce(syncs: list[Sync], size: int) -> list[Sync]:
    """A backlog of ordinary syncs as uploads of at most ``size`` readings (full-memory syncs stay whole)."""
    merged: list[Sync] = []
    pending: list[Reading] = []
    last: Sync | None = None
    for sync in syncs:
        if sync.full_memory or sync.clock_skew_s:
            if pending and last is not None:
                merged.append(Sync(last.at, last.patient, tuple(pending)))
                pending = []
            merged.append(sync)
            continue
        for reading in sync.readings:
            pending.append(reading)
            if len(pending) >= size:
                merged.append(Sync(sync.at, sync.patient, tuple(pending)))
                pending = []
        last = sync
    if pending and last is not None:
        merged.append(Sync(last.at, last.patient, tuple(pending)))
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
                        receipt = clients.Receipt.of(len(sync.readings), answers[k])
                    else:
                        receipt = clients.Receipt(len(sync.readings), error=error or "no receipt")
                    self._count("mqtt", receipt, progress)
            return
        for sync in items:
            if self.abort.is_set():
                return
            if p.device_kind == "app":
                payload = clients.app_payload(list(sync.readings), p.unit, p.zone)
                receipt = await self._thread(clients.post_app, self.http, record.token, payload)
                self._count("http", receipt, progress)
            else:
                entries = clients.cgm_entries(list(sync.readings))
                receipt = await self._thread(clients.post_cgm, self.http, record.token, entries)
                self._count("nightscout", receipt, progress)

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
        "created": _iso(now),
        "start": _iso(now - dt.timedelta(days=options.days)),
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
        created, start = _parse(state.get("created")), _parse(state.get("start"))
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
                        "delivered_at": _iso(p.delivery_at),
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
            sent_until = _parse(self.state.get("sent_until")) or spec.start
            lead = dt.timedelta(0)
            if options.live and options.duration and options.speed > 1:
                lead = dt.timedelta(seconds=(options.speed - 1) * options.duration)
            begin = max(sent_until, now - dt.timedelta(days=options.days), spec.start)
            end = max(begin, now - lead)
            report.backfill = Phase(begin, end)
            syncs = await loop.run_in_executor(executor, all_syncs, timelines, begin, end)
            await self._deliveries(plan, cohort, end)
            total = sum(len(s.readings) for s in syncs)
            progress = Progress(total, "backfill", enabled=options.progress, stream=self.out)
            started = time.monotonic()
            await sender.send(syncs, progress=progress, backlog=True)
            progress.close()
            report.backfill.seconds = time.monotonic() - started
            report.backfill.readings = total
            plan.until = end
            self.state["sent_until"] = _iso(end)
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
                phase.readings += sum(len(s.readings) for s in syncs)
                last = phase.end = plan.until = target
                self.state["sent_until"] = _iso(target)
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
