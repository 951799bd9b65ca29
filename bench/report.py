"""``python -m bench.report [--quick]``: time to draw the PDF patient report of 14 days.

Three documents are rendered in turn, in this process, with the code the routes use (``records.report.render_pdf``:
the dashboard's logbook and SVG charts, the Jinja template, WeasyPrint): the **baseline**, an empty one-page
document through WeasyPrint alone (what any PDF costs here: Pango, fonts, the PDF writer); a **meter** patient's
14-day report (6 readings a day, alerts, a plan changed in the period, notes: 2–3 pages); and a **CGM** patient's
(4,032 sensor readings: the glucose chart, the AGP and the times in ranges besides). The data is made in memory,
so that the figure is the drawing alone (the report's queries are those of the patient page, measured by
``bench.dashboard``).

While the CGM report is drawn in a worker thread, as the routes do it, a task on the event loop wakes every 10 ms:
how late it wakes says how long the loop was held (the service stays responsive while a report is drawn). The
collector is settled first (``telemon.loop.settle_gc``), as in a served process.

``--save DIR`` writes the two reports (README's picture: ``pdftoppm -r 70 -png -f 1 -l 1 DIR/meter.pdf
docs/img/report``).

The last line printed is one JSON object with ``baseline_p95_ms``, ``meter_p95_ms``, ``cgm_p95_ms``, the ratios to
the baseline, ``meter_cpu_ms`` (the CPU time of one render: wall time on a shared machine is longer) and the loop's
lateness ``loop_lag_p99_ms``. Target: a 14-day report p95 under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import weasyprint

from bench.common import say
from records import report
from telemon import loop
from telemon import treatment as plans

TARGET_MS = 2000.0
PARIS = ZoneInfo("Europe/Paris")


def percentile(values: list[float], pct: float) -> float:
    return float(np.percentile(np.asarray(values), pct))


def _patient(kinds: list[str]) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "team_id": uuid.uuid4(),
        "team_name": "Maternité Port-Royal",
        "external_id": "IPP-0042",
        "display_name": "Élodie Lefèvre",
        "time_zone": "Europe/Paris",
        "due_date": dt.date.today() + dt.timedelta(days=60),
        "diagnosis_date": dt.date.today() - dt.timedelta(days=40),
        "delivery_date": None,
        "treatment": "insulin",
        "profile": "FR",
        "target_overrides": None,
        "readings_per_day": 6,
        "created_at": dt.datetime.now(dt.UTC) - dt.timedelta(days=40),
        "archived_at": None,
        "device_kinds": kinds,
    }


def _data(now: dt.datetime, cgm: bool, rng: np.random.Generator) -> report.ReportData:
    """A 14-day report's data, in memory."""
    patient = _patient(["cgm"] if cgm else ["meter"])
    period = report.period_of("report", None, None, patient, now)
    meter: list[dict[str, Any]] = []
    if not cgm:
        slots = [(7, "fasting", None), (9, "after_meal", "breakfast"), (13, "after_meal", "lunch"),
                 (16, "unspecified", None), (20, "after_meal", "dinner"), (22, "bedtime", None)]  # fmt: skip
        for day in period.days:
            for hour, context, meal in slots:
                at = dt.datetime.combine(day, dt.time(hour, int(rng.integers(0, 59))), PARIS)
                if at < now:
                    meter.append({
                        "id": len(meter) + 1, "kind": "smbg", "measured_at": at.astimezone(dt.UTC),
                        "value_mgdl": float(rng.normal(105 if context == "fasting" else 125, 18)),
                        "context": context, "context_inferred": False, "meal": meal,
                        "minutes_after_meal": 120 if meal else None, "flags": [],
                    })  # fmt: skip
    t = np.arange(int(period.start.timestamp()), int(min(period.end, now).timestamp()), 300, dtype=np.int64)
    if not cgm:
        t = t[:0]
    v = np.clip(110 + 35 * np.sin(t / 9000.0) + rng.normal(0, 12, len(t)), 40, 300).astype(np.float64)
    minutes = ((t + 3600) // 60 % 1440).astype(np.int64)
    alerts = [
        {
            "id": i, "rule": "hypo_l1", "severity": "warning", "status": "resolved", "code": "hypo_l1",
            "params": {"threshold_mgdl": 70.0, "count": 1, "first_at": "2026-01-01T10:00:00Z",
                       "first_local": "2026-01-01 11:00", "last_at": "2026-01-01T10:00:00Z",
                       "last_local": "2026-01-01 11:00", "nadir_mgdl": 64.0, "nadir_at": "2026-01-01T10:00:00Z",
                       "nadir_local": "2026-01-01 11:00", "source": "ADA Standards of Care, section 6",
                       "level_low_mgdl": 54.0, "level_high_mgdl": 69.0},
            "message": None, "opened_at": now - dt.timedelta(days=2 * i + 1),
            "acknowledged_at": now - dt.timedelta(days=2 * i + 1, hours=-1), "acknowledged_by": "clinician:x",
            "snoozed_until": None, "snoozed_by": None, "resolved_at": now - dt.timedelta(days=2 * i),
            "resolved_by": "system", "resolved_reason": "cleared", "folded_episodes": i % 3, "total": 6,
        }
        for i in range(6)
    ]  # fmt: skip
    plan = plans.Plan(
        treatment="insulin",
        basal=plans.Basal("NPH", 8.0, "22:00"),
        prandial={"breakfast": 4.0, "dinner": 6.0},
        prandial_product="NovoRapid",
        note="Fasting above target for a week",
        version=2,
        created_by="clinician:x",
        created_at=now - dt.timedelta(days=5),
    )
    notes = [
        {"body": "Appel : mesures à jeun revues, dose du soir augmentée.", "created_at": now - dt.timedelta(days=d),
         "author": "Dr Martin"}
        for d in (2, 6, 11)
    ]  # fmt: skip
    return report.ReportData(
        kind="report",
        lang="fr",
        unit="g/L",
        now=now,
        printed_by="Dr Martin",
        patient=patient,
        period=period,
        meter_rows=meter,  # type: ignore[arg-type]  # dicts read like the query's records
        cgm_t=t,
        cgm_v=v,
        cgm_minutes=minutes,
        alerts=alerts,  # type: ignore[arg-type]
        alerts_total=len(alerts),
        actor_names={"clinician:x": "Dr Martin", "system": "telemon, automatiquement"},
        notes=notes,  # type: ignore[arg-type]
        plans=[plan],
    )


def _timed(render: Any, runs: int) -> tuple[list[float], bytes]:
    timings = []
    out = b""
    for _ in range(runs):
        started = time.perf_counter()
        out = render()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, out


async def _loop_lag(data: report.ReportData, renders: int) -> list[float]:
    """How late (ms) a 10 ms tick on the event loop wakes while reports are drawn in a worker thread, one after the
    other, as the routes draw them."""
    late: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            late.append((time.perf_counter() - started) * 1000 - 10)

    ticker = asyncio.create_task(tick())
    for _ in range(renders):
        await asyncio.to_thread(report.render_pdf, data)
    done.set()
    await ticker
    return late


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 runs of each instead of 20")
    parser.add_argument("--save", metavar="DIR", help="write the two reports there (meter.pdf, cgm.pdf)")
    args = parser.parse_args()
    runs = 5 if args.quick else 20
    rng = np.random.default_rng(20261204)
    now = dt.datetime.now(dt.UTC)
    meter, cgm = _data(now, False, rng), _data(now, True, rng)
    empty = "<html><body><p>telemon</p></body></html>"
    report.render_pdf(meter)  # warm-up: Pango, fonts and the template load once per process
    loop.settle_gc()  # as a served process does once started (telemon.loop)
    baseline, _ = _timed(lambda: weasyprint.HTML(string=empty).write_pdf(), runs)
    meter_ms, meter_pdf = _timed(lambda: report.render_pdf(meter), runs)
    cgm_ms, cgm_pdf = _timed(lambda: report.render_pdf(cgm), runs)
    cpu_started = time.process_time()
    report.render_pdf(meter)
    meter_cpu_ms = (time.process_time() - cpu_started) * 1000
    html_ms, _ = _timed(lambda: report.render_html(cgm).encode(), runs)
    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
        (Path(args.save) / "meter.pdf").write_bytes(meter_pdf)
        (Path(args.save) / "cgm.pdf").write_bytes(cgm_pdf)
    late = asyncio.run(_loop_lag(cgm, 3 if args.quick else 5))
    base95 = percentile(baseline, 95)
    result = {
        "baseline_p95_ms": round(base95, 1),
        "meter_p50_ms": round(statistics.median(meter_ms), 1),
        "meter_p95_ms": round(percentile(meter_ms, 95), 1),
        "cgm_p50_ms": round(statistics.median(cgm_ms), 1),
        "cgm_p95_ms": round(percentile(cgm_ms, 95), 1),
        "cgm_html_p95_ms": round(percentile(html_ms, 95), 1),
        "meter_ratio": round(percentile(meter_ms, 95) / base95, 1),
        "cgm_ratio": round(percentile(cgm_ms, 95) / base95, 1),
        "meter_readings": len(meter.meter_rows),
        "cgm_readings": len(cgm.cgm_t),
        "meter_pdf_kb": round(len(meter_pdf) / 1024),
        "cgm_pdf_kb": round(len(cgm_pdf) / 1024),
        "meter_cpu_ms": round(meter_cpu_ms),
        "loop_lag_p50_ms": round(percentile(late, 50), 1),
        "loop_lag_p99_ms": round(percentile(late, 99), 1),
        "loop_lag_max_ms": round(max(late), 1),
        "runs": runs,
        "weasyprint": weasyprint.__version__,
    }
    say(f"baseline (empty one-page PDF): p95 {base95:.0f} ms")
    say(
        f"meter report, 14 days ({len(meter.meter_rows)} readings): p50 {result['meter_p50_ms']:.0f} ms, "
        f"p95 {result['meter_p95_ms']:.0f} ms = {result['meter_ratio']}× baseline"
    )
    say(
        f"CGM report, 14 days ({len(cgm.cgm_t)} readings): p50 {result['cgm_p50_ms']:.0f} ms, "
        f"p95 {result['cgm_p95_ms']:.0f} ms = {result['cgm_ratio']}× baseline "
        f"(of which HTML and charts {result['cgm_html_p95_ms']:.0f} ms)"
    )
    say(f"meter report, CPU time of one render (this process): {meter_cpu_ms:.0f} ms")
    say(
        f"event loop while reports are drawn in a thread: a 10 ms tick late by p50 {result['loop_lag_p50_ms']} ms, "
        f"p99 {result['loop_lag_p99_ms']} ms, worst {result['loop_lag_max_ms']} ms"
    )
    for name, ok in (
        ("meter report p95 < 2 s", result["meter_p95_ms"] < TARGET_MS),
        ("CGM report p95 < 2 s", result["cgm_p95_ms"] < TARGET_MS),
    ):
        say(f"  {'PASS' if ok else 'MISS'}  {name}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
