"""Hostile HTTP load against a served process: 5xx answers, rejections reported against recorded, the server's
memory across rounds, and the throughput of hostile requests against valid ones in the same run.

``python -m bench.hostile [--quick]`` creates a fresh, uniquely named database (``telemon_soak_<random>``, migrated,
dropped at the end even on failure) on the PostgreSQL the tests use, starts ``telemon serve --roles api`` as a
subprocess on a free loopback port, registers one patient with a device and an API key, then:

1. ``before``: the server's resident memory (``VmRSS`` of ``/proc/<pid>/status``) after a few valid requests;
2. ``baseline``: valid ``POST /api/v1/readings`` of 10 new readings each, ``--concurrency`` in flight (the rate
   hostile requests are compared with);
3. ``calibration``: every request of the corpus (``tests.support.hostile``) once, one at a time, with the rows
   each one added to ``ingest_rejections``: a request whose answer reports another number of rejections than it
   recorded is named;
4. ``rounds``: ``--hostile`` requests of the corpus in ``--rounds`` rounds (a heavy one — megabytes, gzip bombs,
   10,000 bad items — every ``--heavy-every``), the server's ``VmRSS`` after each round, after a short idle.

The server's peak is its ``VmHWM``. Memory is judged by growth, not by size: the first round warms caches,
pools and allocator arenas; a process that keeps what hostile requests made grows again in every later round.
The last line printed is one JSON object with the figures; the exit status is 1 when any answer was a 5xx, the
reported and recorded rejections differ, or the memory broke a bound of ``tests/integration/test_memory_soak.py``
(idle after the rounds, the server kept more than 38 % of what its peak added, or the last round grew it by more
than half what the first did).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.common import BenchError, dumps, fresh_database, say, start_api_server
from telemon import api_keys, loop
from telemon.db import create_pool
from telemon.settings import redact
from tests.support import hostile
from tests.support.factories import patient_with_device
from tests.support.services import postgres_server

MAX_BODY_BYTES = 5 * 1024 * 1024  # the default TELEMON_MAX_BODY_BYTES
MAX_BATCH_READINGS = 10_000  # the default TELEMON_MAX_BATCH_READINGS
VALID_BATCH = 10
# after a round, before its memory is read: requests finished, the server's periodic check (a collection, then
# malloc_trim: ``telemon.loop.release_freed_memory``) has run
IDLE_S = loop.TRIM_INTERVAL_S + 1.5
SCOPES = ("readings:read", "readings:write", "alerts:read", "alerts:write")
# The bounds of tests/integration/test_memory_soak.py (see there): idle after the rounds, at most this share of
# what the peak added stays; the last round adds at most this share of what the first added, or FLOOR_MB.
MAX_RETAINED_SHARE_OF_PEAK = 0.38
MAX_LAST_SHARE_OF_FIRST = 0.5
FLOOR_MB = 8.0


@dataclass(frozen=True)
class Params:
    mode: str
    hostile: int
    rounds: int
    heavy_every: int
    valid: int
    concurrency: int


def parse_args(argv: Sequence[str] | None) -> Params:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 hostile requests in 4 rounds (under a minute)")
    parser.add_argument("--hostile", type=int, help="hostile requests in all (default 10,000; quick 2,000)")
    parser.add_argument("--rounds", type=int, help="rounds they are sent in (default 5; quick 4)")
    parser.add_argument("--heavy-every", type=int, default=20, help="one heavy request every N (default 20)")
    parser.add_argument("--valid", type=int, help="valid requests of the baseline (default 2,000; quick 500)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    params = Params(
        mode="quick" if quick else "full",
        hostile=args.hostile or (2000 if quick else 10_000),
        rounds=args.rounds or (4 if quick else 5),
        heavy_every=args.heavy_every,
        valid=args.valid or (500 if quick else 2000),
        concurrency=args.concurrency,
    )
    if min(params.hostile, params.rounds, params.valid, params.concurrency) < 1 or params.heavy_every < 0:
        parser.error("--hostile, --rounds, --valid and --concurrency must be positive")
    if params.rounds < 2:
        parser.error("--rounds must be at least 2: memory is compared between the first and the last round")
    return params


# --- the server ----------------------------------------------------------------------------------------------


# --- sending --------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the answers to hostile requests said."""

    sent: int = 0
    reported: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    server_errors: collections.Counter[str] = field(default_factory=collections.Counter)
    transport_errors: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, request: hostile.Hostile, response: httpx.Response) -> int:
        self.sent += 1
        self.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.server_errors[f"{request.name} -> {response.status_code}"] += 1
            return 0
        try:
            reported = hostile.reported_rejections(request, response)
        except (ValueError, AttributeError, TypeError):
            reported = 0  # an answer of the wrong shape: the calibration names the request
        self.reported += reported
        return reported


