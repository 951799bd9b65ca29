"""``python -m bench.fhir [--quick]``: a hospital reading 14 days of a CGM wearer's readings back through FHIR.

A fresh, uniquely named database (migrated, dropped at the end) on the PostgreSQL the tests use (127.0.0.1:5432 if
it answers, else an embedded one) holds one CGM wearer with 14 days of 5-minute readings (4,032, values from the
real traces of ``../shared/data/cgm``) sent through the device contract, and the same for ``--neighbours`` other
patients (the table is not the one patient's alone). telemon runs as it ships (``telemon serve --roles api``), and
this process, as the hospital's client would, reads:

- ``fhir``: ``GET /fhir/Observation?patient=…&date=ge…&date=lt…&_count=1000``, following the ``next`` links until
  the Bundle ends (5 pages, 4,032 Observations with their LOINC code, UCUM unit and device);
- ``csv``: ``GET /api/v1/patients/{id}/readings.csv?from=…&to=…``, the same rows as one CSV file;
- ``summary``: ``GET /api/v1/patients/{id}/cgm-summary?from=…&to=…``, the HL7 CGM IG summary of the period;
- baseline: the same rows read by this process straight from PostgreSQL (asyncpg, the readings' index): what the
  database alone costs. Each figure is printed with its ratio to it.

Each is timed ``--runs`` times, interleaved; the last line is one JSON object with the p50 / p95 of each, the
baseline's, the ratios and the number of Observations. ``--quick``: 10 runs instead of 40.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import BenchError, cgm_traces, fresh_database, iso_z, say, start_api_server
from telemon.db import create_pool
from tests.support.factories import api_key, patient_with_device
from tests.support.services import postgres_server

DAYS = 14
PER_DAY = 288
BASELINE_SQL = """
SELECT id, measured_at, value_mgdl, device_id, kind FROM readings
WHERE patient_id = $1 AND measured_at >= $2 AND measured_at < $3 ORDER BY measured_at, id
"""


def p(values: list[float], pct: float) -> float:
    return float(np.percentile(np.asarray(values), pct))


async def _send(client: httpx.AsyncClient, base: str, token: str, index: int, end: dt.datetime) -> None:
    trace = cgm_traces()[index % len(cgm_traces())]
    count = DAYS * PER_DAY
    start = end - dt.timedelta(minutes=5 * count)
    items = [
        {"id": f"b{index}-{i}", "measured_at": iso_z(start + dt.timedelta(minutes=5 * i)), "kind": "cgm",
         "value": trace[(index * 311 + i) % len(trace)], "unit": "mg/dL"}
        for i in range(count)
    ]  # fmt: skip
    for at in range(0, count, 1000):
        answer = await client.post(
            f"{base}/api/v1/readings",
            json={"readings": items[at : at + 1000]},
            headers={"Authorization": f"Bearer {token}"},
        )
        if answer.status_code != 200 or answer.json()["rejected"]:
            raise BenchError(f"the history was not stored: {answer.status_code} {answer.text[:300]}")


async def _fhir(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> int:
    found = 0
    next_url: str | None = url
    while next_url is not None:
        answer = await client.get(next_url, headers=headers)
        if answer.status_code != 200:
            raise BenchError(f"FHIR search answered {answer.status_code}: {answer.text[:300]}")
        bundle = answer.json()
        found += len(bundle.get("entry", []))
        next_url = next((link["url"] for link in bundle.get("link", []) if link["relation"] == "next"), None)
    return found


async def _timed(work: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await work()
    return (time.perf_counter() - started) * 1000


async def run(runs: int, neighbours: int, maintenance_url: str, work: Path) -> dict[str, Any]:
    async with fresh_database(maintenance_url, "telemon_bench_fhir") as db_url:
        pool = await create_pool(db_url, max_size=4)
        server, base = await start_api_server(db_url, work)
        try:
            setups = [await patient_with_device(pool, kind="cgm") for _ in range(neighbours + 1)]
            patient = setups[0]
            key = await api_key(pool, "readings:read", "patients:read", teams=[patient.team_id])
            end = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(minutes=30)
            start = end - dt.timedelta(days=DAYS)
            async with httpx.AsyncClient(timeout=120) as client:
                for index, setup in enumerate(setups):
                    await _send(client, base, setup.token, index, end)
                say(f"  stored {DAYS} days of CGM for {len(setups)} patients")
                auth = {"Authorization": f"Bearer {key}"}
                period = f"date=ge{iso_z(start)}&date=lt{iso_z(end + dt.timedelta(minutes=1))}"
                fhir_url = f"{base}/fhir/Observation?patient={patient.patient_id}&{period}&_count=1000"
                bounds = {"from": iso_z(start), "to": iso_z(end + dt.timedelta(minutes=1))}
                csv_url = f"{base}/api/v1/patients/{patient.patient_id}/readings.csv"
                summary_url = f"{base}/api/v1/patients/{patient.patient_id}/cgm-summary"
                observations = await _fhir(client, fhir_url, auth)
                if observations != DAYS * PER_DAY:
                    raise BenchError(f"the search gave {observations} Observations, not {DAYS * PER_DAY}")
                rows = await pool.fetch(BASELINE_SQL, patient.patient_id, start, end + dt.timedelta(minutes=1))
                if len(rows) != observations:
                    raise BenchError(f"the database holds {len(rows)} readings, the search gave {observations}")

                async def csv() -> None:
                    (await client.get(csv_url, params=bounds, headers=auth)).raise_for_status()

                async def summary() -> None:
                    (await client.get(summary_url, params=bounds, headers=auth)).raise_for_status()

                async def baseline() -> None:
                    await pool.fetch(BASELINE_SQL, patient.patient_id, start, end + dt.timedelta(minutes=1))

                times: dict[str, list[float]] = {"fhir": [], "csv": [], "summary": [], "baseline": []}
                await csv()  # warm-up
                await summary()
                for _ in range(runs):
                    times["fhir"].append(await _timed(lambda: _fhir(client, fhir_url, auth)))
                    times["csv"].append(await _timed(csv))
                    times["summary"].append(await _timed(summary))
                    times["baseline"].append(await _timed(baseline))
        finally:
            await server.stop()
            await pool.close()
    base_p95 = p(times["baseline"], 95)
    result: dict[str, Any] = {"observations": observations, "runs": runs}
    for name, values in times.items():
        result[f"{name}_p50_ms"] = round(statistics.median(values), 1)
        result[f"{name}_p95_ms"] = round(p(values, 95), 1)
        if name != "baseline":
            result[f"{name}_vs_baseline"] = round(p(values, 95) / base_p95, 1)
        say(f"  {name:9} p50 {statistics.median(values):8.1f} ms   p95 {p(values, 95):8.1f} ms")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fhir", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 runs instead of 40")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--neighbours", type=int, default=9, help="other CGM wearers in the database")
    args = parser.parse_args(argv)
    runs = args.runs or (10 if args.quick else 40)
    try:
        with tempfile.TemporaryDirectory(prefix="telemon-bench-fhir-") as tmp, postgres_server() as url:
            summary = asyncio.run(run(runs, args.neighbours, url, Path(tmp)))
    except BenchError as exc:
        print(f"bench.fhir: FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
