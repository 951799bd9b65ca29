"""The engine: load recent windows of patients as numpy columns, run the vectorised rules, reconcile alerts.

- ``Engine.evaluate(patient_ids)``: one evaluation of some patients (incremental: the patients an ingest
  batch touched), in one transaction.
- ``Engine.evaluate_population()``: every patient, in chunks of bounded size (the scheduled pass that drives
  the time-based rules: stale CGM, no data, adherence, postpartum).
- ``EngineWorker``: takes the patients of each committed ingest batch and evaluates them in the background,
  coalescing bursts, so that ingest answers never wait for the engine and one failure never blocks ingest.

A database outage stops nothing for good: the worker keeps the patients of a pass that could not reach the
database and evaluates them once it answers (retrying with a growing pause); the scheduled pass gives up its run
and the next run covers everyone. Either logs the outage once, when it starts, and once when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Sequence

import asyncpg
import numpy as np

from alerts import queries
from alerts.cohort import Candidates, Cohort
from alerts.load import load_cohort
from alerts.rules import ALL_RULES, CGM_RULES, Rule, evaluate
from alerts.store import Change, reconcile
from telemon.db import describe, unavailable

log = logging.getLogger(__name__)

CHUNK = 2000  # patients per evaluation in the scheduled pass: bounds memory (about 14 days of CGM each)
IN_THREAD_ABOVE = 50_000  # readings: evaluate bigger cohorts in a worker thread, not on the event loop
# Readings in a patient's window above which the worker evaluates her on her own, apart from everyone else (a CGM
# every minute for 14 days is 20,160): a patient flooded with readings must not slow the others' alerts.
HEAVY_READINGS = 25_000
RETRY_MAX_S = 5.0  # longest pause between two attempts of the worker while the database is unavailable


class Engine:
    def __init__(self, pool: asyncpg.Pool, rules: Sequence[Rule] = ALL_RULES) -> None:
        self.pool = pool
        self.rules = rules

    async def evaluate(
        self,
        patient_ids: Sequence[uuid.UUID],
        *,
        rules: Sequence[Rule] | None = None,
        now: float | None = None,
        sizes: dict[uuid.UUID, int] | None = None,
    ) -> list[Change]:
        """One evaluation of ``patient_ids`` in one transaction; ``sizes``, when given, receives the number of
        readings in each patient's window."""
        if not patient_ids:
            return []
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.EVALUATION_SETTINGS)
            cohort, found = await load_cohort(conn, patient_ids, now=now)
            if sizes is not None:
                sizes.update(zip(found, np.diff(cohort.offsets).tolist(), strict=True))
            await conn.execute(queries.RECONCILE_SETTINGS)
            results = await _run(cohort, rules or self.rules)
            return await reconcile(conn, results, found, now=cohort.now)

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
            except Exception as exc:
                if unavailable(exc):
                    raise  # the next chunks would fail the same way: the run stops, the next one covers everyone
                log.exception("evaluating a chunk of patients failed", extra={"first": str(ids[0])})
            after = ids[-1]


async def _run(cohort: Cohort, rules: Sequence[Rule]) -> list[Candidates]:
    if len(cohort.t) > IN_THREAD_ABOVE:
        return await asyncio.to_thread(evaluate, cohort, rules)
    return evaluate(cohort, rules)


