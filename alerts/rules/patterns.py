"""Treatment escalation patterns over the past week (stateful; not after delivery).

A common working rule from the DECIDE trial: escalate the treatment when ≥ 30 % of the past week's readings that
have a target are at or above it (out of at least 8), or when ≥ 50 % of the past week's fasting readings are above
115 mg/dL (out of at least 4). Both are warnings on the episode ``"current"``; they resolve themselves when the
week no longer meets the rule. Numbers and sources: :mod:`alerts.profiles`.
"""

from __future__ import annotations

import numpy as np

from alerts import profiles as P
from alerts.cohort import Candidates, Cohort
from alerts.rules.build import Batch, Out, lazy, readings
from alerts.rules.segments import bounds, derived, judged

_TARGET_KIND = ("fasting", "post_1h", "post_2h")


def pattern_above_target(c: Cohort) -> Candidates:
    """≥ 30 % of the past 7 days' meter readings that have a target (fasting, after meal) at or above it, out of
    at least 8: warning (DECIDE working rule). Stateful; not after delivery."""
    d = derived(c)
    fw, pw = d.window(True, P.PATTERN_WINDOW_S), d.window(False, P.PATTERN_WINDOW_S)
    fpos, fpid, f_target, f_above = fw.pos, fw.pid, fw.target, fw.above
    ppos, ppid, p_target, p_1h, p_above = pw.pos, pw.pid, pw.target, pw.is_1h, pw.above
    n = fw.n + pw.n
    k = np.bincount(fpid[f_above], minlength=d.P) + np.bincount(ppid[p_above], minlength=d.P)
    applicable = ~d.delivered
    judgeable = n >= P.PATTERN_MIN_READINGS
    fire = applicable & judgeable & (k * 100 >= P.PATTERN_ABOVE_PCT * n)

    def build() -> list[Out]:
        # the above-target readings of the firing patients, fasting and after-meal merged in reading order
        f_sel = f_above & fire[fpid]
        p_sel = p_above & fire[ppid]
        idx = np.concatenate([d.fasting.idx[fpos[f_sel]], d.post.idx[ppos[p_sel]]])
        order = np.argsort(idx, kind="stable")
        idx = idx[order]
        pid = np.concatenate([fpid[f_sel], ppid[p_sel]])[order]
        targets: list[float] = np.concatenate([f_target[f_sel], p_target[p_sel]])[order].tolist()
        kind_code = np.concatenate([np.zeros(int(f_sel.sum()), np.int64), np.where(p_1h[p_sel], 1, 2)])[order]
        kinds = [_TARGET_KIND[x] for x in kind_code.tolist()]
        firing = np.flatnonzero(fire)
        lo = np.searchsorted(pid, firing)
        hi = np.searchsorted(pid, firing, side="right")
        batch = Batch(c, idx, lo, hi)
        out: list[Out] = []
        for g, p in enumerate(firing.tolist()):
            a, b = batch.lo[g], batch.hi[g]
            nn, kk = int(n[p]), int(k[p])
            pct = 100.0 * kk / nn
            prof = P.PROFILES[int(c.profile[p])].code
            evidence = batch.evidence(g) | {
                "target_mgdl": targets[a:b],
                "target_kind": kinds[a:b],
                "readings_with_target": nn,
                "readings_above": kk,
                "percent_above": pct,
                "threshold_percent": P.PATTERN_ABOVE_PCT,
                "min_readings": P.PATTERN_MIN_READINGS,
                "window_days": 7,
                "profile": prof,
            }
            params = {
                "percent_above": pct,
                "readings_above": kk,
                "readings_with_target": nn,
                "threshold_percent": P.PATTERN_ABOVE_PCT,
                "min_readings": P.PATTERN_MIN_READINGS,
                "window_days": 7,
                "profile": prof,
                "source": P.PATTERN_SOURCE,
            }
            out.append(("warning", "current", evidence, "pattern_above_target", params))
        return out

    return lazy("pattern_above_target", np.flatnonzero(fire), build, True, judged(applicable, judgeable))


def fasting_pattern(c: Cohort) -> Candidates:
    """≥ 50 % of the past 7 days' fasting readings > 115 mg/dL, out of at least 4: warning (DECIDE working rule).
    Stateful; not after delivery."""
    d = derived(c)
    sub = d.fasting
    w = d.window(True, P.PATTERN_WINDOW_S)
    pos, pid = w.pos, w.pid
    high = w.value > P.FASTING_PATTERN_MGDL
    n = w.n
    k = np.bincount(pid[high], minlength=d.P)
    applicable = ~d.delivered
    judgeable = n >= P.FASTING_PATTERN_MIN_READINGS
    fire = applicable & judgeable & (k * 100 >= P.FASTING_PATTERN_PCT * n)

    def build() -> list[Out]:
        out: list[Out] = []
        b_lo, b_hi = bounds(pid, d.P)
        for p in np.flatnonzero(fire):
            idx = sub.idx[pos[b_lo[p] : b_hi[p]]]
            nn, kk = int(n[p]), int(k[p])
            pct = 100.0 * kk / nn
            evidence = readings(c, idx) | {
                "target_mgdl": P.FASTING_PATTERN_MGDL,
                "fasting_readings": nn,
                "readings_above": kk,
                "percent_above": pct,
                "threshold_percent": P.FASTING_PATTERN_PCT,
                "min_readings": P.FASTING_PATTERN_MIN_READINGS,
                "window_days": 7,
            }
            params = {
                "threshold_mgdl": P.FASTING_PATTERN_MGDL,
                "readings_above": kk,
                "fasting_readings": nn,
                "percent_above": pct,
                "threshold_percent": P.FASTING_PATTERN_PCT,
                "min_readings": P.FASTING_PATTERN_MIN_READINGS,
                "window_days": 7,
                "values_mgdl": evidence["values_mgdl"],
                "source": P.PATTERN_SOURCE,
            }
            out.append(("warning", "current", evidence, "fasting_pattern", params))
        return out

    return lazy("fasting_pattern", np.flatnonzero(fire), build, True, judged(applicable, judgeable))
