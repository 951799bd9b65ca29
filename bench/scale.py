"""``python -m bench.scale [--quick] [--sizes 1,10,100] [--keep]``: how telemon's costs grow with the region.

A region's season (``bench.scale_data``: at 100 %, 20,000 patients in 100 care teams of 200, 120 days each, about
46 million readings, and the alerts, doses, messages, reviews and audit rows of a season of use) is built with
COPY at each size, in databases ``telemon_scale_<percent>`` that a later run resumes or reuses (``--keep`` keeps
them; by default they are dropped at the end). On each size, the same figures, each of a team of 200 or of one
patient, so that none should move with the size of the whole database:

- the triage page (page 1, page 2, filters) and random patient pages of a 200-patient team: server time p95
  (``Server-Timing``), from ``telemon serve --roles api`` signed in as the team's clinician;
- the incremental evaluation p99: five new readings of a patient of the team, then ``Engine.evaluate`` of her;
- the hospital exports of one patient, whole season: ``GET /fhir/Observation?patient=…`` (every page, 1,000 a
  page) and ``GET /api/v1/patients/{id}/readings.csv``, for meter patients and CGM wearers apart (round trip);
- the scheduled passes (every patient every 5 minutes; CGM wearers every minute), in a process of their own,
  each run twice (the first after the build opens what the season left; the second is the steady state,
  reported): their time and the share of their period it takes — these grow with the population by nature, so
  their figure is the share (goal: under a quarter) and the time per patient;
- the ingest paths of ``bench.ingest`` (``bench.scale_ingest``): COPY, HTTP batches of 1,000, MQTT messages of 50
  readings and of one reading through the real consumer, and a raw subscriber, on a private Mosquitto, new
  patients' readings sent into the season's tables: each path's rate and its ratio to its baseline (the ratios
  should hold; a rate that falls with the database is a defect as a time that grows is);
- peak RSS of each process: the server, the passes' process, the ingest's API server and its MQTT consumer; and
  the largest chunk of each pass (readings, ms): the
  passes aim at chunks of about 100,000 readings, and one chunk holds its connection (and, served, the event loop
  for its load and reconcile) at once;
- the triage's two statements run directly (``measure_plans``): planned for their values, planned once for any
  values (what PostgreSQL may switch a prepared statement to after five runs), and with JIT; and the triage
  plan's estimated cost, which decides JIT (``jit_above_cost``). The page's p95 hides what a long-lived server may
  pay: these do not.

Every size is built first; then the pages, exports and incremental evaluations go to the sizes in turn, request
by request (every size served at once), so that the shared machine's changing load falls on all sizes alike.
Each figure's growth factor is its value at the largest size over the smallest (goal: within 1.2 for every
figure of a team or a patient). The last line is one JSON object: ``{"growth": {...}, "pass_share": {...},
"sizes": {...}, "build": {...}}``. ``--quick``: sizes 1, 3 and 10 % (the largest a tenth of the region) and
smaller ingest volumes; ``--no-ingest`` leaves the ingest paths out.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import BenchError, Helper, peak_rss_mb, say, start_api_server
from bench.dashboard import Samples, pct, signed_in
from bench.scale_data import Build, Population, Size, build, describe, drop_database, population
from bench.scale_ingest import FULL, QUICK, IngestParams, measure_ingest
from telemon.api_keys import create_api_key
from telemon.db import create_pool
from tests.support.services import postgres_server

PERIODS_S = {"population": 300.0, "cgm": 60.0}  # alerts.scheduled.JOBS: every 5 minutes, every minute
PASS_SHARE_GOAL = 0.25
GROWTH_GOAL = 1.2
TRIAGE_VARIANTS = ("/", "/", "/", "/", "/", "/?page=2", "/?severity=urgent", "/?unreviewed=7")
NEW_READINGS = ["patient_id", "device_id", "kind", "device_time", "value_raw", "unit_raw", "measured_at",
                "value_mgdl", "context", "source"]  # fmt: skip
# Figures of a team or a patient: their growth is the scale's verdict (the passes' time grows with the region by
# nature; their share of the period is judged instead).
PER_TEAM = ("triage_p95_ms", "patient_p95_ms", "incremental_p99_ms", "fhir_meter_ms", "fhir_cgm_ms",
            "csv_meter_ms", "csv_cgm_ms", "server_rss_mb", "triage_sql_custom_ms", "triage_sql_generic_ms",
            "figures_sql_custom_ms", "figures_sql_generic_ms", "passes_rss_mb", "ingest_server_rss_mb",
            "consumer_rss_mb")  # fmt: skip
# Printed with their growth but not judged by it, and why.
BY_NATURE = {
    "triage_plan_cost": "the planner's estimate, from the whole table's statistics; its times are judged",
    "population_chunk_max_readings": "a chunk grows to its bound (100,000 readings, twice the one before)",
    "cgm_chunk_max_readings": "a chunk grows to its bound (100,000 readings, twice the one before)",
}
# ... and those that should not fall: the ingest paths' rates and their ratios to their baselines
PER_TEAM_RATES = ("http_vs_copy", "mqtt_batch_vs_copy", "mqtt_single_vs_raw", "ingest_copy_rps",
                  "ingest_http_batch_rps", "ingest_mqtt_batch_rps", "ingest_mqtt_single_rps")  # fmt: skip


@dataclass(frozen=True)
class Options:
    sizes: tuple[Size, ...]
    requests: int
    evaluations: int
    exports: int
    keep: bool
    ingest: IngestParams | None


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="sizes 1, 3 and 10 %% and fewer requests")
    parser.add_argument("--sizes", help="percents of the region, comma-separated (default 1,10,100)")
    parser.add_argument("--requests", type=int, help="requests of each page (default 300; quick 80)")
    parser.add_argument("--keep", action="store_true", help="keep the databases (a later run reuses them)")
    parser.add_argument("--no-ingest", action="store_true", help="leave the ingest paths out")
    args = parser.parse_args(argv)
    text = args.sizes or ("1,3,10" if args.quick else "1,10,100")
    sizes = tuple(Size(float(s)) for s in text.split(",") if s.strip())
    if not sizes:
        parser.error("--sizes: at least one size")
    return Options(
        sizes=tuple(sorted(sizes, key=lambda s: s.percent)),
        requests=args.requests or (80 if args.quick else 300),
        evaluations=150 if args.quick else 500,
        exports=1 if args.quick else 5,
        keep=bool(args.keep),
        ingest=None if args.no_ingest else (QUICK if args.quick else FULL),
    )


# --- one size ------------------------------------------------------------------------------------------------------


@dataclass
class Figures:
    size: Size
    values: dict[str, float] = field(default_factory=dict)
    passes: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Site:
    """One size while it is measured: its database, people, the measured team, and its server and clients."""

    built: Build
    pop: Population
    team: uuid.UUID
    members: list[int]  # indices in ``pop`` of the team's patients
    api_key: str
    figures: Figures
    server: Helper | None = None
    web: httpx.AsyncClient | None = None  # signed in as the team's clinician
    api: httpx.AsyncClient | None = None  # with the team's API key
    samples: dict[str, Samples] = field(default_factory=lambda: {"triage": Samples(), "patient": Samples()})
    exports: dict[str, list[tuple[float, float, int]]] = field(default_factory=dict)
    evaluations: list[float] = field(default_factory=list)

    @property
    def member_ids(self) -> list[uuid.UUID]:
        return [self.pop.patients[i] for i in self.members]

    def alike(self, cgm: bool, count: int) -> list[uuid.UUID]:
        """The same patient-season at every size: meters of 4 readings a day on insulin first (their doses are
        exported too), or CGM wearers."""
        chosen = [i for i in self.members if bool(self.pop.cgm[i]) == cgm and (cgm or self.pop.per_day[i] == 4)]
        chosen.sort(key=lambda i: self.pop.treatment[i] != "insulin")
        return [self.pop.patients[i] for i in chosen[:count]]


async def open_site(maintenance_url: str, size: Size) -> Site:
    say(f"size {size.percent:g} %: {size.patients:,} patients in {size.teams} teams")
    built = await build(maintenance_url, size)
    conn = await asyncpg.connect(built.url)
    try:
        pop = await population(conn)
        team = pop.teams[0]
        key = await create_api_key(conn, label="bench.scale", scopes=["readings:read"], team_ids=[team])
    finally:
        await conn.close()
    return Site(built, pop, team, pop.of_team(team), key.key, Figures(size))


async def serve_sites(sites: Sequence[Site], work: Path) -> None:
    for site in sites:
        state = work / site.built.size.label
        state.mkdir(parents=True, exist_ok=True)
        site.server, base = await start_api_server(site.built.url, state, roles="api", TELEMON_LOG_LEVEL="WARNING")
        site.web = await signed_in(base, site.pop.emails[0])
        site.api = httpx.AsyncClient(base_url=base, timeout=300, headers={"X-API-Key": site.api_key})


async def close_sites(sites: Sequence[Site]) -> None:
    for site in sites:
        for client in (site.web, site.api):
            if client is not None:
                await client.aclose()
        if site.server is not None:
            await site.server.stop()


async def measure_pages(sites: Sequence[Site], requests: int) -> None:
    """The sizes in turn, request by request: a change of the machine's load falls on every size alike."""
    rng = random.Random(3)
    for i in range(20 + requests):  # the first 20: connections, caches, plans
        variant = TRIAGE_VARIANTS[i % len(TRIAGE_VARIANTS)]
        for site in sites:
            assert site.web is not None
            started = time.perf_counter()
            answer = await site.web.get(variant)
            if i >= 20:
                site.samples["triage"].add(answer, started)
            started = time.perf_counter()
            answer = await site.web.get(f"/patients/{rng.choice(site.member_ids)}")
            if i >= 20:
                site.samples["patient"].add(answer, started)


