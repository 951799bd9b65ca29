"""``python -m bench.webhooks [--quick]``: how fast signed webhook events reach a hospital's receiver.

A fresh, uniquely named database (migrated, dropped at the end) on the PostgreSQL the tests use (127.0.0.1:5432 if
it answers, else an embedded one) holds one care team with an endpoint for ``alert.opened`` at a receiver this
process runs (a real HTTP server on a loopback port that answers 200 at once). ``--events`` alerts are inserted
(the trigger writes the outbox in the same statement), then telemon's :class:`telemon.webhook_delivery.Deliverer`
sends them all (claim with its lease, attempt logged, signed POST, answer recorded), and the time until the
receiver has every event is measured.

The baseline, in the same process against the same receiver: the same number of POSTs of the same bodies through
one ``httpx`` client with the same concurrency and nothing else (no database, no signature): what the network
stack itself allows. The ratio (telemon's events per second / the baseline's) says what the outbox's durability
costs; the last line is one JSON object with both rates and the ratio. ``--quick``: 500 events.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx

from bench.common import BenchError, fresh_database, say
from telemon import patients, teams, webhooks
from telemon.db import create_pool
from telemon.webhook_delivery import CONCURRENCY, Deliverer
from tests.support.services import postgres_server
from tests.support.webhook_receiver import Receiver, receiver

ALERT = """
INSERT INTO alerts (patient_id, rule, episode_key, severity, code, params, message, evidence)
SELECT $1, 'hypo_l2', 'bench-' || i, 'urgent', 'hypo_l2', jsonb_build_object('value_mgdl', 50 + i % 4),
       '{}'::jsonb, '{}'::jsonb
FROM generate_series(1, $2) AS i
"""


async def _until_received(found: Receiver, count: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while len(found.received) < count:
        if time.perf_counter() > deadline:
            raise BenchError(f"only {len(found.received)} of {count} events arrived within {timeout:.0f} s")
        await asyncio.sleep(0.005)


async def _telemon(pool: asyncpg.Pool, found: Receiver, events: int) -> float:
    async with pool.acquire() as conn:
        team_id = await teams.create_team(conn, f"bench-{uuid.uuid4().hex[:6]}")
        patient_id = await patients.create_patient(
            conn,
            team_id=team_id,
            external_id="bench-1",
            display_name="Bench",
            time_zone="Europe/Paris",
            due_date=(await conn.fetchval("SELECT current_date + 90")),
            profile="FR",
            treatment="insulin",
        )
        _endpoint, found.secret = await webhooks.create(
            conn, team_id=team_id, url=found.url, events=["alert.opened"], actor="bench"
        )
        await conn.execute(ALERT, patient_id, events)
    deliverer = Deliverer(pool)
    started = time.perf_counter()
    deliverer.start()
    try:
        await _until_received(found, events, timeout=600)
    finally:
        await deliverer.stop()
    elapsed = time.perf_counter() - started
    if not all(r.signature_ok for r in found.received):
        raise BenchError("a delivered event's signature did not verify")
    return elapsed


async def _baseline(found: Receiver, bodies: list[bytes]) -> float:
    slots = asyncio.Semaphore(CONCURRENCY)
    headers = {"content-type": "application/json", "webhook-id": "x", "webhook-timestamp": "0"}
    headers["webhook-signature"] = "v1,none"
    async with httpx.AsyncClient(timeout=10) as client:

        async def post(body: bytes) -> None:
            async with slots:
                answer = await client.post(found.url, content=body, headers=headers)
                answer.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(post(body) for body in bodies))
        return time.perf_counter() - started


async def run(events: int, maintenance_url: str) -> dict[str, Any]:
    async with fresh_database(maintenance_url, "telemon_bench_webhooks") as url:
        pool = await create_pool(url, max_size=CONCURRENCY + 4)
        try:
            async with receiver() as found:
                telemon_s = await _telemon(pool, found, events)
                bodies = [r.body for r in found.received]
            async with receiver() as raw:
                raw.secret = found.secret
                baseline_s = await _baseline(raw, bodies)
        finally:
            await pool.close()
    telemon_rate, baseline_rate = events / telemon_s, events / baseline_s
    say(f"  telemon:  {events} events delivered in {telemon_s:.2f} s ({telemon_rate:,.0f} events/s)")
    say(f"  baseline: {events} plain POSTs in {baseline_s:.2f} s ({baseline_rate:,.0f} POST/s)")
    say(f"  ratio: {telemon_rate / baseline_rate:.2f} of the plain POST rate")
    return {
        "events": events,
        "events_per_s": round(telemon_rate, 1),
        "baseline_posts_per_s": round(baseline_rate, 1),
        "ratio": round(telemon_rate / baseline_rate, 3),
        "concurrency": CONCURRENCY,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.webhooks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 events instead of 5,000")
    parser.add_argument("--events", type=int, default=None)
    args = parser.parse_args(argv)
    events = args.events or (500 if args.quick else 5000)
    try:
        with postgres_server() as maintenance_url:
            summary = asyncio.run(run(events, maintenance_url))
    except BenchError as exc:
        print(f"bench.webhooks: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
