"""Migrations: applied once, safe to run twice and from two processes at once; partitions kept ahead."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from telemon import partitions
from telemon.db import connect
from telemon.migrate import available, migrate, pending
from tests.conftest import _with_database


@pytest.fixture
async def empty_database(postgres_url: str) -> AsyncIterator[str]:
    name = f"telemon_mig_{uuid.uuid4().hex[:10]}"
    admin = await connect(postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(postgres_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_two_processes_migrating_at_once_apply_each_version_once(empty_database: str) -> None:
    first, second = await connect(empty_database), await connect(empty_database)
    try:
        results = await asyncio.gather(migrate(first), migrate(second))
        applied = sorted(results, key=len)
        assert applied[0] == []
        assert applied[1] == [f"{m.version:04d}_{m.name}" for m in available()]
        assert await migrate(first) == []
        assert await pending(first) == []
        versions = await first.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in versions] == [m.version for m in available()]
    finally:
        await first.close()
        await second.close()


async def test_every_patient_scoped_table_has_patient_id_first_in_its_key(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """
        SELECT c.relname, a.attname
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
        WHERE i.indisprimary AND c.relname IN ('devices', 'readings', 'alerts')
        """
    )
    assert {r["relname"]: r["attname"] for r in rows} == {
        "devices": "patient_id",
        "readings": "patient_id",
        "alerts": "patient_id",
    }


async def test_partitions_cover_the_year_and_take_rows_from_the_default(empty_database: str) -> None:
    conn = await connect(empty_database)
    try:
        await migrate(conn)
        names = {r["relname"] for r in await conn.fetch(partitions.EXISTING)}
        today = dt.datetime.now(dt.UTC).date()
        assert partitions.partition_name(partitions.month_start(today)) in names
        assert partitions.partition_name(partitions.month_start(today, partitions.MONTHS_AHEAD)) in names
        # a reading far in the future lands in the default partition, then moves when its month is created
        team, patient = uuid.uuid4(), uuid.uuid4()
        await conn.execute("INSERT INTO care_teams (id, name) VALUES ($1, 'p')", team)
        await conn.execute(
            "INSERT INTO patients (id, team_id, external_id, display_name, time_zone, due_date)"
            " VALUES ($1, $2, 'x', 'x', 'UTC', '2031-01-01')",
            patient,
            team,
        )
        future = dt.datetime(2030, 6, 15, tzinfo=dt.UTC)
        await conn.execute(
            "INSERT INTO readings (patient_id, device_id, kind, device_time, value_raw, unit_raw, measured_at,"
            " value_mgdl, context, source) VALUES ($1, 'd', 'smbg', $2, 90, 'mg/dL', $2, 90, 'fasting', 'test')",
            patient,
            future,
        )
        assert await conn.fetchval("SELECT count(*) FROM readings_default") == 1
        created = await partitions.ensure(conn, today=dt.date(2030, 6, 1))
        assert "readings_p203006" in created
        assert await conn.fetchval("SELECT count(*) FROM readings_default") == 0
        assert await conn.fetchval("SELECT count(*) FROM readings_p203006") == 1
        assert await conn.fetchval("SELECT count(*) FROM readings") == 1
    finally:
        await conn.close()


STORAGE_OPTIONS = """
SELECT c.relname, c.reloptions FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'readings'::regclass
"""


async def test_the_engines_window_is_read_from_the_index_alone(empty_database: str) -> None:
    """A patient's window (``alerts.queries.COHORT_READINGS``) is answerable by an index-only scan of
    readings_patient_time, and every partition, old or new, is vacuumed soon enough for its pages to be all-visible:
    otherwise each reading of a window costs a table page, interleaved with every other patient's."""
    from alerts import queries

    conn = await connect(empty_database)
    try:
        await migrate(conn)
        await partitions.ensure(conn, today=dt.date(2030, 6, 1))
        for row in await conn.fetch(STORAGE_OPTIONS):
            assert "autovacuum_vacuum_insert_scale_factor=0.01" in (row["reloptions"] or []), row["relname"]
        team = uuid.uuid4()
        await conn.execute("INSERT INTO care_teams (id, name) VALUES ($1, 'w')", team)
        patients = [uuid.uuid4() for _ in range(20)]
        for k, patient in enumerate(patients):
            await conn.execute(
                "INSERT INTO patients (id, team_id, external_id, display_name, time_zone, due_date)"
                " VALUES ($1, $2, $3, 'x', 'Europe/Paris', CURRENT_DATE + 60)",
                patient,
                team,
                f"w{k}",
            )
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        rows = [  # a CGM's 5-minute readings of the last 7 days, every patient interleaved as they arrive
            (patient, "cgm", now - dt.timedelta(minutes=5 * i), 100.0, "unspecified", "test")
            for i in range(2016)
            for patient in patients
        ]
        await conn.copy_records_to_table(
            "readings",
            records=[(p, "d", kind, at, v, "mg/dL", at, v, c, s) for p, kind, at, v, c, s in rows],
            columns=["patient_id", "device_id", "kind", "device_time", "value_raw", "unit_raw", "measured_at",
                     "value_mgdl", "context", "source"],
        )  # fmt: skip
        await conn.execute("VACUUM ANALYZE readings")
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                "EXPLAIN (ANALYZE, BUFFERS) " + queries.COHORT_READINGS, patients[:1], now - dt.timedelta(days=3)
            )
        )
        assert "Index Only Scan using readings_p" in plan, plan
        assert "Heap Fetches: 0" in plan and "Bitmap Heap Scan" not in plan, plan
        assert "Index Scan using readings_p" not in plan, plan
    finally:
        await conn.close()
