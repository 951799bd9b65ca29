"""``telemon replay FILE``: a recorded CGM trace file replayed as CGM patients, over MQTT or HTTP.

Files: CSV with the columns ``id,time,gl`` (the GlucoBench / iglu files: subject, naive local time, mg/dL),
plain, ``.csv.gz`` or a ``.zip`` holding one CSV; also a Dexcom Clarity export (UTF-8 BOM, metadata rows, then
``EGV`` rows, one subject; ``Low`` / ``High`` sent as 40 / 400 mg/dL flagged ``lo`` / ``hi``). Anything else is
refused with one line saying what was expected.

Each subject becomes a patient of the team (external id ``replay-<file stem>-<subject>``), created or found
again, with a CGM device whose token is kept in ``TELEMON_STATE_DIR/replay.json`` so that a second replay sends
as the same device (and gets duplicates). Her due date puts the first reading at 24 weeks of gestation, so the
whole trace lies in the pregnancy window telemon checks. Times are the file's local time (``--timezone``,
default UTC), sent as UTC instants; ``--shift-to-now`` moves every reading by the same amount so that the last
reading of the file is now.

The summary matches the file: rows = refused before sending (a ``gl`` that is not a number, such as ``NA``, or
a time that does not parse) + stored + duplicates + rejected by telemon (with its reasons) + unanswered.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import gzip
import io
import json
import re
import sys
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

import asyncpg

from telemon.patients import PREGNANCY_DAYS, check_time_zone
from telemon.settings import SettingsError
from tools.simulator import clients
from tools.simulator.progress import Progress
from tools.simulator.records import (
    DeviceRecord,
    device_records,
    ensure_device,
    ensure_team,
    load_state,
    records_json,
    save_state,
)

STATE_NAME = "replay.json"
DEFAULT_TEAM = "Replay"
TRANSPORTS = ("mqtt", "http")
GESTATION_AT_FIRST_READING = 24 * 7  # days: GDM is diagnosed at 24–28 weeks
CLARITY_TIME = "timestamp (yyyy-mm-ddthh:mm:ss)"
CLARITY_GLUCOSE = "glucose value (mg/dl)"
CLARITY_EVENT = "event type"
_NUMBERS = re.compile(r"\d+(?:[.,:]\d+)*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Point:
    line: int  # line in the file (1 = header)
    at: dt.datetime  # UTC
    value: float
    flags: tuple[str, ...] = ()


@dataclass
class Subject:
    name: str
    rows: int = 0
    points: list[Point] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)  # by the replay, before sending


@dataclass
class Trace:
    path: Path
    format: str  # "id,time,gl" | "dexcom-clarity"
    rows: int = 0
    metadata_rows: int = 0
    subjects: dict[str, Subject] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        name = self.path.name
        for suffix in (".gz", ".zip", ".csv"):
            if name.lower().endswith(suffix):
                name = name[: -len(suffix)]
        return name

    def last_instant(self) -> dt.datetime | None:
        instants = [p.at for s in self.subjects.values() for p in s.points]
        return max(instants) if instants else None


@contextlib.contextmanager
def _open_text(path: Path) -> Iterator[TextIO]:
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [
                    m for m in archive.namelist() if m.lower().endswith(".csv") and not m.startswith("__MACOSX/")
                ]
                if len(members) != 1:
                    raise SettingsError(f"FILE: {path.name} holds {len(members)} CSV files; replay reads a zip of one")
                with archive.open(members[0]) as raw:
                    yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        elif path.suffix.lower() == ".gz":
            with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as handle:
                yield handle
        else:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                yield handle
    except FileNotFoundError:
        raise SettingsError(f"FILE: {path} does not exist") from None
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, EOFError) as exc:
        raise SettingsError(f"FILE: cannot read {path.name}: {exc}") from None


def _local_instant(text: str, zone: ZoneInfo) -> dt.datetime | None:
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)  # fold 0 in a repeated hour, as telemon reads a naive time
    return moment.astimezone(dt.UTC)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def read_trace(path: Path, zone_name: str = "UTC") -> Trace:
    """The subjects and points of a trace file; rows that cannot be sent are counted with their reason."""
    zone = ZoneInfo(zone_name)
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        try:
            header = [cell.strip().lower() for cell in next(reader)]
        except StopIteration:
            raise SettingsError(f"FILE: {path.name} is empty") from None
        except csv.Error as exc:
            raise SettingsError(f"FILE: {path.name} is not CSV: {exc}") from None
        columns: tuple[int | None, int, int, int | None]
        trace = Trace(path, _format(path, header))
        if trace.format == "id,time,gl":
            columns = (header.index("id"), header.index("time"), header.index("gl"), None)
        else:
            columns = (None, header.index(CLARITY_TIME), header.index(CLARITY_GLUCOSE), header.index(CLARITY_EVENT))
        id_col, time_col, gl_col, event_col = columns
        try:
            for line, row in enumerate(reader, start=2):
                if not row or all(not cell.strip() for cell in row):
                    continue
                if event_col is not None and (len(row) <= event_col or row[event_col].strip() != "EGV"):
                    trace.metadata_rows += 1  # Clarity: patient, device and alert-setting rows
                    continue
                trace.rows += 1
                name = row[id_col].strip() if id_col is not None and len(row) > id_col else "1"
                subject = trace.subjects.setdefault(name, Subject(name))
                subject.rows += 1
                time_text = row[time_col] if len(row) > time_col else ""
                gl_text = row[gl_col].strip() if len(row) > gl_col else ""
                at = _local_instant(time_text, zone)
                if at is None:
                    subject.refused["time: not a date-time"] += 1
                    continue
                flags: tuple[str, ...] = ()
                value = _number(gl_text)
                if value is None and event_col is not None and gl_text.lower() in ("low", "high"):
                    value, flags = (40.0, ("lo",)) if gl_text.lower() == "low" else (400.0, ("hi",))
                if value is None:
                    subject.refused["gl: not a number"] += 1
                    continue
                subject.points.append(Point(line, at, value, flags))
        except csv.Error as exc:
            raise SettingsError(f"FILE: {path.name} is not CSV: {exc}") from None
    if not trace.rows:
        raise SettingsError(f"FILE: {path.name} has no readings")
    return trace


@dataclass
class Outcome:
    """One subject's replay."""

    subject: str
    external_id: str
    patient_id: str = ""
    rows: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    messages: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    unanswered: int = 0
    errors: Counter[str] = field(default_factory=Counter)

    def add(self, receipt: clients.Receipt) -> None:
        self.messages += 1
        if receipt.error is not None:
            self.unanswered += receipt.readings
            self.errors[_NUMBERS.sub("#", receipt.error)] += 1
            return
        self.accepted += receipt.accepted
        self.duplicates += receipt.duplicates
        for _, reason in receipt.rejected:
            self.rejected[_NUMBERS.sub("#", reason)] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "external_id": self.external_id,
            "patient_id": self.patient_id,
            "rows": self.rows,
            "refused_before_sending": sum(self.refused.values()),
            "sent": self.sent,
            "stored": self.accepted,
            "duplicates": self.duplicates,
            "rejected": sum(self.rejected.values()),
            "unanswered": self.unanswered,
        }


