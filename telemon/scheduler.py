"""The scheduler role: exactly one process runs the jobs, the one holding a PostgreSQL advisory lock.

Other processes started with the scheduler role wait as standbys and take over when the leader's session ends.
Each job run catches its own failure, so one failing job never stops the others.

A database outage ends the leader's session, and with it the lock: the leader stops its jobs when its check of
the connection fails, and every scheduler process (the old leader too) tries for the lock again every
``retry_seconds`` until the database is back; whichever gets it first leads. The outage is logged once per
process (a warning when it starts, an info line when the database answers again), and a job that fails because
the database is unavailable is logged once per outage, without a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from telemon.db import LOCK_SCHEDULER, Conn, describe, unavailable_cause
from telemon.jobs import Job

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self, pool: asyncpg.Pool, jobs: dict[str, Job], *, retry_seconds: float = 10.0, check_seconds: float = 5.0
    ) -> None:
        self.pool = pool
        self.jobs = jobs
        self.retry_seconds = retry_seconds  # a standby (or a scheduler without its database) tries this often
        self.check_seconds = check_seconds  # the leader checks its session (and so its lock) this often
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.unavailable_since: float | None = None  # the database is unavailable to this scheduler since then
        self.failing_jobs: set[str] = set()  # jobs whose last run failed for unavailability (logged once)

    def start(self) -> None:
        self._task = asyncio.create_task(self._lead(), name="scheduler")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task

    async def _lead(self) -> None:
        while not self._stopping.is_set():
            try:
                async with self.pool.acquire() as conn:
                    locked = await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_SCHEDULER)
                    self._database_answered()
                    if locked:
                        try:
                            await self._run_as_leader(conn)
                        finally:
                            with contextlib.suppress(Exception):
                                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_SCHEDULER)
            except Exception as exc:  # the scheduler outlives any failure, and tries again
                cause = unavailable_cause(exc)
                if cause is None:
                    log.exception("scheduler failed; trying again")
                elif self.unavailable_since is None:
                    self.unavailable_since = time.monotonic()
                    log.warning(
                        "scheduler: database unavailable; jobs stop until it is back",
                        extra={"error": describe(cause)},
                    )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.retry_seconds)

    def _database_answered(self) -> None:
        if self.unavailable_since is not None:
            seconds = round(time.monotonic() - self.unavailable_since, 1)
            self.unavailable_since = None
            log.info("scheduler: database available again", extra={"outage_seconds": seconds})

    async def _run_as_leader(self, conn: Conn) -> None:
        self.is_leader = True
        scheduler = AsyncIOScheduler(timezone="UTC")
        for job in self.jobs.values():
            scheduler.add_job(
                _scheduled_run,
                job.trigger,
                args=[self.pool, job, self.failing_jobs],
                id=job.name,
                name=job.name,
                coalesce=True,
                max_instances=1,
                **job.trigger_args,
            )
        scheduler.start()
        log.info("scheduler is the leader", extra={"jobs": sorted(self.jobs)})
        try:
            # hold the lock while the session lives; check it every few seconds
            while not self._stopping.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.check_seconds)
                await conn.fetchval("SELECT 1")
        finally:
            scheduler.shutdown(wait=False)
            self.is_leader = False


async def _scheduled_run(pool: asyncpg.Pool, job: Job, failing: set[str]) -> object:
    """A run started by the leader. When leadership ends (its session died with the database, or the process
    stops), APScheduler's shutdown cancels the runs under way: that is the intended end of the run, not a
    failure for APScheduler to log with a traceback."""
    try:
        return await run_job(pool, job, failing)
    except asyncio.CancelledError:
        log.info("scheduled job interrupted: this process no longer leads", extra={"job": job.name})
        return None


async def run_job(pool: asyncpg.Pool, job: Job, failing: set[str] | None = None) -> object:
    """Run ``job``, never raising. A failure for database unavailability is logged once while it lasts (the
    names of such jobs are kept in ``failing``), without a traceback; any other failure with its traceback."""
    started = time.perf_counter()
    failing = set() if failing is None else failing
    try:
        result = await job.run(pool)
    except Exception as exc:
        cause = unavailable_cause(exc)
        if cause is None:
            log.exception("scheduled job failed", extra={"job": job.name})
        elif job.name not in failing:
            failing.add(job.name)
            log.warning(
                "scheduled job not done: database unavailable", extra={"job": job.name, "error": describe(cause)}
            )
        return None
    if job.name in failing:
        failing.discard(job.name)
        log.info("scheduled job done again after the database outage", extra={"job": job.name})
    log.info("scheduled job done", extra={"job": job.name, "seconds": round(time.perf_counter() - started, 3)})
    return result
