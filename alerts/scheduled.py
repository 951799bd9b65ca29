"""Scheduled jobs of the alert engine: the whole population for the time-driven rules (no data, adherence,
patterns, postpartum), and CGM wearers every minute (stale sensor, predicted low).

A database outage does not make them fail run after run: a run that finds the database unavailable stops, says so
once for the whole outage (and once when the database answers again), and the next run after the outage evaluates
every patient, so nothing is lost by the runs that could not be made."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from alerts.engine import Engine
from telemon.db import describe, unavailable
from telemon.jobs import Job

log = logging.getLogger(__name__)


class _Outages:
    """When the scheduled alert jobs last found the database unavailable (None: they did not)."""

    since: float | None = None
    count = 0


async def _guarded(job: str, run: Callable[[], Awaitable[int]]) -> int:
    try:
        changed = await run()
    except Exception as exc:
        if not unavailable(exc):
            raise
        if _Outages.since is None:
            _Outages.since = time.monotonic()
            _Outages.count += 1
            log.warning(
                "scheduled alert jobs: database unavailable, skipping runs until it answers",
                extra={"job": job, "error": describe(exc)},
            )
        return 0
    if _Outages.since is not None:
        log.info(
            "scheduled alert jobs: database answers again",
            extra={"job": job, "outage_s": round(time.monotonic() - _Outages.since, 1)},
        )
        _Outages.since = None
    return changed


async def evaluate_population(pool: asyncpg.Pool) -> int:
    return await _guarded("evaluate_population", lambda: Engine(pool).evaluate_population())


async def evaluate_cgm_patients(pool: asyncpg.Pool) -> int:
    return await _guarded("evaluate_cgm_patients", lambda: Engine(pool).evaluate_population(cgm_only=True))


JOBS: tuple[Job, ...] = (
    Job(
        "evaluate_population",
        evaluate_population,
        "interval",
        {"minutes": 5},
        "every patient, every rule: what time alone can raise or clear",
    ),
    Job(
        "evaluate_cgm_patients",
        evaluate_cgm_patients,
        "interval",
        {"minutes": 1},
        "CGM wearers' time-critical rules over their last 6 hours: stale sensor, predicted low, rapid fall",
    ),
)
