"""The season database of ``bench.scale``: a region's care teams after a season of real use, built with COPY.

At 100 %: 20,000 patients in 100 care teams of 200, 120 days each (meters 4 or 6 readings a day, a few missed;
1,000 CGM wearers at 288 a day from the real traces of ``../shared/data/cgm``), about 46 million readings; and
what a season of use leaves beside them, because a figure measured on readings alone hides what they cost
(a 240-patient team's triage took 255 ms on a database that had lived, against 43 ms on the dashboard
benchmark's fresh one):

- alerts: the rate of each rule and its evidence and params as the engine writes them, taken from the real rules
  run over a synthetic cohort (``tests.support.cohorts``), spread over the season; all resolved but those of the
  last days (by the engine when cleared, or by a clinician, half of them acknowledged first), some with folded
  episodes and their reading ids;
- insulin doses (``measurements``, kind ``insulin``) of the patients on insulin, four a day;
- messages, about two a week each way, read but for the last days' few;
- reviews (``patient_reviews``) about twice a week, and the audit rows of the reads (triage pages, patient pages).

The database is ``telemon_scale_<size>`` and built in stages, each committed with its row in
``bench_scale_state`` (readings in chunks of ten days across every patient, in time order as devices send
them), so that an interrupted build resumes where it stopped and a finished one is reused. The readings'
indexes are dropped during the load and rebuilt after it, then everything is vacuumed and analysed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from bench.common import cgm_traces, say, with_database
from bench.dashboard import READING_COLUMNS, READING_INDEXES, Params, _ident, load_people
from telemon.db import connect
from telemon.migrate import migrate

FULL_PATIENTS = 20_000
TEAM_SIZE = 200
CGM_SHARE = 0.05  # 1,000 CGM wearers of 20,000
SEASON_DAYS = 120
CHUNK_DAYS = 10  # readings are loaded (and resumed) ten days at a time, every patient at once
DAY = 86_400

STATE = """
CREATE TABLE IF NOT EXISTS bench_scale_state (
    stage    text PRIMARY KEY,
    detail   jsonb NOT NULL DEFAULT '{}',
    seconds  float8 NOT NULL,
    done_at  timestamptz NOT NULL DEFAULT now()
)
"""
STAGES_DONE = "SELECT stage, detail::text AS detail, seconds FROM bench_scale_state"
STAGE_DONE = "INSERT INTO bench_scale_state (stage, detail, seconds) VALUES ($1, $2::jsonb, $3)"
DATABASE_EXISTS = "SELECT 1 FROM pg_database WHERE datname = $1"
DATABASE_SIZE = "SELECT pg_database_size(current_database())"
POPULATION = """
SELECT p.id, p.team_id, p.treatment, p.readings_per_day, d.id AS device_id, d.kind AS device_kind
FROM patients p JOIN devices d ON d.patient_id = p.id
ORDER BY p.external_id
"""
TEAMS = """
SELECT t.id, c.id AS clinician_id, c.email FROM care_teams t
JOIN team_memberships m ON m.team_id = t.id JOIN clinicians c ON c.id = m.clinician_id
ORDER BY t.name
"""
READING_IDS = "SELECT min(id) AS low, max(id) AS high FROM readings"


@dataclass(frozen=True)
class Size:
    """A share of the region: ``percent`` of its 20,000 patients, in teams of 200 (at least one team)."""

    percent: float

    @property
    def patients(self) -> int:
        return max(TEAM_SIZE, round(FULL_PATIENTS * self.percent / 100))

    @property
    def teams(self) -> int:
        return max(1, self.patients // TEAM_SIZE)

    @property
    def label(self) -> str:
        return f"{self.percent:g}".replace(".", "_")

    @property
    def database(self) -> str:
        return f"telemon_scale_{self.label}"


@dataclass
class Population:
    """The built database's people, read back from it (so that a resumed build and the measures see the same)."""

    patients: list[uuid.UUID]
    team_of: list[uuid.UUID]
    treatment: list[str]
    per_day: list[int]
    devices: list[str]
    cgm: np.ndarray[Any, np.dtype[np.bool_]]
    teams: list[uuid.UUID]
    clinicians: list[uuid.UUID]
    emails: list[str]

    def of_team(self, team: uuid.UUID) -> list[int]:
        return [i for i, t in enumerate(self.team_of) if t == team]


