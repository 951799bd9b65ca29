"""Targets and severe highs: per-reading rules on the meter's fasting and after-meal sequences, and the ketone check.

- ``fasting_severe`` (FR profile): a fasting reading > 130 mg/dL (1.30 g/L) asks for an immediate insulin review;
- ``ketone_check``: any glycaemic reading ≥ 200 mg/dL asks for a ketone check (one episode per run, as hypos),
  unless a ketone result was sent within 2 h of the run (``ketones_high`` judges that result);
- ``fasting_above_target`` / ``postprandial_above_target``: a reading at or above the patient's target (info,
  one episode per local day);
- ``consecutive_above_target``: three or more consecutive readings of one context at or above their targets.

A reading is above target iff ``value >= target`` (guidelines say "< 95 mg/dL"); the targets and the after-meal
1 h / 2 h choice are in :mod:`alerts.profiles`. These rules open nothing for readings older than the lookback.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from alerts import profiles as P
from alerts.cohort import FLAG_INFERRED, I64, MEASUREMENT, PROFILE, B, Candidates, Cohort, record_of
from alerts.rules.build import HM, Batch, Out, candidates, date, iso, lazy
from alerts.rules.hypoglycaemia import HIGH, threshold_levels
from alerts.rules.segments import Sub, derived, episode_runs, group_days, ranges, run_starts, seg_sum

_TARGET_KIND = ("fasting", "post_1h", "post_2h")


def fasting_severe(c: Cohort) -> Candidates:
    """FR profile: a fasting reading > 130 mg/dL (1.30 g/L) asks for an immediate insulin review (urgent);
    one episode per local day. An urgent alert never rests on an inferred context alone: a day whose readings over
    the threshold were all sent without a context (their fasting context inferred from the clock) gives a warning
    whose evidence says the context was inferred (code ``fasting_severe.unconfirmed``). Even the first reading of the
    morning is no certain fasting test: a patient who skipped her waking test sends her after-breakfast one first."""
    d = derived(c)
    r = d.recent(fasting=True)
    keep = np.flatnonzero(r.value > P.FASTING_SEVERE_MGDL)
    keep = keep[c.profile[r.pid[keep]] == PROFILE["FR"]]
    idx, pid = r.idx[keep], r.pid[keep]
    order, lo, hi = group_days(pid, c.local_day[idx])
    members = idx[order]
    inferred = (c.flags[members] & FLAG_INFERRED) != 0
    any_inferred = seg_sum(inferred.astype(np.int64), lo, hi) > 0
    urgent = seg_sum((~inferred).astype(np.int64), lo, hi) > 0  # a fasting context the device stated

    def build() -> list[Out]:
        batch = Batch(c, members, lo, hi)
        out: list[Out] = []
        for g, (is_urgent, was_inferred) in enumerate(zip(urgent.tolist(), any_inferred.tolist(), strict=True)):
            a, b = batch.lo[g], batch.hi[g]
            day = date(batch.day[a])
            evidence = batch.evidence(g) | {
                "target_mgdl": P.FASTING_SEVERE_MGDL,
                "local_date": day,
                "context_inferred": was_inferred,
            }
            params = {
                "threshold_mgdl": P.FASTING_SEVERE_MGDL,
                "source": P.FASTING_SEVERE_SOURCE,
                "local_date": day,
                "readings": [batch.reading(k) for k in range(a, b)],
            }
            code = "fasting_severe"
            if not is_urgent:
                evidence["downgraded"] = "context_inferred"
                code = "fasting_severe.unconfirmed"
            out.append(("urgent" if is_urgent else "warning", f"d{day}", evidence, code, params))
        return out

    return lazy("fasting_severe", pid[order[lo]], build)


def ketone_check(c: Cohort) -> Candidates:
    """A reading ≥ 200 mg/dL: check ketones (warning); one episode per run of readings ≥ 200. Quiet when a
    ketone result was measured from 2 h before the run's first reading to 2 h after its last: the check was done
    (``ketones_high`` judges its result)."""
    d = derived(c)
    sub = d.high
    levels = threshold_levels(sub.v, -math.inf, -math.inf, P.KETONE_CHECK_MGDL, math.inf, inclusive=True)
    pos, lo, hi = episode_runs(d, sub, levels >= HIGH)
    if len(lo) == 0:
        return candidates("ketone_check", [])
    fire = np.flatnonzero(sub.t[pos][hi - 1] >= d.cutoff)
    run_pid = sub.pid[pos[lo[fire]]]
    answered = ketones_between(
        c, run_pid, sub.t[pos[lo[fire]]] - P.KETONE_ANSWER_S, sub.t[pos[hi[fire] - 1]] + P.KETONE_ANSWER_S
    )
    fire = fire[~answered]
    members, f_lo, f_hi = sub.idx[pos], lo[fire], hi[fire]

    def build() -> list[Out]:
        batch = Batch.of_ranges(c, members, f_lo, f_hi)
        out: list[Out] = []
        for g in range(len(batch)):
            a, b = batch.lo[g], batch.hi[g]
            values = batch.v[a:b]
            peak = max(values)
            k = a + values.index(peak)
            evidence = batch.evidence(g) | {
                "target_mgdl": P.KETONE_CHECK_MGDL,
                "peak_mgdl": peak,
                "peak_reading_id": batch.ids[k],
                "episode_start": batch.t[a],
                "episode_end": batch.t[b - 1],
                "max_gap_s": P.EPISODE_MAX_GAP_S,
            }
            params = {
                "threshold_mgdl": P.KETONE_CHECK_MGDL,
                "source": P.KETONE_CHECK_SOURCE,
                "count": b - a,
                "first_at": iso(batch.t[a]),
                "first_local": batch.local(a),
                "peak_mgdl": peak,
                "peak_at": iso(batch.t[k]),
                "peak_local": batch.local(k),
            }
            out.append(("warning", f"t{batch.t[a]}", evidence, "ketone_check", params))
        return out

    return lazy("ketone_check", sub.pid[pos[f_lo]], build)


def ketones_between(c: Cohort, pid: I64, start: I64, end: I64) -> B:
    """Whether patient ``pid[i]`` has a ketone result (blood or urine) measured in ``[start[i], end[i]]``: one
    search over the ketone results keyed by (patient, time)."""
    r = record_of(c)
    ketone = np.flatnonzero(r.m_kind == MEASUREMENT["ketone"])
    if len(ketone) == 0 or len(pid) == 0:
        return np.zeros(len(pid), dtype=np.bool_)
    owner = np.searchsorted(r.m_offsets, ketone, side="right") - 1
    keys = owner.astype(np.int64) * _PATIENT_STRIDE + r.m_t[ketone]  # sorted: by patient, then time
    base = pid.astype(np.int64) * _PATIENT_STRIDE
    found: B = np.searchsorted(keys, base + end, side="right") > np.searchsorted(keys, base + start)
    return found


# Patient-major keys of (patient, epoch seconds): epoch seconds stay below 2**40 for 30,000 years.
_PATIENT_STRIDE = 1 << 40


def _target_kinds(is_1h: B) -> list[str]:
    return [_TARGET_KIND[k] for k in np.where(is_1h, 1, 2).tolist()]


def _above_target_rule(c: Cohort, rule: str, fasting: bool) -> Candidates:
    """One info candidate per patient and local day holding her readings of the day at or above their targets."""
    d = derived(c)
    r = d.recent(fasting)
    above = np.flatnonzero(r.above)
    idx, pid, target, is_1h = r.idx[above], r.pid[above], r.target[above], r.is_1h[above]
    order, lo, hi = group_days(pid, c.local_day[idx])
    members, first = idx[order], pid[order[lo]]

    def build() -> list[Out]:
        ids: list[int] = c.reading_id[members].tolist()
        vals: list[float] = c.value[members].tolist()
        ts: list[int] = c.t[members].tolist()
        days: list[int] = c.local_day[members].tolist()
        dates = {day: date(day) for day in set(days)}
        hm = [HM[m] for m in c.local_minute[members].tolist()]
        at = [iso(t) for t in ts]
        wall = [f"{dates[day]} {m}" for day, m in zip(days, hm, strict=True)]
        group_days_: list[int] = c.local_day[members[lo]].tolist()
        episodes = {day: f"d{dates[day]}" for day in set(group_days_)}
        profs = [P.PROFILES[k].code for k in c.profile[first].tolist()]
        targets: list[float] = target[order].tolist()
        kinds = ["fasting"] * len(targets) if fasting else _target_kinds(is_1h[order])
        out: list[Out] = []
        append = out.append
        for a, b, day_n, prof in zip(lo.tolist(), hi.tolist(), group_days_, profs, strict=True):
            day = dates[day_n]
            if fasting:
                listed = [{"mgdl": vals[k], "at": at[k], "local": wall[k]} for k in range(a, b)]
                evidence = {
                    "reading_ids": ids[a:b],
                    "values_mgdl": vals[a:b],
                    "measured_at": ts[a:b],
                    "target_mgdl": targets[a],
                    "target_kind": "fasting",
                    "profile": prof,
                    "local_date": day,
                }
                params = {"profile": prof, "local_date": day, "target_mgdl": targets[a], "readings": listed}
            else:
                listed = [
                    {"mgdl": vals[k], "at": at[k], "local": wall[k], "target_mgdl": targets[k], "target_kind": kinds[k]}
                    for k in range(a, b)
                ]
                evidence = {
                    "reading_ids": ids[a:b],
                    "values_mgdl": vals[a:b],
                    "measured_at": ts[a:b],
                    "target_mgdl": targets[a:b],
                    "target_kind": kinds[a:b],
                    "profile": prof,
                    "local_date": day,
                }
                params = {"profile": prof, "local_date": day, "readings": listed}
            append(("info", episodes[day_n], evidence, rule, params))
        return out

    return lazy(rule, first, build)


def fasting_above_target(c: Cohort) -> Candidates:
    """A fasting meter reading at or above the patient's fasting target: info, one episode per local day."""
    return _above_target_rule(c, "fasting_above_target", fasting=True)