class EngineWorker:
    """Background evaluation of the patients touched by ingest, coalesced: a burst of batches for the same
    patients is evaluated once. The scheduled pass catches up anything lost in a crash.

    Fair to every patient: a patient whose window holds more than ``heavy_readings`` readings (a device flooding
    values) is evaluated on her own, in passes of her own, with a rhythm of her own; the other patients' passes
    neither wait for hers nor for the rest she causes. Each of the two kinds of pass holds at most half of
    ``max_share`` of the process."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch: int = 500,
        min_interval: float = 1.0,
        max_share: float = 0.25,
        heavy_readings: int = HEAVY_READINGS,
    ) -> None:
        self.engine = engine
        self.batch = batch
        # At most one pass a second: during a burst of syncs a patient is evaluated once a second, not once per
        # batch (a second of latency on an alert; much less CPU taken from ingest). And at most ``max_share`` of
        # the time: after a pass that took d seconds the worker rests d × (1 − s) / s, s being half the share
        # (ordinary and heavy passes each have their half), so under a flood of syncs ingest keeps most of the
        # process and alerts come a few seconds later instead of ingest slowing down (the scheduled pass is the
        # safety net either way).
        self.min_interval = min_interval
        self.max_share = max_share
        self.heavy_readings = heavy_readings
        self.passes = 0  # evaluations that reached the database (tests, metrics)
        self.outages = 0  # database outages the worker went through
        self._pending: set[uuid.UUID] = set()
        self._heavy: set[uuid.UUID] = set()  # patients whose last window exceeded heavy_readings
        self._due = {False: 0.0, True: 0.0}  # monotonic time of the next ordinary (False) and heavy (True) pass
        self._retry = 0.0  # pause before the next attempt while the database is unavailable; 0: it answers
        self._outage_since: float | None = None
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

    @property
    def pending(self) -> int:
        """Patients waiting for an evaluation."""
        return len(self._pending)

    async def _stop_requested(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            await self._wakeup.wait()

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    def _next(self) -> tuple[bool, list[uuid.UUID]] | float:
        """The next pass (heavy or not, its patients), or how long to wait before one is due."""
        now = time.monotonic()
        ordinary = [p for p in self._pending if p not in self._heavy]
        heavy = [p for p in self._pending if p in self._heavy]
        waits = []
        for is_heavy, ids in ((False, ordinary), (True, heavy)):
            if ids:
                if self._due[is_heavy] <= now:
                    return is_heavy, ids[: 1 if is_heavy else self.batch]
                waits.append(self._due[is_heavy] - now)
        return min(waits)

    async def _work(self) -> None:
        while True:
            if not self._pending:
                self._idle.set()
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self._stopping:  # shutting down: what is pending is evaluated now, without the rhythm
                self._due = {False: 0.0, True: 0.0}
            chosen = self._next()
            if isinstance(chosen, float):
                await self._rest(chosen, wake_on_submit=True)
                continue
            is_heavy, ids = chosen
            self._pending.difference_update(ids)
            started = time.monotonic()
            if not await self._evaluate(ids):
                self._pending.update(ids)  # kept for when the database answers
                if self._stopping:
                    self._idle.set()
                    return  # shutting down during an outage: the scheduled pass will catch up
                self._retry = min(RETRY_MAX_S, max(self.min_interval, self._retry * 2))
                await self._rest(self._retry, wake_on_submit=False)
                continue
            took = time.monotonic() - started
            share = self.max_share / 2
            rest = max(self.min_interval - took, took * (1 - share) / share)
            if not is_heavy and not self._heavy.isdisjoint(ids):
                # the pass found a heavy patient among the others: its rest is hers, theirs is the usual rhythm
                self._due[True] = time.monotonic() + rest
                rest = self.min_interval - took
            self._due[is_heavy] = time.monotonic() + rest

    async def _evaluate(self, ids: list[uuid.UUID]) -> bool:
        """One pass; False when the database was unavailable (the patients are to be kept and retried)."""
        sizes: dict[uuid.UUID, int] = {}
        try:
            await self.engine.evaluate(ids, sizes=sizes)
        except Exception as exc:
            if unavailable(exc):
                if self._outage_since is None:
                    self._outage_since = time.monotonic()
                    self.outages += 1
                    log.warning(
                        "alert engine: database unavailable, keeping the patients to evaluate until it answers",
                        extra={"patients": len(ids), "error": describe(exc)},
                    )
                    with contextlib.suppress(Exception):
                        await self.engine.pool.expire_connections()  # those opened before may be broken
                return False
            log.exception("evaluating ingested patients failed", extra={"patients": len(ids)})
        else:
            self.passes += 1
            for patient, n in sizes.items():
                if n > self.heavy_readings:
                    self._heavy.add(patient)
                else:
                    self._heavy.discard(patient)
        if self._outage_since is not None:
            log.info(
                "alert engine: database answers again",
                extra={"outage_s": round(time.monotonic() - self._outage_since, 1), "pending": len(self._pending)},
            )
            self._outage_since = None
        self._retry = 0.0
        return True

    async def _rest(self, seconds: float, *, wake_on_submit: bool) -> None:
        """Wait ``seconds``, or less when stopping (or, ``wake_on_submit``, when patients are submitted: one of
        them may be due sooner than what is waiting)."""
        if seconds <= 0 or self._stopping:
            return
        self._wakeup.clear()
        waiter = self._wakeup.wait() if wake_on_submit else self._stop_requested()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(waiter, seconds)