@dataclass
class ReplayReport:
    trace: Trace
    transport: str
    time_zone: str
    shift: dt.timedelta
    outcomes: list[Outcome]
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        refused: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        errors: Counter[str] = Counter()
        for o in self.outcomes:
            refused.update(o.refused)
            rejected.update(o.rejected)
            errors.update(o.errors)
        stored = sum(o.accepted for o in self.outcomes)
        duplicates = sum(o.duplicates for o in self.outcomes)
        unanswered = sum(o.unanswered for o in self.outcomes)
        accounted = sum(refused.values()) + stored + duplicates + sum(rejected.values()) + unanswered
        return {
            "file": str(self.trace.path),
            "format": self.trace.format,
            "rows": self.trace.rows,
            "metadata_rows": self.trace.metadata_rows,
            "subjects": len(self.outcomes),
            "transport": self.transport,
            "timezone": self.time_zone,
            "shift_s": int(self.shift.total_seconds()),
            "sent": sum(o.sent for o in self.outcomes),
            "messages": sum(o.messages for o in self.outcomes),
            "stored": stored,
            "duplicates": duplicates,
            "rejected": sum(rejected.values()),
            "rejected_reasons": dict(rejected.most_common()),
            "refused_before_sending": sum(refused.values()),
            "refused_reasons": dict(refused.most_common()),
            "unanswered": unanswered,
            "errors": dict(errors.most_common(5)),
            "matches": accounted == self.trace.rows,
            "seconds": round(self.seconds, 2),
            "patients": [o.as_dict() for o in self.outcomes],
        }