def postprandial_above_target(c: Cohort) -> Candidates:
    """An after-meal meter reading at or above its target (1 h or 2 h, see alerts.profiles): info, one
    episode per local day."""
    return _above_target_rule(c, "postprandial_above_target", fasting=False)


def _extend_run_back(sub: Sub, start: I64, p_of: I64, is_above: Callable[[I64, I64], B]) -> I64:
    """For runs whose first known position is ``start`` (patient ``p_of``), the true first position: walk back
    in doubling steps over the patient's earlier positions while they are all above target."""
    out = start.copy()
    seg_lo = sub.seg[p_of]
    todo = np.flatnonzero(start > seg_lo)
    step = 8
    lo_known = start.copy()
    while len(todo):
        new_lo = np.maximum(seg_lo[todo], lo_known[todo] - step)
        pos, owner = ranges(new_lo, lo_known[todo])
        above = is_above(pos, p_of[todo][owner])
        breaks = pos[~above]
        bowner = owner[~above]
        # the last break of each run (positions are sorted within each owner)
        last = np.full(len(todo), -1, dtype=np.int64)
        if len(breaks):
            is_last = np.ones(len(breaks), dtype=np.bool_)
            is_last[:-1] = bowner[1:] != bowner[:-1]
            last[bowner[is_last]] = breaks[is_last]
        found = last >= 0
        out[todo[found]] = last[found] + 1
        exhausted = ~found & (new_lo == seg_lo[todo])
        out[todo[exhausted]] = new_lo[exhausted]
        lo_known[todo] = new_lo
        todo = todo[~found & ~exhausted]
        step *= 2
    return out


