"""The fasting trend: a least-squares slope of the past 14 days' fasting readings above 1 mg/dL per day, over at
least 7 readings (info; stateful; not after delivery). A slow rise calls for attention before the weekly
patterns catch it. Numbers: :mod:`alerts.profiles`.
"""

from __future__ import annotations

import numpy as np

from alerts import profiles as P
from alerts.cohort import Candidates, Cohort
from alerts.rules.build import Out, lazy, readings
from alerts.rules.segments import bounds, derived, judged


def fasting_trend_rising(c: Cohort) -> Candidates:
    """Least-squares slope of the fasting readings of the past 14 days > 1 mg/dL per day, with at least 7
    readings: info. Stateful; not after delivery."""
    d = derived(c)
    w = d.window(True, P.TREND_WINDOW_S)
    pid, idx = w.pid, w.idx
    x = (c.t[idx] - c.now) / 86400.0  # days, ≤ 0
    y = w.value
    n = w.n
    safe_n = np.maximum(n, 1)
    mx = np.bincount(pid, weights=x, minlength=d.P) / safe_n
    my = np.bincount(pid, weights=y, minlength=d.P) / safe_n
    dx = x - mx[pid]
    dy = y - my[pid]
    sxx = np.bincount(pid, weights=dx * dx, minlength=d.P)
    sxy = np.bincount(pid, weights=dx * dy, minlength=d.P)
    applicable = ~d.delivered
    judgeable = (n >= P.TREND_MIN_POINTS) & (sxx > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(judgeable, sxy / np.where(sxx > 0, sxx, 1.0), np.nan)
    fire = applicable & judgeable & (slope > P.TREND_MIN_SLOPE_MGDL_PER_DAY)

    def build() -> list[Out]:
        out: list[Out] = []
        b_lo, b_hi = bounds(pid, d.P)
        for p in np.flatnonzero(fire):
            members = idx[b_lo[p] : b_hi[p]]
            s = float(slope[p])
            evidence = readings(c, members) | {
                "slope_mgdl_per_day": s,
                "threshold_mgdl_per_day": P.TREND_MIN_SLOPE_MGDL_PER_DAY,
                "points": int(n[p]),
                "min_points": P.TREND_MIN_POINTS,
                "mean_mgdl": float(my[p]),
                "window_days": 14,
            }
            params = {
                "slope_mgdl_per_day": s,
                "threshold_mgdl_per_day": P.TREND_MIN_SLOPE_MGDL_PER_DAY,
                "points": int(n[p]),
                "mean_mgdl": float(my[p]),
                "window_days": 14,
                "source": P.TREND_SOURCE,
            }
            out.append(("info", "current", evidence, "fasting_trend_rising", params))
        return out

    return lazy("fasting_trend_rising", np.flatnonzero(fire), build, True, judged(applicable, judgeable))