def format_replay(report: ReplayReport) -> str:
    d = report.as_dict()
    lines = [
        f"telemon replay: {Path(d['file']).name} ({d['format']}), {d['rows']:,} rows, {d['subjects']} subjects, "
        f"over {d['transport']}, times in {d['timezone']}"
        + (f", shifted by {d['shift_s'] / 86400:.1f} days" if d["shift_s"] else ""),
        f"  sent {d['sent']:,} readings in {d['messages']:,} messages in {d['seconds']:.1f} s",
        f"  stored {d['stored']:,}, duplicates {d['duplicates']:,}, rejected by telemon {d['rejected']:,}, "
        f"refused before sending {d['refused_before_sending']:,}"
        + (f", no receipt {d['unanswered']:,}" if d["unanswered"] else ""),
    ]
    lines += [f"    refused before sending {n:,}×: {reason}" for reason, n in d["refused_reasons"].items()]
    lines += [f"    rejected by telemon {n:,}×: {reason}" for reason, n in list(d["rejected_reasons"].items())[:5]]
    lines += [f"    no receipt {n:,}×: {reason}" for reason, n in d["errors"].items()]
    total = d["stored"] + d["duplicates"] + d["rejected"] + d["refused_before_sending"] + d["unanswered"]
    verdict = "matches the file" if d["matches"] else "DOES NOT match the file"
    lines.append(f"  rows {d['rows']:,} = stored + duplicates + rejected + refused + no receipt = {total:,}: {verdict}")
    return "\n".join(lines)


@dataclass
class ReplayOptions:
    file: Path
    team: str = DEFAULT_TEAM
    time_zone: str = "UTC"
    shift_to_now: bool = False
    transport: str = "http"
    chunk: int = 500
    url: str = clients.DEFAULT_URL
    mqtt_url: str | None = None
    state_file: Path = Path(".telemon") / STATE_NAME
    concurrency: int = 4
    receipt_timeout: float = 60.0
    progress: bool = True

    def check(self) -> None:
        check_time_zone(self.time_zone, "--timezone")
        if self.transport not in TRANSPORTS:
            raise SettingsError(f"--transport: {self.transport!r} is not one of {', '.join(TRANSPORTS)}")
        if not 1 <= self.chunk <= 10_000:
            raise SettingsError(f"--chunk: {self.chunk} is outside 1..10000")
        if self.transport == "mqtt" and not self.mqtt_url:
            raise SettingsError(
                "--mqtt-url: no broker known: give --mqtt-url, set TELEMON_MQTT_URL, or start `telemon serve` on "
                "embedded services"
            )
        if not self.team.strip():
            raise SettingsError("--team: give a team name")
        sniff(self.file)


def sniff(path: Path) -> str:
    """The format of a trace file from its header, or ``SettingsError`` saying what replay reads."""
    with _open_text(path) as handle:
        try:
            header = [cell.strip().lower() for cell in next(csv.reader(handle))]
        except StopIteration:
            raise SettingsError(f"FILE: {path.name} is empty") from None
        except csv.Error as exc:
            raise SettingsError(f"FILE: {path.name} is not CSV: {exc}") from None
    return _format(path, header)


def _format(path: Path, header: list[str]) -> str:
    if {"id", "time", "gl"} <= set(header):
        return "id,time,gl"
    if {CLARITY_TIME, CLARITY_GLUCOSE, CLARITY_EVENT} <= set(header):
        return "dexcom-clarity"
    shown = ",".join(header[:6])
    raise SettingsError(
        f"FILE: {path.name} is not a trace replay can read: expected the columns id,time,gl (GlucoBench and "
        f"iglu files) or a Dexcom Clarity export; its header is {shown!r}"
    )


def external_id(stem: str, subject: str) -> str:
    return _UNSAFE.sub("-", f"replay-{stem}-{subject}".strip()).strip("-")[:128]


