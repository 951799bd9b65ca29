"""``python -m bench.dashboard [--quick]``: server time of the dashboard's triage and patient pages.

A fresh, uniquely named database (migrated, dropped at the end even on failure) on the PostgreSQL the tests use
(127.0.0.1:5432 if it answers, else an embedded one) is filled with COPY: 10,000 patients in 10 care teams of
1,000 (one in ten wearing a CGM), 6 million readings (CGM patients: 5-minute readings over their last ~13 days;
meter patients: 4–5 readings a day over their last ~2 months), and ~30,000 alerts (a third of the patients with
open ones, most of them with history). ``--quick``: 1,000 patients in one team and 600,000 readings.
The readings' indexes are dropped during the load and rebuilt after it, then the tables are vacuumed and
analysed, as a production database would be.

``telemon serve --roles api`` then runs as a subprocess on that database; one clinician per team signs in and
requests, one at a time, its team's triage page (page 1 mostly, some page 2 and filtered views) and random
patient pages of the team. The figures are the server's own time per page (its ``Server-Timing`` header: from
the session lookup to the rendered HTML, every query included), with the client's round trip beside them.

The last line printed is one JSON object with ``triage_p50_ms``, ``triage_p95_ms``, ``patient_p95_ms``.
Targets: triage p95 ≤ 100 ms, patient page p95 ≤ 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

from bench.common import BenchError, clean_env, free_port, fresh_database, say
from telemon.security import hash_password
from tests.support.services import postgres_server

PASSWORD = "bench-dashboard-password"
ZONES = ("Europe/Paris", "Europe/Paris", "Europe/Paris", "Europe/London", "America/Martinique", "Indian/Reunion")
CHUNK = 250_000  # readings per COPY chunk
TARGETS = {"triage_p95_ms": 100.0, "patient_p95_ms": 150.0}
RULES = (
    ("hypo_l2", "urgent", False), ("fasting_severe", "urgent", False), ("cgm_predicted_low", "urgent", False),
    ("hypo_l1", "warning", False), ("ketone_check", "warning", False), ("consecutive_above_target", "warning", False),
    ("pattern_above_target", "warning", False), ("fasting_pattern", "warning", False), ("no_data", "warning", False),
    ("fasting_above_target", "info", True), ("postprandial_above_target", "info", True),
    ("low_adherence", "info", False), ("cgm_range_review", "warning", False),
)  # fmt: skip


@dataclass(frozen=True)
class Params:
    mode: str
    patients: int
    teams: int
    readings: int
    requests: int
    cgm_share: float = 0.1


def parse_args(argv: Sequence[str] | None) -> Params:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 patients and 600,000 readings (under a minute)")
    parser.add_argument("--patients", type=int, help="patients (default 10,000; quick 1,000)")
    parser.add_argument("--teams", type=int, help="care teams sharing them (default 10; quick 1)")
    parser.add_argument("--readings", type=int, help="readings stored (default 6,000,000; quick 600,000)")
    parser.add_argument("--requests", type=int, help="requests of each page measured (default 400; quick 150)")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    return Params(
        mode="quick" if quick else "full",
        patients=args.patients or (1_000 if quick else 10_000),
        teams=args.teams or (1 if quick else 10),
        readings=args.readings or (600_000 if quick else 6_000_000),
        requests=args.requests or (150 if quick else 400),
    )


# --- the data ------------------------------------------------------------------------------------------------------


@dataclass
class Population:
    team_ids: list[uuid.UUID]
    emails: list[str]
    patients: list[uuid.UUID]
    team_of: list[int]  # team index of each patient
    cgm: np.ndarray[Any, np.dtype[np.bool_]]
    devices: list[str]
    by_team: dict[int, list[uuid.UUID]] = field(default_factory=dict)


async def _copy(conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    await conn.copy_records_to_table(table, records=rows, columns=list(columns))


async def load_people(conn: asyncpg.Connection, params: Params, rng: random.Random) -> Population:
    now = dt.datetime.now(dt.UTC)
    team_ids = [uuid.uuid4() for _ in range(params.teams)]
    await _copy(conn, "care_teams", ("id", "name"), [(t, f"Maternité {i + 1:02d}") for i, t in enumerate(team_ids)])
    password_hash = hash_password(PASSWORD)
    clinicians = [uuid.uuid4() for _ in team_ids]
    emails = [f"dr.team{i + 1:02d}@bench.example" for i in range(params.teams)]
    await _copy(
        conn,
        "clinicians",
        ("id", "email", "password_hash", "display_name", "role", "language", "display_unit"),
        [
            (c, e, password_hash, f"Dr Team {i + 1}", "diabetologist", "fr" if i % 2 else "en", ("mg/dL", "mmol/L", "g/L")[i % 3])
            for i, (c, e) in enumerate(zip(clinicians, emails, strict=True))
        ],
    )  # fmt: skip
    await _copy(conn, "team_memberships", ("team_id", "clinician_id"), list(zip(team_ids, clinicians, strict=True)))
    n = params.patients
    patients = [uuid.uuid4() for _ in range(n)]
    team_of = [i % params.teams for i in range(n)]
    cgm = np.array([rng.random() < params.cgm_share for _ in range(n)])
    first = ("Camille", "Léa", "Inès", "Sarah", "Manon", "Chloé", "Emma", "Jade", "Louise", "Alice", "Lina", "Nora")
    rows: list[tuple[Any, ...]] = []
    for i, patient in enumerate(patients):
        profile = rng.choices(("FR", "NICE", "ADA"), (8, 1, 1))[0]
        reviewed = now - dt.timedelta(hours=rng.uniform(1, 24 * 20)) if rng.random() < 0.7 else None
        overrides = {"fasting": 92.0} if rng.random() < 0.1 else {}
        rows.append((
            patient, team_ids[team_of[i]], f"IPP-{i:07d}", f"{rng.choice(first)} {chr(65 + i % 26)}. {i}",
            rng.choice(ZONES), (now + dt.timedelta(days=rng.randint(5, 120))).date(),
            rng.choices(("diet", "metformin", "insulin"), (6, 1, 3))[0], profile, json.dumps(overrides),
            rng.choice((4, 4, 4, 6)), reviewed,
        ))  # fmt: skip
    await conn.execute("SET synchronous_commit = off")
    await conn.copy_records_to_table(
        "patients",
        records=rows,
        columns=[
            "id", "team_id", "external_id", "display_name", "time_zone", "due_date", "treatment", "profile",
            "target_overrides", "readings_per_day", "last_reviewed_at",
        ],
    )  # fmt: skip
    devices = [f"{'cgm' if cgm[i] else 'meter'}-{i:08x}" for i in range(n)]
    await _copy(
        conn,
        "devices",
        ("patient_id", "id", "kind", "label", "token_hash", "ns_secret_hash", "broker_password"),
        [
            (p, d, "cgm" if cgm[i] else "meter", "bench", os.urandom(32), os.urandom(32), "-")
            for i, (p, d) in enumerate(zip(patients, devices, strict=True))
        ],
    )
    population = Population(team_ids, emails, patients, team_of, cgm, devices)
    for i, patient in enumerate(patients):
        population.by_team.setdefault(team_of[i], []).append(patient)
    return population


_SLOTS = (  # local hour, context, meal, minutes after meal
    (7.5, "fasting", None, None),
    (10.0, "after_meal", "breakfast", 120),
    (14.0, "after_meal", "lunch", 120),
    (21.0, "after_meal", "dinner", 120),
    (22.5, "bedtime", None, None),
)


def _reading_times(pop: Population, params: Params, seed: int) -> list[np.ndarray[Any, Any]]:
    """Per patient, the epoch seconds of its readings: CGM patients get most of them (5-minute readings up to
    now), meter patients 5 a day (fasting, after each meal, bedtime) over as many days as their share needs."""
    rng = np.random.default_rng(seed)
    n_cgm = int(pop.cgm.sum())
    n_meter = len(pop.patients) - n_cgm
    cgm_each = min(14 * 288, int(0.6 * params.readings / max(n_cgm, 1))) if n_cgm else 0
    meter_each = (params.readings - cgm_each * n_cgm) // max(n_meter, 1)
    now = int(time.time()) - 120
    hours = np.array([slot[0] for slot in _SLOTS])
    out: list[np.ndarray[Any, Any]] = []
    for i in range(len(pop.patients)):
        if pop.cgm[i]:
            t = now - 300 * np.arange(cgm_each, dtype=np.int64)[::-1] - int(rng.integers(0, 290))
        else:
            days = -(-meter_each // len(_SLOTS))
            day0 = (now // 86400 - days) * 86400
            grid = day0 + 86400 * np.arange(days + 1)[:, None] + (hours * 3600).astype(np.int64)[None, :]
            t = grid.ravel()[:meter_each] + rng.integers(-900, 900, size=meter_each)
            t = t[t < now]
        out.append(t)
    return out


async def _reading_chunks(pop: Population, params: Params) -> AsyncIterator[bytes]:
    """The readings as COPY text, in time order across patients as devices send them (so that a patient's
    readings are spread over the table's pages as in production, not stored side by side)."""
    rng = np.random.default_rng(7)
    times = _reading_times(pop, params, 11)
    owner = np.repeat(np.arange(len(times), dtype=np.int32), [len(t) for t in times])
    t = np.concatenate(times)
    is_cgm = pop.cgm[owner]
    minute = (t % 86400) / 60.0
    cgm_base = 95 + 45 * np.maximum(0, np.sin((minute - 420) / 1440 * 6 * np.pi)) ** 2
    slot = np.searchsorted([9, 12, 18, 22, 25], (t % 86400) // 3600, side="right").clip(0, len(_SLOTS) - 1)
    meter_mean = np.where(slot == 0, 90.0, np.where(slot == 4, 105.0, 118.0))
    values = np.where(
        is_cgm,
        np.clip(np.round(cgm_base + rng.normal(0, 12, len(t))), 40, 400),
        np.clip(np.round(rng.normal(meter_mean, 14)), 45, 400),
    )
    order = np.argsort(t, kind="stable")
    patients = [str(p) for p in pop.patients]
    nulls = "\\N"
    slot_text = [
        f"{context}\t{meal or nulls}\t{minutes if minutes is not None else nulls}"
        for _, context, meal, minutes in _SLOTS
    ]
    for start in range(0, len(order), CHUNK):
        part = order[start : start + CHUNK]
        stamps = np.datetime_as_string(t[part].astype("datetime64[s]"), unit="s", timezone="UTC").tolist()
        lines = []
        for i, stamp, value, cgm, k in zip(
            owner[part].tolist(), stamps, values[part].tolist(), is_cgm[part].tolist(), slot[part].tolist(),
            strict=True,
        ):  # fmt: skip
            kind, context = ("cgm", f"unspecified\t{nulls}\t{nulls}") if cgm else ("smbg", slot_text[k])
            lines.append(
                f"{patients[i]}\t{pop.devices[i]}\t{kind}\t{stamp}\t{value}\tmg/dL\t{stamp}\t{value}\t{context}\thttp"
            )
        yield ("\n".join(lines) + "\n").encode()


READING_COLUMNS = [
    "patient_id", "device_id", "kind", "device_time", "value_raw", "unit_raw", "measured_at", "value_mgdl",
    "context", "meal", "minutes_after_meal", "source",
]  # fmt: skip

# The readings' indexes and primary key, as the migrations made them (rebuilt after the load, not per row).
READING_INDEXES = """
SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition, con.conname AS constraint_name,
       pg_get_constraintdef(con.oid) AS constraint_definition
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
WHERE i.indrelid = 'readings'::regclass
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def load_readings(conn: asyncpg.Connection, pop: Population, params: Params) -> int:
    indexes = await conn.fetch(READING_INDEXES)
    for index in indexes:  # DDL takes no parameters: names come from the catalogue, quoted
        if index["constraint_name"]:
            await conn.execute(f"ALTER TABLE readings DROP CONSTRAINT {_ident(index['constraint_name'])}")
        else:
            await conn.execute(f"DROP INDEX {_ident(index['name'])}")
    await conn.copy_to_table("readings", source=_reading_chunks(pop, params), columns=READING_COLUMNS, format="text")
    await conn.execute("SET maintenance_work_mem = '512MB'")
    for index in indexes:
        if index["constraint_name"]:
            await conn.execute(
                f"ALTER TABLE readings ADD CONSTRAINT {_ident(index['constraint_name'])} "
                f"{index['constraint_definition']}"
            )
        else:  # the catalogue writes a partitioned table's index "ON ONLY" the parent: build it on every partition
            await conn.execute(index["definition"].replace(" ON ONLY ", " ON ", 1))
    stored: int = await conn.fetchval("SELECT count(*) FROM readings")
    return stored


def _message(rule: str, rng: random.Random) -> dict[str, str]:
    value = rng.randint(40, 250)
    day = (dt.date.today() - dt.timedelta(days=rng.randint(0, 6))).isoformat()
    return {
        "en": f"{rule.replace('_', ' ').capitalize()} on {day}: {value} mg/dL at 07:{rng.randint(10, 59)}, "
        f"{value + 7} mg/dL at 10:{rng.randint(10, 59)} (target < 95 mg/dL, FR (CNGOF/SFD 2010)). Rule {rule}.",
        "fr": f"{rule.replace('_', ' ').capitalize()} le {day} : {value} mg/dL à 07:{rng.randint(10, 59)}, "
        f"{value + 7} mg/dL à 10:{rng.randint(10, 59)} (cible < 95 mg/dL, FR (CNGOF/SFD 2010)). Règle {rule}.",
    }


async def load_alerts(conn: asyncpg.Connection, pop: Population, rng: random.Random) -> int:
    now = dt.datetime.now(dt.UTC)
    rows: list[tuple[Any, ...]] = []
    for patient in pop.patients:
        with_open = rng.random() < 0.33
        for k in range(rng.randint(1, 4) if with_open else 0):
            rule, severity, daily = rng.choice(RULES)
            for d in range(rng.randint(2, 6) if daily else 1):
                opened = now - dt.timedelta(hours=rng.uniform(0.2, 24 * 6))
                evidence = {"reading_ids": [], "values_mgdl": [rng.randint(40, 250) for _ in range(3)],
                            "measured_at": [int(opened.timestamp()) - 600 * j for j in range(3)], "target_mgdl": 95}  # fmt: skip
                rows.append((patient, rule, f"t{k}-{d}", severity, "open", json.dumps(_message(rule, rng)),
                             json.dumps(evidence), opened, None, None, None, None))  # fmt: skip
        for k in range(rng.randint(0, 4)):
            rule, severity, _ = rng.choice(RULES)
            opened = now - dt.timedelta(days=rng.uniform(7, 60))
            resolved = opened + dt.timedelta(hours=rng.uniform(1, 48))
            rows.append((patient, rule, f"old-{k}", severity, "resolved", json.dumps(_message(rule, rng)), "{}",
                         opened, opened + dt.timedelta(minutes=30), "clinician:bench", resolved, "system"))  # fmt: skip
    await conn.copy_records_to_table(
        "alerts",
        records=rows,
        columns=[
            "patient_id", "rule", "episode_key", "severity", "status", "message", "evidence", "opened_at",
            "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by",
        ],
    )  # fmt: skip
    return len(rows)


# --- measuring -----------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve(database_url: str, work: Path) -> AsyncIterator[str]:
    port = free_port()
    env = clean_env({"TELEMON_DATABASE_URL": database_url, "TELEMON_LOG_LEVEL": "WARNING",
                     "TELEMON_STATE_DIR": str(work / "state")})  # fmt: skip
    log = (work / "server.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "telemon", "serve", "--roles", "api", "--port", str(port),
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(600):
                if process.returncode is not None:
                    raise BenchError(f"telemon serve exited; see {work / 'server.log'}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"{base}/readyz", timeout=1)).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise BenchError("telemon serve did not become ready")
        yield base
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)
        log.close()


_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_TIMING = re.compile(r"app;dur=([0-9.]+)")


async def signed_in(base: str, email: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base, timeout=30)
    page = await http.get("/login")
    token = _CSRF.search(page.text)
    if token is None:
        raise BenchError("no CSRF token on the login page")
    answer = await http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token[1]})
    if answer.status_code != 303:
        raise BenchError(f"login of {email} answered {answer.status_code}")
    return http


@dataclass
class Samples:
    server_ms: list[float] = field(default_factory=list)
    round_trip_ms: list[float] = field(default_factory=list)

    def add(self, response: httpx.Response, started: float) -> None:
        if response.status_code != 200:
            raise BenchError(f"{response.request.url} answered {response.status_code}")
        timing = _TIMING.search(response.headers.get("server-timing", ""))
        if timing is None:
            raise BenchError(f"{response.request.url}: no Server-Timing header")
        self.server_ms.append(float(timing[1]))
        self.round_trip_ms.append((time.perf_counter() - started) * 1000)


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


TRIAGE_VARIANTS = ("/", "/", "/", "/", "/", "/", "/?page=2", "/?severity=urgent", "/?unreviewed=7", "/?rule=hypo_l2")


async def measure(base: str, pop: Population, params: Params) -> dict[str, Samples]:
    rng = random.Random(3)
    clients = [await signed_in(base, email) for email in pop.emails]
    samples = {"triage": Samples(), "patient": Samples(), "patient_cgm": Samples(), "patient_meter": Samples()}
    cgm_of = dict(zip(pop.patients, pop.cgm.tolist(), strict=True))
    try:
        for warm in range(min(30, params.requests)):  # first requests: connections, caches, plans
            http = clients[warm % len(clients)]
            await http.get("/")
            await http.get(f"/patients/{rng.choice(pop.by_team[warm % len(clients)])}")
        for i in range(params.requests):
            team = i % len(clients)
            http = clients[team]
            started = time.perf_counter()
            samples["triage"].add(await http.get(TRIAGE_VARIANTS[i % len(TRIAGE_VARIANTS)]), started)
            patient = rng.choice(pop.by_team[team])
            started = time.perf_counter()
            response = await http.get(f"/patients/{patient}")
            samples["patient"].add(response, started)
            samples["patient_cgm" if cgm_of[patient] else "patient_meter"].add(response, started)
    finally:
        for http in clients:
            await http.aclose()
    return samples


async def run(params: Params, maintenance_url: str, work: Path) -> dict[str, Any]:
    say(f"bench.dashboard ({params.mode}): {params.patients:,} patients in {params.teams} teams, "
        f"{params.readings:,} readings, {params.requests} requests of each page")  # fmt: skip
    async with fresh_database(maintenance_url, "telemon_bench_ui") as url:
        conn = await asyncpg.connect(url)  # no JSON codec: COPY sends jsonb in binary, from JSON text
        try:
            started = time.perf_counter()
            pop = await load_people(conn, params, random.Random(1))
            stored = await load_readings(conn, pop, params)
            alerts = await load_alerts(conn, pop, random.Random(2))
            await conn.execute("VACUUM (ANALYZE)")
            load_s = time.perf_counter() - started
        finally:
            await conn.close()
        say(f"  loaded {stored:,} readings, {alerts:,} alerts with COPY, indexes rebuilt, vacuumed: {load_s:.1f} s")
        async with serve(url, work) as base:
            samples = await measure(base, pop, params)
    figures = {
        "triage_p50_ms": round(pct(samples["triage"].server_ms, 50), 2),
        "triage_p95_ms": round(pct(samples["triage"].server_ms, 95), 2),
        "patient_p95_ms": round(pct(samples["patient"].server_ms, 95), 2),
        "patient_p50_ms": round(pct(samples["patient"].server_ms, 50), 2),
        "patient_cgm_p95_ms": round(pct(samples["patient_cgm"].server_ms, 95), 2),
        "patient_meter_p95_ms": round(pct(samples["patient_meter"].server_ms, 95), 2),
        "triage_round_trip_p95_ms": round(pct(samples["triage"].round_trip_ms, 95), 2),
        "patient_round_trip_p95_ms": round(pct(samples["patient"].round_trip_ms, 95), 2),
    }
    say("server time per page (Server-Timing), ms:")
    for name in ("triage", "patient", "patient_cgm", "patient_meter"):
        s = samples[name]
        say(f"  {name:<14} n={len(s.server_ms):>4}  p50 {pct(s.server_ms, 50):7.1f}  p95 {pct(s.server_ms, 95):7.1f}"
            f"  max {max(s.server_ms, default=float('nan')):7.1f}   round trip p95 {pct(s.round_trip_ms, 95):7.1f}")  # fmt: skip
    say("targets:")
    for key, limit in TARGETS.items():
        verdict = "PASS" if figures[key] <= limit else "FAIL"
        say(f"  {verdict}  {key} {figures[key]:.1f} ≤ {limit:.0f}")
    return figures | {
        "params": {
            "mode": params.mode, "patients": params.patients, "teams": params.teams, "readings": stored,
            "alerts": alerts, "requests": params.requests, "cgm_share": params.cgm_share, "cpus": os.cpu_count(),
            "statistic": "server time (Server-Timing) per request, sequential requests", "load_s": round(load_s, 1),
        },
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    params = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="telemon-bench-ui-") as tmp:
        try:
            with postgres_server() as maintenance_url:
                summary = asyncio.run(run(params, maintenance_url, Path(tmp)))
        except BenchError as exc:
            print(f"bench.dashboard: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
    print(json.dumps(summary), flush=True)
    return 0 if all(summary[k] <= v for k, v in TARGETS.items()) else 1


if __name__ == "__main__":
    sys.exit(main())