async def send(client: httpx.AsyncClient, base: str, request: hostile.Hostile) -> httpx.Response:
    """One request; sent once more when the kept-alive connection it went out on was closed under it (the server
    closes a connection after refusing a body it did not read, and the next request on it fails)."""
    for attempt in (1, 2):
        try:
            return await client.request(
                request.method, base + request.path, headers=request.headers, content=request.body,
                params=request.params,
            )  # fmt: skip
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def send_all(
    base: str, requests: Iterable[hostile.Hostile], concurrency: int, tally: Tally, client: httpx.AsyncClient
) -> float:
    """Send every request, ``concurrency`` in flight; the seconds taken."""
    pending = iter(requests)

    async def worker() -> None:
        for request in pending:
            try:
                response = await send(client, base, request)
            except httpx.HTTPError as exc:  # a reset connection is not an answer: counted apart, run goes on
                tally.sent += 1
                tally.transport_errors[f"{request.name}: {type(exc).__name__}"] += 1
                continue
            tally.add(request, response)

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return time.perf_counter() - started


def valid_bodies(count: int, now: dt.datetime) -> list[bytes]:
    """``count`` bodies of ``VALID_BATCH`` new readings each, a minute apart, in the last days."""
    start = now - dt.timedelta(minutes=count * VALID_BATCH + 60)
    bodies = []
    for request in range(count):
        readings = []
        for i in range(VALID_BATCH):
            at = start + dt.timedelta(minutes=request * VALID_BATCH + i)
            readings.append({"id": f"v{request}-{i}", "measured_at": at.isoformat(), "value": 90 + (request + i) % 60,
                             "unit": "mg/dL", "kind": "cgm"})  # fmt: skip
        bodies.append(dumps({"readings": readings}))
    return bodies


async def send_valid(client: httpx.AsyncClient, base: str, token: str, bodies: list[bytes], concurrency: int) -> float:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    pending = iter(bodies)

    async def worker() -> None:
        for body in pending:
            response = await client.post(f"{base}/api/v1/readings", content=body, headers=headers)
            if response.status_code != 200 or response.json().get("accepted") != VALID_BATCH:
                raise BenchError(f"valid request answered {response.status_code}: {response.text[:300]}")

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
    return time.perf_counter() - started


