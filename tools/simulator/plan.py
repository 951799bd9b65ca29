"""What a simulation is asked (``Options``), what it planned and what telemon answered: the tally of receipts
per transport, the kinds of refusals (the simulated typos), the PLAN a test holds telemon to (the distinct readings
to store, the refusals, the planned hypoglycaemias, stops, re-syncs and deliveries), and the report printed at the
end of a run (:mod:`tools.simulator.runner` does the sending)."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from telemon.settings import SettingsError
from tools.simulator import clients
from tools.simulator.measures import Measure
from tools.simulator.physiology import PatientPlan, Reading, Sync
from tools.simulator.records import DeviceRecord

DEFAULT_URL = clients.DEFAULT_URL
DEFAULT_TEAM = "Simulation"
STATE_NAME = "simulator.json"
STATE_VERSION = 1
TRANSPORTS = ("mqtt", "http", "nightscout")


def plan_file(state_file: Path) -> Path:
    """Where the plan of the cohort of ``state_file`` is written: ``simulator.json`` → ``simulator-plan.json``."""
    return state_file.with_name(f"{state_file.stem}-plan.json")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if moment is not None else None


def parse_iso(text: Any) -> dt.datetime | None:
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


_NUMBERS = re.compile(r"\d+(?:[.,:]\d+)*")


@dataclass
class Tally:
    """What one transport sent and what telemon answered."""

    messages: int = 0
    readings: int = 0  # items sent: glucose readings and the other kinds (doses, ketones, weights, pressures)
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
                {"taken_at": iso(r.taken_at), "device_time": iso(r.stamp), "value_mgdl": round(r.value_mgdl, 2)}
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
        # the other item kinds: the distinct ones sent (all stored: the simulator mistypes none of them)
        self.measures: dict[str, dict[tuple[object, ...], Measure]] = {p.external_id: {} for p in cohort}
        self.resyncs: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.sent = 0
        self.until: dt.datetime | None = None
        self._lock = threading.Lock()

    def add(self, sync: Sync) -> None:
        p = sync.patient
        record = self.records[p.external_id]
        with self._lock:
            self.sent += sync.size
            for m in sync.measures:
                self.measures[p.external_id].setdefault(m.key, m)
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
                        "at": iso(sync.at),
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
    def measurements(self) -> int:
        """Distinct doses, ketones, weights and blood pressures telemon should hold."""
        return sum(len(found) for found in self.measures.values())

    def measurement_counts(self, external_id: str) -> dict[str, int]:
        return dict(Counter(m.kind for m in self.measures[external_id].values()))

    def measurement_events(self) -> list[dict[str, Any]]:
        """The planned measurements an alert is for: the raised ketone, the blood pressures of 140/90 and above,
        the 165/112 reading."""
        return [
            {
                "external_id": external_id,
                "patient_id": self.records[external_id].patient_id,
                "event": m.event,
                "kind": m.kind,
                "taken_at": iso(m.taken_at),
                "values": dict(m.values),
            }
            for external_id, found in sorted(self.measures.items())
            for m in sorted(found.values(), key=lambda m: m.taken_at)
            if m.event is not None
        ]

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
                    "stopped_at": iso(p.stop_at),
                    "last_reading_at": iso(self.last_taken.get(p.external_id)),
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
                "delivery_at": iso(p.delivery_at),
                "clock_skew_s": p.clock_skew_s,
                "clock_fixed_at": iso(p.clock_fixed_at),
                "features": p.features(),
                "roles": list(p.roles),
                "regimen": p.care.regimen,
                "readings": self.stored_readings(p.external_id),
                "measurements": self.measurement_counts(p.external_id),
                "refused": len(self.refused[p.external_id]),
            }
            for p in self.cohort
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "readings_sent": self.sent,
            "readings": self.readings,
            "measurements": self.measurements,
            "measurement_events": len(self.measurement_events()),
            "refused": self.refusals,
            "hypoglycaemias": len(self.hypos),
            "stopped": len(self.stopped()),
            "resyncs": len(self.resyncs),
            "deliveries": len(self.deliveries),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "until": iso(self.until),
            **self.summary(),
            "patients": self.patients(),
            "hypoglycaemias": [h.as_dict() for h in self.hypoglycaemias()],
            "measurement_events": self.measurement_events(),
            "stopped": self.stopped(),
            "resyncs": self.resyncs,
            "deliveries": self.deliveries,
        }


@dataclass
class Phase:
    start: dt.datetime
    end: dt.datetime
    seconds: float = 0.0
    readings: int = 0  # items sent: glucose readings and the other kinds (doses, ketones, weights, pressures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": iso(self.start),
            "to": iso(self.end),
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
                f"{name}: {iso(phase.start)} → {iso(phase.end)} (simulated), {phase.readings:,} readings sent "
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
        f"plan: {plan['readings']:,} distinct readings and {plan['measurements']:,} doses, ketones, weights and "
        f"blood pressures to store, {plan['refused']} mistyped entries to refuse, "
        f"{plan['hypoglycaemias']} hypoglycaemias, {plan['stopped']} patients who stopped measuring, "
        f"{plan['resyncs']} full-memory re-sync messages, {plan['deliveries']} deliveries"
    )
    lines.append(f"state: {data['state_file']}   plan: {data['plan_file']}")
    return "\n".join(lines)
