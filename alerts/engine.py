"""The engine: load recent windows of patients as numpy columns, run the vectorised rules, reconcile alerts.

- ``Engine.evaluate(patient_ids)``: one evaluation of some patients (incremental: the patients an ingest
  batch touched), in one transaction.
- ``Engine.evaluate_population()``: every patient, in chunks of bounded size (the scheduled pass that drives
  the time-based rules: stale CGM, no data, adherence, postpartum).
- ``EngineWorker``: takes the patients of each committed ingest batch and evaluates them in the background,
  coalescing bursts, so that ingest answers never wait for the engine and one failure never blocks ingest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Sequence

import asyncpg

from alerts import queries
from alerts.cohort import Candidates, Cohort
from alerts.load import load_cohort
from alerts.rules import ALL_RULES, CGM_RULES, Rule, evaluate
from alerts.store import Change, reconcile

log = logging.getLogger(__name__)

CHUNK = 2000  # patients per evaluation in the scheduled pass: bounds memory (about 14 days of CGM each)
IN_THREAD_ABOVE = 50_000  # readings: evaluate bigger cohorts in a worker thread, not on the event loop


class Engine:
    def __init__(self, pool: asyncpg.Pool, rules: Sequence[Rule] = ALL_RULES) -> None:
        self.pool = pool
        self.rules = rules

    async def evaluate(
        self, patient_ids: Sequence[uuid.UUID], *, rules: Sequence[Rule] | None = None, now: float | None = None
    ) -> list[Change]:
        if not patient_ids:
            return []
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.EVALUATION_SETTINGS)
            cohort, found = await load_cohort(conn, patient_ids, now=now)
            await conn.execute(queries.RECONCILE_SETTINGS)
            results = await _run(cohort, rules or self.rules)
            return await reconcile(conn, results, found)

    async def evaluate_population(self, *, cgm_only: bool = False, chunk: int = CHUNK) -> int:
        """Evaluate every patient (or every CGM patient), chunk by chunk; returns the number of alert changes."""
        rules = CGM_RULES if cgm_only else self.rules
        changed = 0
        after = uuid.UUID(int=0)
        while True:
            ids = [r["id"] for r in await self.pool.fetch(queries.PATIENT_IDS_AFTER, after, chunk, cgm_only)]
            if not ids:
                return changed
            try:
                changed += len(await self.evaluate(ids, rules=rules))
            except (asyncpg.PostgresError, OSError):
                log.exception("evaluating a chunk of patients failed", extra={"first": str(ids[0])})
            after = ids[-1]


async def _run(cohort: Cohort, rules: Sequence[Rule]) -> list[Candidates]:
    if len(cohort.t) > IN_THREAD_ABOVE:
        return await asyncio.to_thread(evaluate, cohort, rules)
    return evaluate(cohort, rules)


class EngineWorker:
    """Background evaluation of the patients touched by ingest, coalesced: a burst of batches for the same
    patients is evaluated once. The scheduled pass catches up anything lost in a crash."""

    def __init__(self, engine: Engine, *, batch: int = 500, min_interval: float = 1.0, max_share: float = 0.25) -> None:
        self.engine = engine
        self.batch = batch
        # At most one pass a second: during a burst of syncs a patient is evaluated once a second, not once per
        # batch (a second of latency on an alert; much less CPU taken from ingest). And at most ``max_share`` of
        # the time: after a pass that took d seconds the worker rests d × (1 − share) / share, so under a flood
        # of syncs ingest keeps most of the process and alerts come a few seconds later instead of ingest
        # slowing down (the scheduled pass is the safety net either way).
        self.min_interval = min_interval
        self.max_share = max_share
        self._pending: set[uuid.UUID] = set()
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name="engine-worker")

    async def submit(self, patient_ids: Iterable[uuid.UUID]) -> None:
        self._pending.update(patient_ids)
        if self._pending:
            self._idle.clear()
            self._wakeup.set()

    async def drain(self) -> None:
        """Wait until every submitted patient was evaluated (tests, shutdown)."""
        await self._idle.wait()

    async def _stop_requested(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            await self._wakeup.wait()

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _work(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            started = time.monotonic()
            ids = [self._pending.pop() for _ in range(min(self.batch, len(self._pending)))]
            try:
                await self.engine.evaluate(ids)
            except Exception:
                log.exception("evaluating ingested patients failed", extra={"patients": len(ids)})
            took = time.monotonic() - started
            rest = max(self.min_interval - took, took * (1 - self.max_share) / self.max_share)
            if rest > 0 and not self._stopping:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop_requested(), rest)