def consecutive_above_target(c: Cohort) -> Candidates:
    """Three or more consecutive meter readings of the same context (fasting; after meal) at or above their
    targets, consecutive within that context's own sequence (no gap limit): warning. The run must hold a
    recent reading; episode ``"t<epoch s of its first reading>-<context>"``; code
    ``consecutive_above_target.<context>``.

    Only the recent part of each sequence is examined, plus, for a run reaching back past the cutoff, the
    earlier readings of that run (found by walking back in doubling steps)."""
    d = derived(c)
    found: list[tuple[bool, I64, I64, I64]] = []  # per context sequence: runs' start, end, patient
    for fasting in (True, False):  # the two context sequences
        sub = d.fasting if fasting else d.post

        def above_at(pos: I64, pid: I64, sub: Sub = sub, fasting: bool = fasting) -> B:
            idx = sub.idx[pos]
            if fasting:
                return np.asarray(c.value[idx] >= c.target_fasting[pid], dtype=np.bool_)
            return np.asarray(c.value[idx] >= d.post_targets(sub, pos, pid)[0], dtype=np.bool_)

        r = d.recent(fasting)
        pos, pid, above = r.pos, r.pid, r.above
        if len(pos) == 0:
            continue
        new = np.ones(len(pos), dtype=np.bool_)
        new[1:] = (pid[1:] != pid[:-1]) | ~above[:-1] | ~above[1:]
        lo, hi = run_starts(new)
        keep = above[lo]
        lo, hi = lo[keep], hi[keep]
        first_pos = pos[lo]
        p_run = pid[lo]
        # a run starting at the patient's first recent position may have begun before the cutoff
        at_window_start = (lo == 0) | (pid[np.maximum(lo - 1, 0)] != p_run)
        start = first_pos.copy()
        if at_window_start.any():
            w = np.flatnonzero(at_window_start)
            start[w] = _extend_run_back(sub, first_pos[w], p_run[w], above_at)
        end = pos[hi - 1] + 1
        fire = np.flatnonzero((end - start) >= 3)
        if len(fire) == 0:
            continue
        found.append((fasting, start[fire], end[fire], p_run[fire]))

    def build() -> list[Out]:
        out: list[Out] = []
        append = out.append
        for fasting, f_start, f_end, f_p in found:
            sub = d.sequence(fasting)
            context = "fasting" if fasting else "after_meal"
            m_pos, owner = ranges(f_start, f_end)
            m_pid = f_p[owner]
            idx = sub.idx[m_pos]
            ids: list[int] = c.reading_id[idx].tolist()
            vals: list[float] = c.value[idx].tolist()
            ts: list[int] = c.t[idx].tolist()
            if fasting:
                m_target: list[float] = c.target_fasting[m_pid].tolist()
                kinds = ["fasting"] * len(m_pos)
            else:
                tg, is_1h = d.post_targets(sub, m_pos, m_pid)
                m_target = tg.tolist()
                kinds = _target_kinds(is_1h)
            lens = f_end - f_start
            hi = np.cumsum(lens)
            lo = hi - lens
            first = idx[lo]
            since_l = [
                f"{date(day)} {HM[minute]}"
                for day, minute in zip(c.local_day[first].tolist(), c.local_minute[first].tolist(), strict=True)
            ]
            profs = [P.PROFILES[k].code for k in c.profile[f_p].tolist()]
            episode_tail = f"-{context}"
            code = f"consecutive_above_target.{context}"
            for a, b, prof, since in zip(lo.tolist(), hi.tolist(), profs, since_l, strict=True):
                targets = m_target[a:b]
                n = b - a
                evidence = {
                    "reading_ids": ids[a:b],
                    "values_mgdl": vals[a:b],
                    "measured_at": ts[a:b],
                    "target_mgdl": targets,
                    "target_kind": kinds[a:b],
                    "context": context,
                    "profile": prof,
                    "run_length": n,
                }
                params: dict[str, Any] = {
                    "count": n,
                    "context": context,
                    "profile": prof,
                    "since_at": iso(ts[a]),
                    "since_local": since,
                    "values_mgdl": vals[a:b],
                    "targets_mgdl": targets,
                }
                append(("warning", f"t{ts[a]}{episode_tail}", evidence, code, params))
        return out

    patients = np.concatenate([x[3] for x in found]) if found else np.zeros(0, dtype=np.int64)
    return lazy("consecutive_above_target", patients, build)
