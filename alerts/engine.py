"""The engine: load recent windows of patients as numpy columns, run the vectorised rules, reconcile alerts.

- ``Engine.evaluate(patient_ids)``: one evaluation of some patients (incremental: the patients an ingest
  batch touched), in one transaction.
- ``Engine.evaluate_population()``: every patient, in chunks of bounded size (the scheduled pass that drives
  the time-based rules: stale CGM, no data, adherence, postpartum).
- ``EngineWorker``: takes the patients of each committed ingest batch and evaluates them in the background,
  coalescing bursts, so that ingest answers never wait for the engine and one failure never blocks ingest; a
  patient whose new readings may raise an alert to act on within minutes (a low, a falling CGM) is evaluated at
  once instead of at the next pass of the rhythm.

A database outage stops nothing for good: the worker keeps the patients of a pass that could not reach the
database and evaluates them once it answers (retrying with a growing pause); the scheduled pass gives up its run
and the next run covers everyone. Either logs the outage once, when it starts, and once when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

import asyncpg
import numpy as np

from alerts import profiles as P
from alerts import queries
from alerts.cohort import Candidates, Cohort
from alerts.load import CGM_MINUTE_WINDOW, WINDOW, load_cohort
from alerts.rules import ALL_RULES, CGM_MINUTE_RULES, Rule, evaluate
from alerts.rules.cgm import ar2_points
from alerts.store import Change, reconcile
from telemon.db import describe, unavailable

log = logging.getLogger(__name__)

CHUNK = 2000  # most patients per evaluation in the scheduled pass: bounds memory (about 14 days of CGM each)
# Readings a chunk of the scheduled pass aims at. Loading and reconciling a chunk hold the event loop, and with it
# ingest and the worker's urgent passes, for about 0.4 µs a reading: 100 CGM wearers' 14 days (403,000 readings)
# in one chunk held it 150 ms, in chunks of 25 wearers 35 ms, for the same total time. Each chunk is sized on the
# readings per patient of the one before; the first is small, since a chunk of CGM wearers is 60 times a meter's.
CHUNK_READINGS = 100_000
FIRST_CHUNK = 20  # CGM wearers: about 80,000 readings
IN_THREAD_ABOVE = 50_000  # readings: evaluate bigger cohorts in a worker thread, not on the event loop
# Readings in a patient's window above which the worker evaluates her on her own, apart from everyone else (a CGM
# every minute for 14 days is 20,160): a patient flooded with readings must not slow the others' alerts.
HEAVY_READINGS = 25_000
RETRY_MAX_S = 5.0  # longest pause between two attempts of the worker while the database is unavailable

# Readings that make their patient urgent for the worker (evaluated at once, not at the next pass of the rhythm):
# those that may raise an alert a clinician acts on within minutes. A value below the highest hypoglycaemia
# threshold of any rule (NICE's 4 mmol/L floor on insulin, above ADA's 70 mg/dL level 1: a level-1 low is often
# the start of a level-2 one), and a fresh CGM reading that falls from the previous one fast enough for the CGM
# rules: at the rapid-fall rate (two points, where the rule fits a line to 15 min), or so that Nightscout's AR2
# forecast from the two reaches the predicted-low threshold within its horizon, as ``cgm_predicted_low`` judges.
URGENT_BELOW_MGDL = max(P.HYPO_L1_MGDL, P.NICE_INSULIN_FLOOR_MGDL)
CGM_MEMORY = 200_000  # CGM wearers whose last reading the worker remembers (to see a fall); forgotten beyond
_CGM_FRESH = dt.timedelta(seconds=P.CGM_FRESH_S)
_FALL_WINDOW = dt.timedelta(seconds=P.RAPID_FALL_WINDOW_S)

PassKind = Literal["ordinary", "heavy", "urgent"]


class Glucose(Protocol):
    """What the worker reads of a committed reading to tell an urgent one (the ingest service's rows)."""

    @property
    def patient_id(self) -> uuid.UUID: ...
    @property
    def kind(self) -> str: ...
    @property
    def measured_at(self) -> dt.datetime: ...
    @property
    def value_mgdl(self) -> float: ...


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
        window: dt.timedelta = WINDOW,
    ) -> list[Change]:
        """One evaluation of ``patient_ids`` in one transaction; ``sizes``, when given, receives the number of
        readings in each patient's window (``window``: shorter only for rules that look back less)."""
        if not patient_ids:
            return []
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(queries.EVALUATION_SETTINGS)
            cohort, found = await load_cohort(conn, patient_ids, now=now, window=window)
            if sizes is not None:
                sizes.update(zip(found, np.diff(cohort.offsets).tolist(), strict=True))
            await conn.execute(queries.RECONCILE_SETTINGS)
            results = await _run(cohort, rules or self.rules)
            return await reconcile(conn, results, found, now=cohort.now)

    async def evaluate_population(
        self, *, cgm_only: bool = False, chunk: int = CHUNK, chunk_readings: int = CHUNK_READINGS
    ) -> int:
        """Evaluate every patient (or, ``cgm_only``, every CGM wearer with the minute pass's rules and window),
        chunk by chunk of at most ``chunk`` patients and about ``chunk_readings`` readings (a chunk at most twice
        the one before: the patients after a chunk of meters may be sensor wearers); returns the number of alert
        changes."""
        rules = CGM_MINUTE_RULES if cgm_only else self.rules
        window = CGM_MINUTE_WINDOW if cgm_only else WINDOW
        changed = 0
        after = uuid.UUID(int=0)
        size = min(chunk, FIRST_CHUNK)
        while True:
            ids = [r["id"] for r in await self.pool.fetch(queries.PATIENT_IDS_AFTER, after, size, cgm_only)]
            if not ids:
                return changed
            sizes: dict[uuid.UUID, int] = {}
            try:
                changed += len(await self.evaluate(ids, rules=rules, sizes=sizes, window=window))
            except Exception as exc:
                if unavailable(exc):
                    raise  # the next chunks would fail the same way: the run stops, the next one covers everyone
                log.exception("evaluating a chunk of patients failed", extra={"first": str(ids[0])})
            if sizes:
                per_patient = max(sum(sizes.values()) / len(ids), 1.0)
                size = max(1, min(chunk, int(chunk_readings / per_patient), 2 * len(ids)))
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
    ``max_share`` of the process.

    Urgent, not coalesced: a patient handed over with a reading that may raise an alert to act on within minutes
    (``URGENT_BELOW_MGDL``, a CGM fall) is evaluated at once, in a pass of the urgent patients only, without
    waiting for the rhythm's second; the other patients of her batch wait for theirs. Urgent passes rest after
    themselves as the others do (half of ``max_share`` of their own), so a flood of lows cannot take the process;
    a heavy patient's lows wait for her own rhythm."""

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
        self.urgent_passes = 0  # of which passes of urgent patients, evaluated at once
        self.outages = 0  # database outages the worker went through
        self._pending: set[uuid.UUID] = set()
        self._urgent: set[uuid.UUID] = set()  # pending patients to evaluate at once
        self._heavy: set[uuid.UUID] = set()  # patients whose last window exceeded heavy_readings
        self._last_cgm: dict[uuid.UUID, tuple[dt.datetime, float]] = {}  # patient: her last CGM reading (at, mg/dL)
        self._due: dict[PassKind, float] = {"ordinary": 0.0, "heavy": 0.0, "urgent": 0.0}  # next pass (monotonic)
        self._retry = 0.0  # pause before the next attempt while the database is unavailable; 0: it answers
        self._outage_since: float | None = None
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._work(), name="engine-worker")

    async def submit(self, patient_ids: Iterable[uuid.UUID], readings: Iterable[Glucose] = ()) -> None:
        """Patients whose readings were committed, to evaluate; ``readings``, the committed readings (or some of
        them): those that may raise an alert to act on within minutes make their patient urgent."""
        self._pending.update(patient_ids)
        urgent = self.urgent_patients(readings)
        if urgent:
            self._pending |= urgent
            self._urgent |= urgent
        if self._pending:
            self._idle.clear()
            self._wakeup.set()

    def urgent_patients(self, readings: Iterable[Glucose]) -> set[uuid.UUID]:
        """The patients of ``readings`` to evaluate at once (see ``URGENT_BELOW_MGDL``); remembers each CGM
        wearer's last reading, so that a fall is seen across two hand-overs (a sensor sends one reading a time).
        A comparison a reading, and one numpy forecast for all the falls of the hand-over."""
        urgent: set[uuid.UUID] = set()
        last = self._last_cgm
        falls: list[tuple[uuid.UUID, dt.datetime, float, dt.datetime, float]] = []  # patient, at, mg/dL before; now
        fresh_after = dt.datetime.now(dt.UTC) - _CGM_FRESH
        for reading in readings:
            value = reading.value_mgdl
            if value < URGENT_BELOW_MGDL:
                urgent.add(reading.patient_id)
            if reading.kind != "cgm":
                continue
            patient, at = reading.patient_id, reading.measured_at
            before = last.get(patient)
            if before is None:
                if len(last) >= CGM_MEMORY:
                    last.clear()
            elif at <= before[0]:
                continue  # an older reading (a backfill): the last one stays
            elif value < before[1] and at >= fresh_after and at - before[0] <= _FALL_WINDOW:
                falls.append((patient, before[0], before[1], at, value))
            last[patient] = (at, value)
        if falls:
            urgent.update(_falling(falls))
        return urgent - self._heavy

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

    def _next(self) -> tuple[PassKind, list[uuid.UUID]] | float:
        """The next pass (its kind, its patients), or how long to wait before one is due."""
        now = time.monotonic()
        urgent = [p for p in self._urgent if p not in self._heavy]
        ordinary = [p for p in self._pending if p not in self._heavy]
        heavy = [p for p in self._pending if p in self._heavy]
        waits = []
        kinds: tuple[tuple[PassKind, list[uuid.UUID]], ...] = (
            ("urgent", urgent),
            ("ordinary", ordinary),
            ("heavy", heavy),
        )
        for kind, ids in kinds:
            if ids:
                if self._due[kind] <= now:
                    return kind, ids[: 1 if kind == "heavy" else self.batch]
                waits.append(self._due[kind] - now)
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
                self._due = {"ordinary": 0.0, "heavy": 0.0, "urgent": 0.0}
            chosen = self._next()
            if isinstance(chosen, float):
                await self._rest(chosen, wake_on_submit=True)
                continue
            kind, ids = chosen
            urgent = self._urgent.intersection(ids)
            self._pending.difference_update(ids)
            self._urgent.difference_update(ids)
            started = time.monotonic()
            if not await self._evaluate(ids):
                self._pending.update(ids)  # kept for when the database answers
                self._urgent |= urgent
                if self._stopping:
                    self._idle.set()
                    return  # shutting down during an outage: the scheduled pass will catch up
                self._retry = min(RETRY_MAX_S, max(self.min_interval, self._retry * 2))
                await self._rest(self._retry, wake_on_submit=False)
                continue
            took = time.monotonic() - started
            share = self.max_share / 2
            if kind == "urgent":  # no rhythm to wait for: only the rest that bounds their share
                self.urgent_passes += 1
                self._due["urgent"] = time.monotonic() + took * (1 - share) / share
                continue
            rest = max(self.min_interval - took, took * (1 - share) / share)
            if kind == "ordinary" and not self._heavy.isdisjoint(ids):
                # the pass found a heavy patient among the others: its rest is hers, theirs is the usual rhythm
                self._due["heavy"] = time.monotonic() + rest
                rest = self.min_interval - took
            self._due[kind] = time.monotonic() + rest

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