async def population(conn: asyncpg.Connection) -> Population:
    rows = await conn.fetch(POPULATION)
    teams = await conn.fetch(TEAMS)
    return Population(
        patients=[r["id"] for r in rows],
        team_of=[r["team_id"] for r in rows],
        treatment=[r["treatment"] for r in rows],
        per_day=[r["readings_per_day"] for r in rows],
        devices=[r["device_id"] for r in rows],
        cgm=np.array([r["device_kind"] == "cgm" for r in rows], dtype=bool),
        teams=[r["id"] for r in teams],
        clinicians=[r["clinician_id"] for r in teams],
        emails=[r["email"] for r in teams],
    )


@dataclass
class Build:
    """What building (or finding) a database took: seconds per stage (those of an earlier run included)."""

    url: str
    size: Size
    stages: dict[str, float] = dataclasses.field(default_factory=dict)
    resumed: list[str] = dataclasses.field(default_factory=list)
    counts: dict[str, int] = dataclasses.field(default_factory=dict)
    bytes_on_disk: int = 0

    @property
    def seconds(self) -> float:
        return sum(self.stages.values())


# --- readings ------------------------------------------------------------------------------------------------

# A meter patient's day (hour UTC, context, meal, minutes after the meal): the first four for 4 a day, all six
# for 6 a day. Meters say what the reading was; CGM readings are 'unspecified' (the service infers them).
METER_SLOTS = (
    (7.5, "fasting", None, None),
    (10.0, "after_meal", "breakfast", 120),
    (14.0, "after_meal", "lunch", 120),
    (21.0, "after_meal", "dinner", 120),
    (12.0, "before_meal", "lunch", None),
    (22.5, "bedtime", None, None),
)
SLOT_MEANS = np.array([88.0, 112.0, 114.0, 116.0, 86.0, 104.0])
MISSED = 0.08  # share of a meter's readings never taken


