"""Scheduled jobs: named, owned by their domain (each hands its own over in its ``telemon.domain.Domain``), run by
the one scheduler process, and runnable by hand (``telemon run-job NAME``). The core's own job is here: the
monthly partitions of readings."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from telemon import partitions


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[asyncpg.Pool], Awaitable[Any]]
    trigger: str  # APScheduler trigger: "interval" or "cron"
    trigger_args: dict[str, Any] = field(default_factory=dict)
    doc: str = ""


async def ensure_reading_partitions(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as conn:
        return await partitions.ensure(conn)


CORE_JOBS = (
    Job(
        "ensure_reading_partitions",
        ensure_reading_partitions,
        "cron",
        {"hour": 3, "minute": 17},
        "create the monthly partitions of readings ahead of time",
    ),
)