async def replay(options: ReplayOptions, pool: asyncpg.Pool, *, out: TextIO | None = None) -> ReplayReport:
    options.check()
    trace = await asyncio.to_thread(read_trace, options.file, options.time_zone)
    shift = dt.timedelta(0)
    last = trace.last_instant()
    if options.shift_to_now and last is not None:
        shift = dt.timedelta(seconds=int((dt.datetime.now(dt.UTC) - last).total_seconds()))
    zone = ZoneInfo(options.time_zone)

    state = load_state(options.state_file) or {"version": 1, "devices": {}}
    known = device_records(state)
    outcomes: list[Outcome] = []
    records: dict[str, DeviceRecord] = {}
    async with pool.acquire() as conn:
        team_id = await ensure_team(conn, options.team)
        for name, subject in trace.subjects.items():
            ext = external_id(trace.stem, name)
            outcome = Outcome(name, ext, rows=subject.rows, refused=Counter(subject.refused))
            outcomes.append(outcome)
            first = min((p.at for p in subject.points), default=dt.datetime.now(dt.UTC)) + shift
            due = first.astimezone(zone).date() + dt.timedelta(days=PREGNANCY_DAYS - GESTATION_AT_FIRST_READING)
            key = f"{options.team}/{ext}"
            record, _ = await ensure_device(
                conn,
                team_id,
                known.get(key),
                external_id=ext,
                display_name=f"{name} ({trace.stem}, replayed)",
                time_zone=options.time_zone,
                due_date=due,
                kind="cgm",
                label=f"replay of {trace.path.name}",
            )
            records[key] = record
            outcome.patient_id = record.patient_id
    state["devices"] = {**state.get("devices", {}), **records_json(records)}
    save_state(options.state_file, state)

    http = clients.Http(options.url)
    if options.transport == "http" and not await asyncio.to_thread(http.answers):
        raise SettingsError(f"--url: telemon does not answer at {http.base_url}/healthz")
    executor = ThreadPoolExecutor(max_workers=options.concurrency, thread_name_prefix="replay")
    progress = Progress(trace.rows, "replay", unit="rows", enabled=options.progress, stream=out or sys.stderr)
    progress.advance(sum(sum(s.refused.values()) for s in trace.subjects.values()))
    abort = threading.Event()
    gate = asyncio.Semaphore(options.concurrency)
    loop = asyncio.get_running_loop()
    started = time.monotonic()

    async def one(outcome: Outcome, subject: Subject, record: DeviceRecord) -> None:
        items = [
            {
                "measured_at": (p.at + shift).isoformat().replace("+00:00", "Z"),
                "value": p.value,
                "unit": "mg/dL",
                "kind": "cgm",
                **({"flags": list(p.flags)} if p.flags else {}),
            }
            for p in subject.points
        ]
        chunks = [items[i : i + options.chunk] for i in range(0, len(items), options.chunk)]
        outcome.sent = len(items)
        async with gate:
            if options.transport == "mqtt":
                assert options.mqtt_url is not None
                payloads = [json.dumps({"readings": chunk}).encode() for chunk in chunks]
                answers, error = await loop.run_in_executor(
                    executor,
                    lambda: clients.mqtt_session(
                        options.mqtt_url or "",
                        record.device_id,
                        record.token,
                        payloads,
                        timeout=options.receipt_timeout,
                        abort=abort,
                    ),
                )
                for k, chunk in enumerate(chunks):
                    if k < len(answers):
                        outcome.add(clients.Receipt.of(len(chunk), answers[k]))
                    else:
                        outcome.add(clients.Receipt(len(chunk), error=error or "no receipt"))
                    progress.advance(len(chunk))
                return
            for chunk in chunks:
                receipt = await loop.run_in_executor(
                    executor, clients.post_app, http, record.token, {"readings": chunk}
                )
                outcome.add(receipt)
                progress.advance(len(chunk))

    try:
        await asyncio.gather(
            *(
                one(outcome, trace.subjects[outcome.subject], records[f"{options.team}/{outcome.external_id}"])
                for outcome in outcomes
            )
        )
    finally:
        abort.set()
        progress.close()
        executor.shutdown(wait=False, cancel_futures=True)
        http.close()
    report = ReplayReport(trace, options.transport, options.time_zone, shift, outcomes, time.monotonic() - started)
    return report
