"""Memory soak: a served process (``telemon serve --roles api``, a separate process so that its resident memory
is its own) takes rounds of hostile requests (``tests.support.hostile``: bodies near the 5 MB limit, gzip bombs,
arrays of millions of numbers, 10,000 bad items, NUL characters, lone surrogates, bad cursors...), and its memory
is read between rounds, from outside (``VmRSS``) and from inside (``tests.support.memory_probe``).

Without care, the process kept most of its peak for good: Python freed every object of a hostile body, but
glibc's malloc kept the freed heap (its mmap threshold rises after the first megabyte body is freed, so the next
ones are carved out of the heap, which is only given back from its top), and garbage cycles held refused payloads
until a collection that an idle process never made. The first round may grow the process (pools, caches,
allocator arenas warming up); the rounds after it must not keep adding: see
``test_resident_memory_stays_flat_after_the_first_round``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import asyncpg
import httpx
import pytest

from telemon import api_keys, loop
from telemon.embedded import free_port
from tests.support import hostile, memory_probe
from tests.support.factories import patient_with_device

pytestmark = pytest.mark.slow

ROUNDS = 5
PER_ROUND = 100
HEAVY_EVERY = 4  # 25 heavy requests a round: each heavy body of the corpus goes through twice or more
CONCURRENCY = 6
# after a round, before reading the memory: the process's periodic check (a collection, then malloc_trim) has run
IDLE_S = loop.TRIM_INTERVAL_S + 1.5
MAX_BODY_BYTES = 5 * 1024 * 1024
MAX_BATCH_READINGS = 10_000
# What the cyclic collector tracks and Python's allocator holds, idle, against the idle process before the
# rounds: the first round warms the process up (measured: 8,200 more objects, 12,500 more blocks: modules,
# validators and prepared statements made on first use), the rounds after it add next to nothing (measured: 100
# objects, 600 blocks in four rounds). A payload left in a garbage cycle is 110,000 objects and 230,000 blocks.
MAX_MORE_OBJECTS = 20_000  # after any round, against before the rounds
MAX_MORE_BLOCKS = 50_000
MAX_MORE_OBJECTS_AFTER_FIRST = 2_000  # after the last round, against after the first
MAX_MORE_BLOCKS_AFTER_FIRST = 5_000
# What malloc's main heap holds resident beyond what is in use, idle: the process trims it when more than
# TRIM_ABOVE_BYTES lie free. Measured: 6-10 MB; 35-52 MB without the trim and the fixed mmap threshold.
MAX_HEAP_RESIDENT_FREE_BYTES = loop.TRIM_ABOVE_BYTES
# Idle after the rounds, the process may keep at most this share of what its peak added to its resident memory.
# Measured: 26-36 % (the higher with both cores busy with other work). That is CPython's small-object arenas
# (1 MiB, given back only when empty), each kept by a few long-lived objects made while a peak spread them out;
# it varies with how the requests overlapped, hence the margin. 48-63 % without the fixes above, which the two
# bounds before this one catch exactly.
MAX_RETAINED_SHARE_OF_PEAK = 0.45
# The last round may add at most this share of what the first round added (or FLOOR_MB, for the noise of a few MB
# between two idle readings): the same requests again find their memory reused or given back.
MAX_LAST_SHARE_OF_FIRST = 0.5
FLOOR_MB = 8.0


def _serve(database_url: str, port: int, probe_file: Path) -> subprocess.Popen[bytes]:
    env = {
        memory_probe.PROBE_FILE_VARIABLE: str(probe_file),
        **{k: v for k, v in os.environ.items() if not k.startswith("TELEMON_")},
        "TELEMON_DATABASE_URL": database_url,
        "TELEMON_ROLES": "api",
        "TELEMON_LOG_LEVEL": "ERROR",
        "TELEMON_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
        "TELEMON_MAX_BATCH_READINGS": str(MAX_BATCH_READINGS),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.memory_probe", "serve", "--roles", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _ready(base: str, process: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            assert process.poll() is None, "server exited"
            try:
                if (await client.get(f"{base}/readyz", timeout=1)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("server not ready")


async def _send(client: httpx.AsyncClient, base: str, request: hostile.Hostile) -> httpx.Response:
    """Sent once more if the kept-alive connection was closed under it (the server closes a connection after
    refusing a body it did not read)."""
    try:
        return await client.request(
            request.method, base + request.path, headers=request.headers, content=request.body, params=request.params
        )
    except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError):
        return await client.request(
            request.method, base + request.path, headers=request.headers, content=request.body, params=request.params
        )


async def _round(
    client: httpx.AsyncClient, base: str, requests: list[hostile.Hostile], server_errors: Counter[str]
) -> None:
    pending = iter(requests)

    async def worker() -> None:
        for request in pending:
            response = await _send(client, base, request)
            if response.status_code >= 500:
                server_errors[f"{request.name}: {response.status_code}"] += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(CONCURRENCY):
            group.create_task(worker())


async def test_resident_memory_stays_flat_after_the_first_round(
    database_url: str, db: asyncpg.Pool, tmp_path: Path
) -> None:
    """``ROUNDS`` rounds of ``PER_ROUND`` hostile requests; after each, idle, the server's ``VmRSS`` is read and
    its probe writes what its memory holds; its ``VmHWM`` (peak) is read at the end. Bounds relative to what this
    run measured, because absolute sizes depend on the machine (page size, allocator, Python build, how many
    requests overlapped):

    - nothing accumulates: after every round the collector tracks at most ``MAX_MORE_OBJECTS`` more objects than
      before the rounds, and Python holds at most ``MAX_MORE_BLOCKS`` more blocks; the rounds after the first add
      at most ``MAX_MORE_OBJECTS_AFTER_FIRST`` and ``MAX_MORE_BLOCKS_AFTER_FIRST``. A refused body's payload left
      in a garbage cycle (an exception's traceback holds the frame of the handler that refused it) shows here,
      exactly;
    - the freed heap goes back: malloc's main heap holds at most ``MAX_HEAP_RESIDENT_FREE_BYTES`` resident beyond
      what it has in use;
    - what stays: after the last round, the process keeps at most ``MAX_RETAINED_SHARE_OF_PEAK`` of what its peak
      added above its resident memory before the rounds;
    - what grows: the last round adds at most ``MAX_LAST_SHARE_OF_FIRST`` of what the first round added (or
      ``FLOOR_MB``).

    No answer may be a 5xx."""
    setup = await patient_with_device(db, kind="cgm", due_date=dt.date.today() + dt.timedelta(days=100))
    async with db.acquire() as conn:
        key = await api_keys.create_api_key(
            conn, label="soak", scopes=["readings:read", "readings:write", "alerts:write"], team_ids=[setup.team_id]
        )
    corpus = hostile.build(
        hostile.Credentials(setup.patient_id, setup.token, key.key),
        max_body_bytes=MAX_BODY_BYTES,
        max_batch_readings=MAX_BATCH_READINGS,
    )
    recorded_before = await db.fetchval("SELECT count(*) FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    probe_file = tmp_path / "memory.jsonl"
    server = _serve(database_url, port, probe_file)
    server_errors: Counter[str] = Counter()
    try:
        await _ready(base, server)
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            await _round(client, base, [corpus.light[0]] * 10, server_errors)  # imports and pools warmed up
            await asyncio.sleep(IDLE_S)
            before = hostile.memory_mb(server.pid)["VmRSS"]
            before_inside = await _probe(server, probe_file)
            resident: list[float] = []
            inside: list[memory_probe.Snapshot] = []
            for number in range(ROUNDS):
                requests = list(corpus.schedule(PER_ROUND, HEAVY_EVERY, start=number * PER_ROUND))
                await _round(client, base, requests, server_errors)
                await asyncio.sleep(IDLE_S)
                resident.append(hostile.memory_mb(server.pid)["VmRSS"])
                inside.append(await _probe(server, probe_file))
        peak = hostile.memory_mb(server.pid)["VmHWM"]
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)

    recorded = await db.fetchval("SELECT count(*) FROM ingest_rejections WHERE device_id = $1", setup.device_id)
    assert recorded - recorded_before > ROUNDS * MAX_BATCH_READINGS  # the heavy batches were refused and recorded
    assert not server_errors, f"5xx answers: {dict(server_errors)}"

    objects = [after.tracked_objects - before_inside.tracked_objects for after in inside]
    blocks = [after.allocated_blocks - before_inside.allocated_blocks for after in inside]
    kept = f"more objects after each round {objects}, more blocks {blocks}"
    assert max(objects) <= MAX_MORE_OBJECTS and max(blocks) <= MAX_MORE_BLOCKS, kept
    assert objects[-1] - objects[0] <= MAX_MORE_OBJECTS_AFTER_FIRST, kept
    assert blocks[-1] - blocks[0] <= MAX_MORE_BLOCKS_AFTER_FIRST, kept
    resident_free = [after.heap_resident_free_bytes for after in inside]
    assert max(resident_free) <= MAX_HEAP_RESIDENT_FREE_BYTES, f"freed heap kept resident: {resident_free}"

    figures = f"before {before:.1f} MB, after each round {[round(r, 1) for r in resident]}, peak {peak:.1f} MB"
    retained = (resident[-1] - before) / (peak - before)
    assert retained <= MAX_RETAINED_SHARE_OF_PEAK, f"kept {retained:.0%} of what the peak added: {figures}"
    first_growth = resident[0] - before
    last_growth = resident[-1] - resident[-2]
    allowed = max(MAX_LAST_SHARE_OF_FIRST * first_growth, FLOOR_MB)
    assert last_growth <= allowed, f"the last round grew the memory by {last_growth:.1f} MB: {figures}"


async def _probe(server: subprocess.Popen[bytes], probe_file: Path) -> memory_probe.Snapshot:
    """What the idle server's memory holds, from its probe."""
    written = len(memory_probe.read(probe_file))
    server.send_signal(signal.SIGUSR1)
    for _ in range(100):
        snapshots = memory_probe.read(probe_file)
        if len(snapshots) > written:
            return snapshots[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("the memory probe did not answer")
