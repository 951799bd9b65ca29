"""The migration that re-derives value_mgdl of readings stored rounded to 0.001 mg/dL: the same double as ingest
now stores (telemon.units.exact_mgdl), mg/dL readings untouched, a second run changes nothing."""

from __future__ import annotations

import datetime as dt
from importlib import resources

import asyncpg

from telemon.units import exact_mgdl
from tests.support.factories import patient_with_device

INSERT = """
INSERT INTO readings (patient_id, device_id, kind, device_time, value_raw, unit_raw, measured_at, value_mgdl,
                      context, source)
VALUES ($1, $2, 'smbg', $3, $4, $5, $3, $6, 'unspecified', 'test')
RETURNING id
"""
VALUE = "SELECT value_mgdl FROM readings WHERE id = $1"


async def test_rounded_readings_are_re_derived_exactly(db: asyncpg.Pool) -> None:
    setup = await patient_with_device(db)
    at = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    sent = [  # (value as sent, unit as sent, value_mgdl as the old ingest stored it)
        (4.0, "mmol/L", 72.062),
        (5.3, " MMOL ", 95.483),
        (0.7206236, "g/l", 72.062),
        (0.95, "g/L", 95.0),  # already exact
        (72.062, "mg/dL", 72.062),  # as sent: untouched
    ]
    ids = []
    async with db.acquire() as conn:
        for i, (value, unit, old) in enumerate(sent):
            ids.append(
                await conn.fetchval(
                    INSERT, setup.patient_id, setup.device_id, at + dt.timedelta(minutes=i), value, unit, old
                )
            )
        sql = resources.files("telemon.migrations").joinpath("0008_exact_mgdl.sql").read_text(encoding="utf-8")
        first = await conn.execute(sql)
        got = [await conn.fetchval(VALUE, i) for i in ids]
        second = await conn.execute(sql)
    assert got == [72.06236, 95.482627, 72.06236, 95.0, 72.062]
    assert got[:4] == [exact_mgdl(4.0, "mmol/L"), exact_mgdl(5.3, "mmol/L"), exact_mgdl(0.7206236, "g/L"), 95.0]
    assert int(first.split()[-1]) >= 3  # at least ours (the database is shared with the session's other tests)
    assert second == "UPDATE 0"