async def export_ms(http: httpx.AsyncClient, patient: uuid.UUID) -> tuple[float, float, int]:
    """Round trips of a patient's whole season: the FHIR search followed page by page, and the CSV."""
    started = time.perf_counter()
    url: str | None = f"/fhir/Observation?patient={patient}&_count=1000"
    entries = 0
    while url is not None:
        answer = await http.get(url)
        if answer.status_code != 200:
            raise BenchError(f"{url} answered {answer.status_code}: {answer.text[:200]}")
        bundle = answer.json()
        entries += len(bundle.get("entry", []))
        url = next((link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"), None)
    fhir = (time.perf_counter() - started) * 1000
    started = time.perf_counter()
    answer = await http.get(f"/api/v1/patients/{patient}/readings.csv")
    if answer.status_code != 200:
        raise BenchError(f"readings.csv of {patient} answered {answer.status_code}")
    return fhir, (time.perf_counter() - started) * 1000, entries


async def measure_exports(sites: Sequence[Site], count: int) -> None:
    """Each size's chosen patients in turn (after one unmeasured export of each size)."""
    for kind, cgm in (("meter", False), ("cgm", True)):
        chosen = [site.alike(cgm, count) for site in sites]
        if not all(chosen):
            continue
        for k in range(-1, min(len(c) for c in chosen)):
            for site, patients in zip(sites, chosen, strict=True):
                assert site.api is not None
                timing = await export_ms(site.api, patients[max(k, 0)])
                if k >= 0:
                    site.exports.setdefault(kind, []).append(timing)
    for site in sites:
        for kind, timings in site.exports.items():
            site.figures.values[f"fhir_{kind}_ms"] = round(statistics.median(t[0] for t in timings), 1)
            site.figures.values[f"csv_{kind}_ms"] = round(statistics.median(t[1] for t in timings), 1)
            site.figures.values[f"fhir_{kind}_entries"] = float(statistics.median(t[2] for t in timings))


async def _timed(conn: asyncpg.Connection, sql: str, args: Sequence[Any], runs: int = 5) -> float:
    """Median client time of a prepared statement run ``runs`` times (after one unmeasured run)."""
    statement = await conn.prepare(sql)
    await statement.fetch(*args)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await statement.fetch(*args)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def measure_plans(url: str, team: uuid.UUID) -> dict[str, float]:
    """The triage page's two statements (``TRIAGE_PAGE``, then ``PATIENT_FIGURES`` of its rows) on this database,
    planned for their values (what the server does for a statement's first five runs) and planned once for any
    values (what PostgreSQL switches to after five runs when it estimates that plan no dearer, and keeps): the
    time of each, and the triage's estimated cost against ``jit_above_cost`` (a plan above it is compiled by JIT
    on every run, hundreds of ms on this machine). A statement that is fast only when planned for its values
    hides a cost that a long-lived server may pay."""
    from clinician_ui import glycaemia, queries
    from clinician_ui.alert_groups import CLINICAL_ORDER
    from clinician_ui.triage import ALERTS_PER_RULE, FIGURES_WINDOW, PAGE_SIZE, SHARE_WINDOW

    triage = [[team], ["open"], 1, None, None, PAGE_SIZE, 0, ALERTS_PER_RULE, list(CLINICAL_ORDER)]
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(queries.TRIAGE_PAGE, *triage)
        now = dt.datetime.now(dt.UTC)
        ids = [r["patient_id"] for r in rows]
        figures = [ids, now, now - FIGURES_WINDOW, glycaemia.CGM_LOW, glycaemia.CGM_HIGH, now - SHARE_WINDOW]
        plan = json.loads(await conn.fetchval("EXPLAIN (FORMAT JSON) " + queries.TRIAGE_PAGE, *triage))
        out = {
            "triage_plan_cost": round(float(plan[0]["Plan"]["Total Cost"]), 1),
            "jit_above_cost": float(await conn.fetchval("SELECT current_setting('jit_above_cost')::float8")),
        }
        await conn.execute("SET jit_above_cost = 0")  # what the triage pays once its cost crosses the threshold
        out["triage_sql_jit_ms"] = round(await _timed(conn, queries.TRIAGE_PAGE, triage), 2)
        await conn.execute("RESET jit_above_cost")
        for mode, label in (("force_custom_plan", "custom"), ("force_generic_plan", "generic")):
            await conn.execute(f"SET plan_cache_mode = {mode}")  # one of two words of this module
            out[f"triage_sql_{label}_ms"] = round(await _timed(conn, queries.TRIAGE_PAGE, triage), 2)
            out[f"figures_sql_{label}_ms"] = round(await _timed(conn, queries.PATIENT_FIGURES, figures), 2)
        return out
    finally:
        await conn.close()


async def measure_incremental(sites: Sequence[Site], evaluations: int) -> None:
    """Five new readings of a random patient of the team, stored, then her evaluation (load, rules, reconcile);
    the sizes in turn."""
    from alerts.engine import Engine

    rng = random.Random(9)
    pools = [await create_pool(site.built.url, max_size=2) for site in sites]
    try:
        engines = [Engine(pool) for pool in pools]
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        for n in range(evaluations + 10):
            for site, pool, engine in zip(sites, pools, engines, strict=True):
                i = rng.choice(site.members)
                kind = "cgm" if site.pop.cgm[i] else "smbg"
                rows = []
                for k in range(5):
                    at = now - dt.timedelta(seconds=n * 5 + k * 60 + 1)
                    value = float(rng.randint(80, 160))
                    rows.append((site.pop.patients[i], site.pop.devices[i], kind, at, value, "mg/dL", at, value,
                                 "unspecified" if kind == "cgm" else "after_meal", "http"))  # fmt: skip
                async with pool.acquire() as conn:
                    await conn.copy_records_to_table("readings", records=rows, columns=NEW_READINGS)
                started = time.perf_counter()
                await engine.evaluate([site.pop.patients[i]])
                if n >= 10:
                    site.evaluations.append((time.perf_counter() - started) * 1000)
    finally:
        for pool in pools:
            await pool.close()


async def measure_passes(url: str, work: Path) -> dict[str, Any]:
    """The scheduled passes in a process of their own (``python -m bench.scale passes``): its own peak RSS."""
    log = (work / "passes.log").open("wb")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.scale", "passes", url, stdout=asyncio.subprocess.PIPE, stderr=log
        )
        out, _ = await proc.communicate()
    finally:
        log.close()
    if proc.returncode != 0:
        raise BenchError(f"the passes' process failed; see {work / 'passes.log'}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def measure_sites(sites: Sequence[Site], options: Options, work: Path) -> None:
    """Every figure of every size: pages, exports and the server's memory with every size served at once; then
    the statements, the incremental evaluation, and each size's passes in a process of their own."""
    try:
        await serve_sites(sites, work)
        await measure_pages(sites, options.requests)
        await measure_exports(sites, options.exports)
        for site in sites:
            assert site.server is not None and site.server.proc is not None
            values = site.figures.values
            values["triage_p50_ms"] = round(pct(site.samples["triage"].server_ms, 50), 1)
            values["triage_p95_ms"] = round(pct(site.samples["triage"].server_ms, 95), 1)
            values["patient_p95_ms"] = round(pct(site.samples["patient"].server_ms, 95), 1)
            values["server_rss_mb"] = round(peak_rss_mb(site.server.proc.pid), 1)
    finally:
        await close_sites(sites)
    for site in sites:
        site.figures.values.update(await measure_plans(site.built.url, site.team))
    await measure_incremental(sites, options.evaluations)
    for site in sites:
        values = site.figures.values
        values["incremental_p50_ms"] = round(pct(site.evaluations, 50), 1)
        values["incremental_p99_ms"] = round(pct(site.evaluations, 99), 1)
        size = site.built.size
        passes = await measure_passes(site.built.url, work)
        site.figures.passes = {"population": passes["population_s"], "cgm": passes["cgm_s"]}
        say(f"  {size.percent:g} %: passes (population, CGM; twice): {passes['population_s']} s, {passes['cgm_s']} s;"
            f" alert changes {passes['changes']}; peak RSS after each {passes['rss_mb']} MB")  # fmt: skip
        values["population_pass_s"] = round(passes["population_s"][-1], 2)
        values["cgm_pass_s"] = round(passes["cgm_s"][-1], 2)
        values["population_pass_ms_per_patient"] = round(passes["population_s"][-1] * 1000 / size.patients, 3)
        cgm_wearers = max(1, int(site.pop.cgm.sum()))
        values["cgm_pass_ms_per_wearer"] = round(passes["cgm_s"][-1] * 1000 / cgm_wearers, 3)
        values["passes_rss_mb"] = round(passes["peak_rss_mb"], 1)
        for job in ("population", "cgm"):
            chunks = passes["chunks"][f"{job}_s"]
            values[f"{job}_chunk_max_readings"] = max((r for _, r, _ in chunks), default=0)
            values[f"{job}_chunk_max_ms"] = max((ms for _, _, ms in chunks), default=0)
            say(f"  {size.percent:g} %: {job} pass chunks (patients, readings, ms): {chunks}")
    if options.ingest is not None:
        ingest = await measure_ingest([(s.built.size.label, s.built.url) for s in sites], options.ingest, work)
        for site in sites:
            site.figures.values.update(ingest[site.built.size.label])


# --- the passes' process -----------------------------------------------------------------------------------------


def _chunk_recorder() -> Any:
    """``alerts.engine.Engine`` that records each chunk of its passes: patients, readings, ms (the time one
    evaluation holds its connection, and in a served process the event loop for its load and reconcile)."""
    from alerts.engine import Engine

    class Recording(Engine):
        chunks: list[tuple[int, int, float]]

        async def evaluate(self, patient_ids: Sequence[uuid.UUID], **kwargs: Any) -> Any:
            sizes = kwargs.get("sizes")
            started = time.perf_counter()
            changes = await super().evaluate(patient_ids, **kwargs)
            spent = (time.perf_counter() - started) * 1000
            self.chunks.append((len(patient_ids), sum(sizes.values()) if sizes is not None else 0, spent))
            return changes

    return Recording


async def _passes(url: str) -> dict[str, Any]:
    pool = await create_pool(url, max_size=2)
    try:
        engine = _chunk_recorder()(pool)
        out: dict[str, Any] = {"population_s": [], "cgm_s": [], "changes": [], "rss_mb": [], "chunks": {}}
        for _ in range(2):
            for name, cgm_only in (("population_s", False), ("cgm_s", True)):
                engine.chunks = []
                started = time.perf_counter()
                changes = await engine.evaluate_population(cgm_only=cgm_only)
                out[name].append(round(time.perf_counter() - started, 3))
                out["changes"].append(changes)
                out["rss_mb"].append(round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
                out["chunks"][name] = [(n, r, round(ms)) for n, r, ms in engine.chunks]  # the last run's
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out
    finally:
        await pool.close()


# --- the run -------------------------------------------------------------------------------------------------------


def growth(figures: Sequence[Figures]) -> dict[str, float]:
    first, last = figures[0].values, figures[-1].values
    return {k: round(last[k] / first[k], 2) for k in last if k in first and first[k] > 0}


async def run(options: Options, maintenance_url: str, work: Path) -> dict[str, Any]:
    say(f"bench.scale: sizes {', '.join(f'{s.percent:g} %' for s in options.sizes)} of a region of 20,000 "
        f"patients; {options.requests} requests of each page, {options.evaluations} evaluations")  # fmt: skip
    try:
        sites = [await open_site(maintenance_url, size) for size in options.sizes]
        await measure_sites(sites, options, work)
    finally:
        if not options.keep:
            for size in options.sizes:
                await drop_database(maintenance_url, size)
                say(f"dropped database {size.database}")
    results = [site.figures for site in sites]
    builds = [site.built for site in sites]
    say("built:")
    for line in describe(builds):
        say(line)
    keys = list(results[0].values)
    say(f"{'figure':<32}" + "".join(f"{f'{f.size.percent:g} %':>12}" for f in results) + f"{'growth':>10}")
    factors = growth(results)
    for k in keys:
        row = "".join(f"{f.values.get(k, float('nan')):>12g}" for f in results)
        say(f"{k:<32}{row}{factors.get(k, float('nan')):>10.2f}")
    largest = results[-1]
    share = {job: round(largest.passes[job][-1] / period, 4) for job, period in PERIODS_S.items()}
    say("verdicts (largest size against the smallest):")
    for k in PER_TEAM:
        if k in factors:
            say(
                f"  {'PASS' if factors[k] <= GROWTH_GOAL else 'MISS'}  {k} grew {factors[k]:.2f}× (goal ≤ {GROWTH_GOAL})"
            )
    for k, why in BY_NATURE.items():
        if k in factors:
            say(f"  ----  {k} grew {factors[k]:.2f}× (not judged: {why})")
    for k in PER_TEAM_RATES:
        if k in factors:
            verdict = "PASS" if factors[k] >= 1 / GROWTH_GOAL else "MISS"
            say(f"  {verdict}  {k} changed {factors[k]:.2f}× (goal ≥ {1 / GROWTH_GOAL:.2f})")
    for job, value in share.items():
        verdict = "PASS" if value < PASS_SHARE_GOAL else "MISS"
        say(f"  {verdict}  {job} pass takes {value:.1%} of its {PERIODS_S[job]:.0f} s period (goal < 25 %)")
    return {
        "growth": factors,
        "pass_share": share,
        "sizes": {f"{f.size.percent:g}": f.values for f in results},
        "build": {
            f"{b.size.percent:g}": {"seconds": round(b.seconds, 1), "resumed_stages": len(b.resumed),
                                    "bytes_per_patient_season": round(b.bytes_on_disk / b.size.patients),
                                    **b.counts}
            for b in builds
        },
        "cpus": os.cpu_count(),
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["passes"]:
        print(json.dumps(asyncio.run(_passes(args[1]))), flush=True)
        return 0
    options = parse_args(args)
    with tempfile.TemporaryDirectory(prefix="telemon-bench-scale-") as tmp:
        try:
            with postgres_server() as maintenance_url:
                summary = asyncio.run(run(options, maintenance_url, Path(tmp)))
        except BenchError as exc:
            print(f"bench.scale: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