def _falling(falls: list[tuple[uuid.UUID, dt.datetime, float, dt.datetime, float]]) -> set[uuid.UUID]:
    """The patients of ``falls`` (patient, time and value of the reading before, of the new one) whose fall is at
    the rapid-fall rate, or whose AR2 forecast reaches the predicted-low threshold within its horizon; the value
    5 minutes before is, as ``cgm_predicted_low`` takes it, the one before or, more than 9 minutes back, the line
    between the two evaluated 5 minutes before the new one."""
    minutes = np.maximum(np.array([(f[3] - f[1]).total_seconds() / 60.0 for f in falls]), 1e-9)
    v0 = np.array([f[2] for f in falls], dtype=np.float64)
    v1 = np.array([f[4] for f in falls], dtype=np.float64)
    slope = (v1 - v0) / minutes
    five_before = np.where(minutes > 9, v1 - slope * 5, v0)
    points = ar2_points(v1, np.maximum(five_before, P.AR2_BG_MIN))
    horizon = P.PREDICTED_LOW_HORIZON_MIN // 5
    low = points[:, :horizon].min(axis=1) <= P.PREDICTED_LOW_MGDL
    urgent = (slope <= P.RAPID_FALL_MGDL_PER_MIN) | low
    return {f[0] for f, u in zip(falls, urgent.tolist(), strict=True) if u}
