"""The scheduler role: exactly one process runs the jobs, the one holding a PostgreSQL advisory lock.

Other processes started with the scheduler role wait as standbys and take over when the leader's session ends.
Each job run catches its own failure, so one failing job never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from telemon.db import LOCK_SCHEDULER, Conn
from telemon.jobs import Job

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self, pool: asyncpg.Pool, jobs: dict[str, Job], *, retry_seconds: float = 10.0) -> None:
        self.pool = pool
        self.jobs = jobs
        self.retry_seconds = retry_seconds
        self.is_leader = False
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

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
                    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_SCHEDULER):
                        try:
                            await self._run_as_leader(conn)
                        finally:
                            with contextlib.suppress(Exception):
                                await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_SCHEDULER)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("scheduler lost its database connection", extra={"error": str(exc)})
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.retry_seconds)

    async def _run_as_leader(self, conn: Conn) -> None:
        self.is_leader = True
        scheduler = AsyncIOScheduler(timezone="UTC")
        for job in self.jobs.values():
            scheduler.add_job(
                run_job,
                job.trigger,
                args=[self.pool, job],
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
                    await asyncio.wait_for(self._stopping.wait(), 5)
                await conn.fetchval("SELECT 1")
        finally:
            scheduler.shutdown(wait=False)
            self.is_leader = False


async def run_job(pool: asyncpg.Pool, job: Job) -> object:
    started = time.perf_counter()
    try:
        result = await job.run(pool)
    except Exception:
        log.exception("scheduled job failed", extra={"job": job.name})
        return None
    log.info("scheduled job done", extra={"job": job.name, "seconds": round(time.perf_counter() - started, 3)})
    return result