async def recorded(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM ingest_rejections")
    return count


async def calibrate(
    pool: asyncpg.Pool, client: httpx.AsyncClient, base: str, corpus: hostile.Corpus, tally: Tally
) -> list[dict[str, Any]]:
    """Each request of the corpus once, one at a time: those whose reported rejections differ from the rows they
    added (a 5xx is counted in ``tally`` and listed here too)."""
    mismatches = []
    for request in [*corpus.light, *corpus.heavy]:
        before = await recorded(pool)
        try:
            response = await send(client, base, request)
        except httpx.HTTPError as exc:
            tally.sent += 1
            tally.transport_errors[f"{request.name}: {type(exc).__name__}"] += 1
            continue
        reported = tally.add(request, response)
        added = await recorded(pool) - before
        if added != reported or response.status_code >= 500:
            mismatches.append(
                {"request": request.name, "status": response.status_code, "reported": reported, "recorded": added}
            )
    return mismatches


# --- the run --------------------------------------------------------------------------------------------------


async def measure(params: Params, pool: asyncpg.Pool, db_url: str, work: Path) -> dict[str, Any]:
    setup = await patient_with_device(pool, kind="cgm", due_date=dt.date.today() + dt.timedelta(days=100))
    async with pool.acquire() as conn:
        key = await api_keys.create_api_key(conn, label="bench", scopes=list(SCOPES), team_ids=[setup.team_id])
    creds = hostile.Credentials(setup.patient_id, setup.token, key.key)
    built_at = time.perf_counter()
    corpus = hostile.build(creds, max_body_bytes=MAX_BODY_BYTES, max_batch_readings=MAX_BATCH_READINGS)
    bodies = valid_bodies(params.valid + 20, dt.datetime.now(dt.UTC))
    say(f"  corpus of {len(corpus.light)} light and {len(corpus.heavy)} heavy requests built"
        f" in {time.perf_counter() - built_at:.1f} s")  # fmt: skip
    server, base = await start_api_server(
        db_url,
        work,
        TELEMON_LOG_LEVEL="WARNING",
        TELEMON_MAX_BODY_BYTES=str(MAX_BODY_BYTES),
        TELEMON_MAX_BATCH_READINGS=str(MAX_BATCH_READINGS),
    )
    assert server.proc is not None
    pid = server.proc.pid
    tally = Tally()
    limits = httpx.Limits(max_connections=params.concurrency, max_keepalive_connections=params.concurrency)
    try:
        async with httpx.AsyncClient(limits=limits, timeout=120) as client:
            await send_valid(client, base, creds.device_token, bodies[:20], params.concurrency)
            await asyncio.sleep(IDLE_S)
            before = hostile.memory_mb(pid)["VmRSS"]
            say(f"server pid {pid}: {before:.1f} MB resident after warm-up")
            valid_s = await send_valid(client, base, creds.device_token, bodies[20:], params.concurrency)
            valid_rps = params.valid / valid_s
            say(f"  baseline: {params.valid:,} valid requests ({VALID_BATCH} readings each) in {valid_s:.2f} s"
                f" = {valid_rps:,.0f} requests/s")  # fmt: skip
            mismatches = await calibrate(pool, client, base, corpus, tally)
            say(f"  calibration: {tally.sent} requests, one of each, one at a time;"
                f" reported != recorded for {len(mismatches)}")  # fmt: skip
            for mismatch in mismatches:
                say(f"    {mismatch}")
            per_round = params.hostile // params.rounds
            rss: list[float] = []
            hostile_s = 0.0
            sent_in_rounds = 0
            for number in range(params.rounds):
                count = per_round if number < params.rounds - 1 else params.hostile - per_round * number
                schedule = corpus.schedule(count, params.heavy_every, start=sent_in_rounds)
                seconds = await send_all(base, schedule, params.concurrency, tally, client)
                hostile_s += seconds
                sent_in_rounds += count
                if not server.alive():
                    raise server.died()
                await asyncio.sleep(IDLE_S)
                rss.append(hostile.memory_mb(pid)["VmRSS"])
                say(f"  round {number + 1}: {count:,} hostile requests in {seconds:.2f} s"
                    f" = {count / seconds:,.0f}/s; server {rss[-1]:.1f} MB resident")  # fmt: skip
            peak = hostile.memory_mb(pid)["VmHWM"]
    finally:
        await server.stop()
    recorded_total = await recorded(pool)
    hostile_rps = sent_in_rounds / hostile_s
    first_growth = rss[0] - before
    last_growth = rss[-1] - rss[-2]
    return {
        "hostile_requests": tally.sent,
        "hostile_requests_in_rounds": sent_in_rounds,
        "server_errors_5xx": sum(tally.server_errors.values()),
        "server_errors_by_request": dict(tally.server_errors),
        "transport_errors": dict(tally.transport_errors),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "rejections_reported": tally.reported,
        "rejections_recorded": recorded_total,
        "calibration_mismatches": mismatches,
        "rss_before_mb": round(before, 1),
        "rss_after_first_round_mb": round(rss[0], 1),
        "rss_after_last_round_mb": round(rss[-1], 1),
        "rss_by_round_mb": [round(r, 1) for r in rss],
        "rss_peak_mb": round(peak, 1),
        "first_round_growth_mb": round(first_growth, 1),
        "last_round_growth_mb": round(last_growth, 1),
        "retained_share_of_peak": round((rss[-1] - before) / (peak - before), 4),
        "valid_rps": round(valid_rps, 1),
        "hostile_rps": round(hostile_rps, 1),
        "hostile_vs_valid": round(hostile_rps / valid_rps, 4),
    }


async def run(params: Params, maintenance_url: str, work: Path) -> dict[str, Any]:
    say(
        f"telemon hostile-load benchmark ({params.mode}): {params.hostile:,} hostile requests in {params.rounds}"
        f" rounds (a heavy one every {params.heavy_every}), {params.valid:,} valid ones as the baseline,"
        f" {params.concurrency} in flight, {os.cpu_count()} CPUs"
    )
    say(f"  PostgreSQL {redact(maintenance_url)}; server: `telemon serve --roles api` as a subprocess")
    async with fresh_database(maintenance_url, prefix="telemon_soak") as db_url:
        say(f"  database {db_url.rsplit('/', 1)[-1].split('?')[0]} created and migrated")
        pool = await create_pool(db_url, max_size=2)
        try:
            figures = await measure(params, pool, db_url, work)
        finally:
            await pool.close()
    checks = {
        "no_5xx": figures["server_errors_5xx"] == 0,
        "reported_equals_recorded": figures["rejections_reported"] == figures["rejections_recorded"],
        "memory_given_back": figures["retained_share_of_peak"] <= MAX_RETAINED_SHARE_OF_PEAK,
        "memory_flat": figures["last_round_growth_mb"]
        <= max(MAX_LAST_SHARE_OF_FIRST * figures["first_round_growth_mb"], FLOOR_MB),
    }
    say(f"hostile requests: {figures['hostile_requests']:,}; 5xx answers: {figures['server_errors_5xx']}"
        f" {figures['server_errors_by_request'] or ''}")  # fmt: skip
    say(f"rejections reported {figures['rejections_reported']:,}, recorded {figures['rejections_recorded']:,}")
    say(f"server memory (MB): before {figures['rss_before_mb']}, after the first round"
        f" {figures['rss_after_first_round_mb']}, after the last {figures['rss_after_last_round_mb']}"
        f" (rounds {figures['rss_by_round_mb']}), peak {figures['rss_peak_mb']};"
        f" idle, it kept {figures['retained_share_of_peak']:.0%} of what its peak added")  # fmt: skip
    say(f"throughput: hostile {figures['hostile_rps']:,.0f} requests/s = {figures['hostile_vs_valid']:.1%}"
        f" of valid ones ({figures['valid_rps']:,.0f}/s)")  # fmt: skip
    for name, ok in checks.items():
        say(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return {
        **figures,
        "checks": {name: "PASS" if ok else "FAIL" for name, ok in checks.items()},
        "params": {
            "mode": params.mode, "hostile": params.hostile, "rounds": params.rounds,
            "heavy_every": params.heavy_every, "valid": params.valid, "valid_batch": VALID_BATCH,
            "concurrency": params.concurrency, "max_body_bytes": MAX_BODY_BYTES,
            "max_batch_readings": MAX_BATCH_READINGS, "max_retained_share_of_peak": MAX_RETAINED_SHARE_OF_PEAK,
            "cpus": os.cpu_count(), "run_id": uuid.uuid4().hex[:10],
        },
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    params = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="telemon-bench-") as tmp:
        try:
            with postgres_server() as maintenance_url:
                summary = asyncio.run(run(params, maintenance_url, Path(tmp)))
        except BenchError as exc:
            print(f"bench.hostile: FAILED: {exc}", file=sys.stderr, flush=True)
            return 1
    print(json.dumps(summary), flush=True)
    return 0 if all(v == "PASS" for v in summary["checks"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
