"""``python -m bench.engine [--quick]``: the alert engine's speed, in one run.

1. Full pass: the vectorised rules over 100,000 meter patients × 100 days × 6 readings and 10,000 CGM patients
   × 14 days (``--quick``: a tenth), evaluated in chunks of patients as the scheduled pass does (bounded
   memory), each patient with a treatment record (``synthetic_record``: the insulin patients' plan and nightly
   dose, a blood pressure a day and a ketone every third day for everyone); cohort generation is not timed. Two
   figures:

   - ``engine_rps``: ``evaluate(cohort, materialise=False)``, the rules' decisions: which patients, severity,
     episode keys, the evidence readings and numbers, stateful "evaluated" sets. The evidence dicts and the
     message params are built lazily (``Candidates.materialise``, on first read), so they are *not*
     in this figure;
   - ``engine_materialised_rps``: the same plus building the evidence and message params of every candidate (what
     ``Engine.evaluate`` pays: ``evaluate(cohort)`` materialises by default, before the store reconciles).

2. Reference: the plain-Python rules of ``tests/reference_rules.py`` on a subset of the same cohort, in the
   same run; ``speedup`` is ``engine_rps`` over its rate (the reference also decides only: it builds no
   messages), ``speedup_materialised`` the same with ``engine_materialised_rps``.
3. Incremental: a 50-reading batch stored through the ingest service, then ``Engine.evaluate`` of its patient
   (load from PostgreSQL, rules, reconcile in a transaction), on a database holding 10,000 patients' history
   (``--quick``: 1,000); p50 and p99 over many batches.

The last line is one JSON object: engine_rps, engine_materialised_rps, reference_rps, speedup,
speedup_materialised, incremental_p50_ms, incremental_p99_ms, peak_rss_mb. Targets: ≥ 20 M readings/s, ≥ 100× the
reference, incremental p99 ≤ 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import statistics
import time
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from alerts.engine import Engine
from alerts.rules import evaluate, materialise_all
from bench.common import fresh_database, say
from ingest.service import IngestService, device_by_token
from telemon.db import create_pool
from tests import reference_rules
from tests.support.cohorts import synthetic_cohort, synthetic_record
from tests.support.factories import patient_with_device
from tests.support.services import postgres_server

NOW = int(time.time())


def full_pass(n_meter: int, n_cgm: int, chunk: int) -> tuple[float, float, int, int]:
    """Seconds spent in the rules' decisions, seconds spent materialising every candidate's evidence and
    messages, readings evaluated, candidates found."""
    spent, building, readings, found = 0.0, 0.0, 0, 0
    meter_chunk = max(1, chunk * n_meter // (n_meter + n_cgm))
    cgm_chunk = max(1, chunk - meter_chunk)
    seed = 0
    left_m, left_c = n_meter, n_cgm
    while left_m > 0 or left_c > 0:
        m, c = min(meter_chunk, left_m), min(cgm_chunk, left_c)
        cohort = synthetic_cohort(m, 100, 6, c, 14, seed=seed, now=NOW)
        cohort.record = synthetic_record(cohort, seed=seed)  # every patient's doses, ketones, blood pressures
        started = time.perf_counter()
        results = evaluate(cohort, materialise=False)
        decided = time.perf_counter()
        materialise_all(results)
        built = time.perf_counter()
        spent += decided - started
        building += built - decided
        readings += len(cohort.t)
        found += sum(len(r) for r in results)
        del results, cohort  # freed outside the timed parts, as the cohort's generation
        left_m, left_c, seed = left_m - m, left_c - c, seed + 1
    return spent, building, readings, found


def reference_pass(patients: int) -> tuple[float, int]:
    cohort = synthetic_cohort(patients * 9 // 10, 100, 6, patients - patients * 9 // 10, 14, seed=99, now=NOW)
    cohort.record = synthetic_record(cohort, seed=99)
    started = time.perf_counter()
    reference_rules.reference(cohort)
    return time.perf_counter() - started, len(cohort.t)


async def incremental(maintenance_url: str, patients: int, batches: int) -> list[float]:
    async with fresh_database(maintenance_url, "telemon_bench_engine") as url:
        pool = await create_pool(url, max_size=4)
        try:
            return await _incremental(pool, patients, batches)
        finally:
            await pool.close()


async def _incremental(pool: Any, patients: int, batches: int) -> list[float]:
    say(f"storing 14 days of history for {patients:,} patients ...")
    setups = [await patient_with_device(pool) for _ in range(patients)]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rng = np.random.default_rng(1)
    columns = ("patient_id", "device_id", "kind", "device_time", "value_raw", "unit_raw", "measured_at",
               "value_mgdl", "context", "source")  # fmt: skip
    for start in range(0, patients, 500):
        records = []
        for s in setups[start : start + 500]:
            for k in range(14 * 6):
                at = now - dt.timedelta(days=14) + dt.timedelta(hours=4 * k, minutes=int(rng.integers(0, 60)))
                value = float(round(rng.normal(100, 15), 1))
                context = "fasting" if k % 6 == 0 else "after_meal"
                records.append((s.patient_id, s.device_id, "smbg", at, value, "mg/dL", at, value, context, "bench"))
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("readings", records=records, columns=columns)
    service = IngestService(pool)
    engine = Engine(pool)
    timings: list[float] = []
    for n in range(batches):
        setup = setups[int(rng.integers(0, patients))]
        device = await device_by_token(pool, setup.token)
        assert device is not None
        readings = [
            {"measured_at": (now - dt.timedelta(minutes=5 * i + n % 5)).isoformat(),
             "value": float(round(rng.normal(105, 25), 1)), "unit": "mg/dL"}
            for i in range(50)
        ]  # fmt: skip
        await service.receive({"readings": readings}, device, "bench")
        started = time.perf_counter()
        await engine.evaluate([setup.patient_id])
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the volumes (under a minute)")
    args = parser.parse_args(argv)
    scale = 10 if args.quick else 1
    n_meter, n_cgm = 100_000 // scale, 10_000 // scale
    say(f"full pass: {n_meter:,} meter patients × 100 days × 6 + {n_cgm:,} CGM patients × 14 days")
    spent, building, readings, found = full_pass(n_meter, n_cgm, chunk=5_000)
    engine_rps = readings / spent
    materialised_rps = readings / (spent + building)
    say(
        f"  decisions (evidence and message params built lazily, not timed here): {readings:,} readings in {spent:.2f} s"
        f" = {engine_rps / 1e6:.1f} M readings/s; {found:,} candidates"
    )
    say(
        f"  with every candidate's evidence and messages built: {spent + building:.2f} s"
        f" = {materialised_rps / 1e6:.1f} M readings/s (building: {building:.2f} s)"
    )
    ref_spent, ref_readings = reference_pass(40 if args.quick else 100)
    reference_rps = ref_readings / ref_spent
    say(
        f"reference (decisions only): {ref_readings:,} readings in {ref_spent:.2f} s"
        f" = {reference_rps / 1e3:.0f} k readings/s; speedup {engine_rps / reference_rps:.0f}×"
        f" ({materialised_rps / reference_rps:.0f}× with evidence and messages)"
    )
    with postgres_server() as maintenance_url:
        timings = asyncio.run(incremental(maintenance_url, 1_000 if args.quick else 10_000, 200 if args.quick else 500))
    p50, p99 = percentile(timings, 50), percentile(timings, 99)
    say(
        f"incremental (50-reading batch, load + rules + reconcile): p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        f" (mean {statistics.fmean(timings):.1f} ms)"
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "engine_rps": round(engine_rps),
        "engine_materialised_rps": round(materialised_rps),
        "reference_rps": round(reference_rps),
        "speedup": round(engine_rps / reference_rps, 1),
        "speedup_materialised": round(materialised_rps / reference_rps, 1),
        "incremental_p50_ms": round(p50, 2),
        "incremental_p99_ms": round(p99, 2),
        "peak_rss_mb": round(peak),
        "readings": readings,
        "candidates": found,
        "mode": "quick" if args.quick else "full",
        "run_id": uuid.uuid4().hex[:8],
    }
    for name, ok in (("engine ≥ 20 M readings/s (decisions)", engine_rps >= 20e6),
                     ("engine ≥ 20 M readings/s (with evidence and messages)", materialised_rps >= 20e6),
                     ("≥ 100× reference (decisions)", engine_rps / reference_rps >= 100),
                     ("incremental p99 ≤ 20 ms", p99 <= 20)):  # fmt: skip
        say(f"  {'PASS' if ok else 'MISS'}  {name}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
