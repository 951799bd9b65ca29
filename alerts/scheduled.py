"""Scheduled jobs of the alert engine: the whole population for the time-driven rules (no data, adherence,
patterns, postpartum), and CGM wearers every minute (stale sensor, predicted low)."""

from __future__ import annotations

import asyncpg

from alerts.engine import Engine
from telemon.jobs import Job


async def evaluate_population(pool: asyncpg.Pool) -> int:
    return await Engine(pool).evaluate_population()


async def evaluate_cgm_patients(pool: asyncpg.Pool) -> int:
    return await Engine(pool).evaluate_population(cgm_only=True)


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
        "CGM wearers' time-critical rules: stale sensor, predicted low, rapid fall",
    ),
)