def _chunk_readings(pop: Population, season_end: int, chunk: int) -> tuple[np.ndarray[Any, Any], ...]:
    """Every patient's readings of days [10·chunk, 10·chunk + 10) of the season: owner, epoch seconds, value,
    slot (-1 for CGM), in time order. Deterministic for a chunk, so that a resumed build writes the same."""
    rng = np.random.default_rng(1_000 + chunk)
    start = season_end - SEASON_DAYS * DAY + chunk * CHUNK_DAYS * DAY
    end = min(season_end, start + CHUNK_DAYS * DAY)
    owners, times, values, slots = [], [], [], []
    n = len(pop.patients)
    meters = np.flatnonzero(~pop.cgm)
    per_day = np.array(pop.per_day)[meters]
    day0 = start // DAY * DAY
    days = np.arange(day0, end, DAY)
    hours = (np.array([s[0] for s in METER_SLOTS]) * 3600).astype(np.int64)
    for count in (4, 6):
        who = meters[per_day == count]
        if not len(who):
            continue
        t = days[None, :, None] + hours[None, None, :count]  # (1, days, slots)
        t = np.broadcast_to(t, (len(who), len(days), count)).ravel()
        owner = np.repeat(who, len(days) * count)
        slot = np.tile(np.arange(count), len(who) * len(days))
        t = t + rng.integers(-1200, 1200, len(t))
        keep = (t >= start) & (t < end) & (rng.random(len(t)) >= MISSED)
        value = rng.normal(SLOT_MEANS[slot], 15.0)
        lows = rng.random(len(t)) < 0.012  # about one low a fortnight: the hypoglycaemia alerts' readings
        value = np.where(lows, rng.uniform(48, 69, len(t)), value)
        owners.append(owner[keep])
        times.append(t[keep])
        values.append(np.clip(np.round(value[keep]), 40, 400))
        slots.append(slot[keep])
    traces = cgm_traces()
    for i in np.flatnonzero(pop.cgm).tolist():
        phase = (i * 37) % 300
        first = -(-(start - phase) // 300)
        grid = np.arange(first, -(-(end - phase) // 300), dtype=np.int64)
        trace = traces[i % len(traces)]
        index = (grid + i * 397) % len(trace)
        owners.append(np.full(len(grid), i))
        times.append(grid * 300 + phase)
        values.append(np.asarray(trace, dtype=np.float64)[index])
        slots.append(np.full(len(grid), -1))
    owner = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    t = np.concatenate(times) if times else np.zeros(0, np.int64)
    order = np.argsort(t, kind="stable")
    del n
    return owner[order], t[order], np.concatenate(values)[order], np.concatenate(slots)[order]


async def _copy_text(pop: Population, season_end: int, chunk: int) -> AsyncIterator[bytes]:
    owner, t, values, slots = _chunk_readings(pop, season_end, chunk)
    patients = [str(p) for p in pop.patients]
    nulls = "\\N"
    slot_text = [f"{c}\t{m or nulls}\t{x if x is not None else nulls}" for _, c, m, x in METER_SLOTS]
    cgm_text = f"unspecified\t{nulls}\t{nulls}"
    step = 200_000
    for low in range(0, len(t), step):
        part = slice(low, low + step)
        stamps = np.datetime_as_string(t[part].astype("datetime64[s]"), unit="s", timezone="UTC").tolist()
        lines = []
        for i, stamp, value, k in zip(owner[part].tolist(), stamps, values[part].tolist(), slots[part].tolist(),
                                      strict=True):  # fmt: skip
            kind, context = ("cgm", cgm_text) if k < 0 else ("smbg", slot_text[k])
            lines.append(
                f"{patients[i]}\t{pop.devices[i]}\t{kind}\t{stamp}\t{value}\tmg/dL\t{stamp}\t{value}\t{context}\t"
                + ("mqtt" if i % 2 else "http")
            )
        yield ("\n".join(lines) + "\n").encode()


# --- a season of use ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    rule: str
    severity: str
    code: str | None
    params: str
    evidence: dict[str, Any]


def alert_templates(seed: int = 5) -> tuple[dict[str, list[Template]], dict[str, float], dict[str, float]]:
    """What the real rules raise on a synthetic cohort of 14 days: per rule, examples of its alerts (severity,
    code, params, evidence as the engine stores them), and its rate per patient-day for meters and CGM wearers."""
    from alerts.rules import evaluate
    from tests.support.cohorts import synthetic_cohort

    meters, cgms, days = 360, 40, 14
    cohort = synthetic_cohort(meters, days, 6, cgms, days, seed=seed, now=int(time.time()))
    examples: dict[str, list[Template]] = defaultdict(list)
    counts: dict[tuple[str, bool], int] = defaultdict(int)
    for found in evaluate(cohort):
        for i in range(len(found.patient)):
            message = found.params[i]
            code = message.get("code") if isinstance(message, dict) and "code" in message else found.code[i]
            evidence = found.evidence[i]
            examples[found.rule].append(
                Template(
                    found.rule,
                    str(found.severity[i]),
                    str(code) if code else found.rule,
                    json.dumps(message, default=str),
                    evidence,
                )
            )
            counts[(found.rule, int(found.patient[i]) >= meters)] += 1
    meter_rate = {rule: counts[(rule, False)] / (meters * days) for rule in examples}
    cgm_rate = {rule: counts[(rule, True)] / (cgms * days) for rule in examples}
    return dict(examples), meter_rate, cgm_rate


def _evidence_at(template: Template, at: int, rng: random.Random, reading_ids: tuple[int, int]) -> str:
    """The template's evidence moved to ``at`` (its last reading) with reading ids of the database."""
    evidence = dict(template.evidence)
    stamps = evidence.get("measured_at")
    if isinstance(stamps, list) and stamps:
        shift = at - int(stamps[-1])
        evidence["measured_at"] = [int(s) + shift for s in stamps]
    ids = evidence.get("reading_ids")
    if isinstance(ids, list) and ids:
        base = rng.randint(*reading_ids)
        evidence["reading_ids"] = [base + k * 7 for k in range(len(ids))]
    return json.dumps(evidence, default=str)


async def load_alerts(conn: asyncpg.Connection, pop: Population, season_end: int) -> int:
    examples, meter_rate, cgm_rate = alert_templates()
    bounds = await conn.fetchrow(READING_IDS)
    reading_ids = (int(bounds["low"] or 1), int(bounds["high"] or 1))
    rng = random.Random(21)
    start = season_end - SEASON_DAYS * DAY
    rows: list[tuple[Any, ...]] = []
    columns = ("patient_id", "rule", "episode_key", "severity", "status", "code", "params", "evidence",
               "opened_at", "updated_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
               "resolved_reason", "folded_episodes", "folded_reading_ids")  # fmt: skip

    def stamp(epoch: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(epoch, dt.UTC)

    for i, patient in enumerate(pop.patients):
        rates = cgm_rate if pop.cgm[i] else meter_rate
        clinician = pop.clinicians[pop.teams.index(pop.team_of[i])]
        for rule, rate in rates.items():
            if rate <= 0:
                continue
            current_open = False
            keys: set[str] = set()
            count = np.random.default_rng(i * 131 + len(rule)).poisson(rate * SEASON_DAYS)
            for at in sorted(rng.uniform(start, season_end - 600) for _ in range(count)):
                template = rng.choice(examples[rule])
                daily = template.evidence.get("local_date") is not None
                key = (f"d{stamp(at).date().isoformat()}" if daily else f"t{int(at)}") + f"-{i}"
                if key in keys:  # one alert a day for the daily rules, as the engine keys them
                    continue
                keys.add(key)
                recent = season_end - at < 3 * DAY
                status = "open" if recent and rng.random() < 0.6 else "resolved"
                if status == "open" and not daily and current_open:
                    status = "resolved"
                current_open = current_open or (status == "open" and not daily)
                acked = rng.random() < 0.5
                by_clinician = rng.random() < 0.3
                resolved = at + rng.uniform(3_600, 3 * DAY) if status == "resolved" else None
                if resolved is not None:
                    resolved = min(resolved, season_end - 60)
                folded = rng.randint(1, 6) if rng.random() < 0.1 else 0
                rows.append((
                    patient, rule, key, template.severity, status, template.code, template.params,
                    _evidence_at(template, int(at), rng, reading_ids), stamp(at),
                    stamp(resolved if resolved is not None else at),
                    stamp(at + 1_800) if acked else None, f"clinician:{clinician}" if acked else None,
                    stamp(resolved) if resolved is not None else None,
                    (f"clinician:{clinician}" if by_clinician else "system") if resolved is not None else None,
                    ("clinician" if by_clinician else "cleared") if resolved is not None else None,
                    folded, [rng.randint(*reading_ids) for _ in range(folded * 3)],
                ))  # fmt: skip
        if len(rows) >= 100_000:
            await conn.copy_records_to_table("alerts", records=rows, columns=list(columns))
            rows.clear()
    await conn.copy_records_to_table("alerts", records=rows, columns=list(columns))
    stored: int = await conn.fetchval("SELECT count(*) FROM alerts")
    return stored


MESSAGE_BODIES = (
    "Bonjour, mes glycémies après le dîner sont un peu hautes cette semaine, dois-je changer quelque chose ?",
    "Hello, I forgot my fasting reading this morning, I will measure tomorrow.",
    "Merci, je vais essayer de marcher après les repas.",
    "My meter shows an error sometimes, is it normal?",
    "J'ai eu un malaise hier soir, la glycémie était à 0,62 g/L, je me suis resucrée.",
)
CLINICIAN_BODIES = (
    "Merci pour vos mesures. Continuez ainsi, nous regarderons ensemble à la prochaine consultation.",
    "Your readings after meals are above target: spread your starchy foods over three meals and two snacks.",
    "Pouvez-vous appeler le service aujourd'hui pour que nous parlions de vos glycémies ?",
)


async def load_use(conn: asyncpg.Connection, pop: Population, season_end: int) -> dict[str, int]:
    """Insulin doses, messages, reviews and the audit rows of reads, for the whole season."""
    rng = random.Random(31)
    start = season_end - SEASON_DAYS * DAY

    def stamp(epoch: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(epoch, dt.UTC)

    doses: list[tuple[Any, ...]] = []
    messages: list[tuple[Any, ...]] = []
    reviews: list[tuple[Any, ...]] = []
    audit: list[tuple[Any, ...]] = []
    counts = {"doses": 0, "messages": 0, "reviews": 0, "audit": 0}
    dose_slots = ((7.2, "breakfast", "rapid", 6.0), (11.8, "lunch", "rapid", 8.0), (19.2, "dinner", "rapid", 8.0),
                  (22.0, "bedtime", "basal", 14.0))  # fmt: skip
    dose_columns = ["patient_id", "device_id", "kind", "device_time", "values_key", "measured_at", "value",
                    "value_raw", "unit_raw", "insulin", "slot", "source"]  # fmt: skip

    async def flush(force: bool = False) -> None:
        for table, rows, columns in (
            ("measurements", doses, dose_columns),
            ("messages", messages, ["patient_id", "author", "clinician_id", "device_id", "body", "created_at",
                                    "read_at", "read_by"]),
            ("patient_reviews", reviews, ["patient_id", "clinician_id", "reviewed_at"]),
            ("audit_log", audit, ["at", "actor", "action", "patient_id", "detail", "patient_ids"]),
        ):  # fmt: skip
            if rows and (force or len(rows) >= 100_000):
                await conn.copy_records_to_table(table, records=rows, columns=columns)
                rows.clear()

    for i, patient in enumerate(pop.patients):
        clinician = pop.clinicians[pop.teams.index(pop.team_of[i])]
        device = pop.devices[i]
        if pop.treatment[i] == "insulin":
            for day in range(SEASON_DAYS):
                for hour, slot, insulin, units in dose_slots:
                    given = start + day * DAY + int(hour * 3600) + rng.randint(-900, 900)
                    value = max(1.0, units + rng.randint(-2, 2) + day // 20)
                    doses.append((patient, device, "insulin", stamp(given), f"{value:g}|{insulin}|{slot}", stamp(given),
                                  value, value, "U", insulin, slot, "http"))  # fmt: skip
                    counts["doses"] += 1
        for _ in range(np.random.default_rng(i).poisson(2 * SEASON_DAYS / 7)):
            at = rng.uniform(start, season_end - 60)
            unread = season_end - at < 2 * DAY and rng.random() < 0.5
            if rng.random() < 0.55:
                read_at = None if unread else stamp(at + rng.uniform(600, DAY))
                messages.append((patient, "patient", None, device, rng.choice(MESSAGE_BODIES), stamp(at), read_at,
                                 f"clinician:{clinician}" if read_at else None))  # fmt: skip
            else:
                read_at = stamp(at + rng.uniform(600, DAY)) if not unread else None
                messages.append((patient, "clinician", clinician, None, rng.choice(CLINICIAN_BODIES), stamp(at),
                                 read_at, f"device:{device}" if read_at else None))  # fmt: skip
            counts["messages"] += 1
        for week in range(SEASON_DAYS // 7):
            for _ in range(2):
                at = start + week * 7 * DAY + rng.uniform(0, 7 * DAY)
                reviews.append((patient, clinician, stamp(at)))
                audit.append((stamp(at), f"clinician:{clinician}", "patient.read", patient, "{}", None))
                counts["reviews"] += 1
                counts["audit"] += 1
        await flush()
    for t, team in enumerate(pop.teams):  # the triage pages the team read: about 20 a day, 25 patients each
        members = [pop.patients[i] for i in pop.of_team(team)]
        for day in range(SEASON_DAYS):
            for _ in range(20):
                at = start + day * DAY + rng.uniform(8 * 3600, 18 * 3600)
                audit.append((stamp(at), f"clinician:{pop.clinicians[t]}", "triage.read", None,
                              json.dumps({"page": 1}), rng.sample(members, min(25, len(members)))))  # fmt: skip
                counts["audit"] += 1
        await flush()
    await flush(force=True)
    return counts


# --- the build -------------------------------------------------------------------------------------------------


async def ensure_database(maintenance_url: str, size: Size) -> tuple[str, bool]:
    """The size's database, created and migrated if it is not there; whether it was there."""
    admin = await connect(maintenance_url)
    try:
        existed = await admin.fetchval(DATABASE_EXISTS, size.database) is not None
        if not existed:
            await admin.execute(f'CREATE DATABASE "{size.database}"')  # a name made by Size, never input
    finally:
        await admin.close()
    url = with_database(maintenance_url, size.database)
    conn = await connect(url)
    try:
        await migrate(conn)
        await conn.execute(STATE)
    finally:
        await conn.close()
    return url, existed


async def drop_database(maintenance_url: str, size: Size) -> None:
    admin = await connect(maintenance_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{size.database}" WITH (FORCE)')
    finally:
        await admin.close()


async def build(maintenance_url: str, size: Size) -> Build:
    """Build (or resume, or find built) the database of ``size``; every stage commits with its state row."""
    url, existed = await ensure_database(maintenance_url, size)
    result = Build(url, size)
    conn = await asyncpg.connect(url)  # no JSON codec: COPY sends jsonb from JSON text
    try:
        done = {r["stage"]: (json.loads(r["detail"]), r["seconds"]) for r in await conn.fetch(STAGES_DONE)}
        if existed and done:
            say(f"  {size.database}: found, {len(done)} stages done before")
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")

        async def stage(name: str, detail: dict[str, Any], started: float) -> None:
            seconds = time.perf_counter() - started
            await conn.execute(STAGE_DONE, name, json.dumps(detail), seconds)
            result.stages[name] = seconds
            say(f"  {size.database}: {name} {seconds:.1f} s {json.dumps(detail) if detail else ''}")

        def reuse(name: str) -> dict[str, Any] | None:
            if name not in done:
                return None
            detail, seconds = done[name]
            result.stages[name] = seconds
            result.resumed.append(name)
            return dict(detail)

        people = reuse("people")
        if people is None:
            started = time.perf_counter()
            params = Params("scale", size.patients, size.teams, 0, 0, cgm_share=CGM_SHARE)
            async with conn.transaction():
                await load_people(conn, params, random.Random(1))
                people = {"season_end": int(time.time()) // 60 * 60 - 600}
                await stage("people", people, started)
        season_end = int(people["season_end"])
        if time.time() - season_end > 6 * 3600:  # the passes and pages judge the last days against the clock
            say(f"  {size.database}: its season ended {(time.time() - season_end) / 3600:.0f} h ago; drop it for"
                " figures of a season that ends now")  # fmt: skip
        pop = await population(conn)

        indexes = reuse("drop_indexes")
        if indexes is None:
            started = time.perf_counter()
            found = [dict(r) for r in await conn.fetch(READING_INDEXES)]
            async with conn.transaction():
                for index in found:  # DDL takes no parameters: names come from the catalogue, quoted
                    if index["constraint_name"]:
                        await conn.execute(f"ALTER TABLE readings DROP CONSTRAINT {_ident(index['constraint_name'])}")
                    else:
                        await conn.execute(f"DROP INDEX {_ident(index['name'])}")
                indexes = {"indexes": found}
                await stage("drop_indexes", indexes, started)
        chunks = -(-SEASON_DAYS // CHUNK_DAYS)
        for chunk in range(chunks):
            name = f"readings_{chunk:02d}"
            if reuse(name) is None:
                started = time.perf_counter()
                async with conn.transaction():
                    await conn.copy_to_table(
                        "readings", source=_copy_text(pop, season_end, chunk), columns=READING_COLUMNS, format="text"
                    )
                    await stage(name, {}, started)
        if reuse("indexes") is None:
            started = time.perf_counter()
            async with conn.transaction():
                for index in indexes["indexes"]:
                    if index["constraint_name"]:
                        await conn.execute(
                            f"ALTER TABLE readings ADD CONSTRAINT {_ident(index['constraint_name'])} "
                            f"{index['constraint_definition']}"
                        )
                    else:  # the catalogue writes a partitioned index "ON ONLY" the parent: build it on every part
                        await conn.execute(index["definition"].replace(" ON ONLY ", " ON ", 1))
                await stage("indexes", {}, started)
        if reuse("alerts") is None:
            started = time.perf_counter()
            async with conn.transaction():
                stored = await load_alerts(conn, pop, season_end)
                await stage("alerts", {"alerts": stored}, started)
        if reuse("use") is None:
            started = time.perf_counter()
            async with conn.transaction():
                counts = await load_use(conn, pop, season_end)
                await stage("use", counts, started)
        if reuse("vacuum") is None:
            started = time.perf_counter()
            await conn.execute("VACUUM (ANALYZE)")
            await stage("vacuum", {}, started)
        for table in ("readings", "alerts", "measurements", "messages", "patient_reviews", "audit_log"):
            result.counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")  # names from this tuple
        result.bytes_on_disk = await conn.fetchval(DATABASE_SIZE)
    finally:
        await conn.close()
    return result


def describe(builds: Sequence[Build]) -> list[str]:
    lines = []
    for b in builds:
        per_patient = b.bytes_on_disk / b.size.patients / 1024**2
        resumed = f" ({len(b.resumed)} stages from an earlier run)" if b.resumed else ""
        lines.append(
            f"  {b.size.percent:g} %: {b.size.patients:,} patients in {b.size.teams} teams, "
            f"{b.counts.get('readings', 0):,} readings, {b.counts.get('alerts', 0):,} alerts, "
            f"{b.counts.get('measurements', 0):,} doses, {b.counts.get('messages', 0):,} messages, "
            f"{b.counts.get('audit_log', 0):,} audit rows; built in {b.seconds:.0f} s{resumed}; "
            f"{b.bytes_on_disk / 1024**3:.2f} GiB = {per_patient:.2f} MiB per patient-season"
        )
    return lines
