"""Monthly partitions of ``readings`` (by the device's own timestamp).

Months from ``MONTHS_BACK`` before now to ``MONTHS_AHEAD`` after exist at all times (the migration creates them,
the scheduler's ``ensure_reading_partitions`` job keeps them ahead). Anything outside, such as a meter whose
clock says 2000, lands in ``readings_default`` and is moved into its month when that month's partition is made.
"""

from __future__ import annotations

import datetime as dt

from telemon.db import Conn

MONTHS_BACK = 12
MONTHS_AHEAD = 3
# A partition is vacuumed once 1 % more rows arrived (PostgreSQL's default: 20 %), so that its pages are soon
# marked all-visible and the engine's window is read from readings_patient_time alone (migration 0021).
STORAGE = "autovacuum_vacuum_insert_scale_factor = 0.01, autovacuum_vacuum_insert_threshold = 10000"

EXISTING = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'readings'::regclass
"""


def month_start(day: dt.date, shift: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 + shift
    return dt.date(index // 12, index % 12 + 1, 1)


def partition_name(month: dt.date) -> str:
    return f"readings_p{month:%Y%m}"


async def ensure(conn: Conn, today: dt.date | None = None) -> list[str]:
    """Create the missing monthly partitions around ``today``; returns their names."""
    today = today or dt.datetime.now(dt.UTC).date()
    existing = {r["relname"] for r in await conn.fetch(EXISTING)}
    created = []
    for shift in range(-MONTHS_BACK, MONTHS_AHEAD + 1):
        start = month_start(today, shift)
        name = partition_name(start)
        if name in existing:
            continue
        await _create(conn, name, start, month_start(start, 1))
        created.append(name)
    return created


async def _create(conn: Conn, name: str, start: dt.date, end: dt.date) -> None:
    # Identifiers cannot be parameters; ``name`` is built from a date by partition_name, never from input.
    lower = dt.datetime.combine(start, dt.time(), dt.UTC)
    upper = dt.datetime.combine(end, dt.time(), dt.UTC)
    async with conn.transaction():
        await conn.execute(
            f"CREATE TABLE {name} (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH ({STORAGE})"
        )
        await conn.execute(
            f"WITH moved AS (DELETE FROM readings_default WHERE device_time >= $1 AND device_time < $2 RETURNING *)"
            f" INSERT INTO {name} OVERRIDING SYSTEM VALUE SELECT * FROM moved",
            lower,
            upper,
        )
        await conn.execute(
            f"ALTER TABLE readings ATTACH PARTITION {name} FOR VALUES FROM ('{lower.isoformat()}') TO ('{upper.isoformat()}')"
        )
