"""What every rule shares: index subsets of a cohort's readings with per-patient segments, windows found by a
vectorised bisection, segment sums, run detection, and the arrays several rules derive from one cohort.

No rule loops over readings or patients in Python: they work on index subsets (``np.flatnonzero`` of a few
whole-array masks, shared through ``Cohort.cache``), per-patient windows found by a vectorised bisection (one
loop step per halving, over all patients at once), segment reductions (``np.bincount`` with weights,
``np.add.reduceat``) and run detection on sorted index arrays.

Conventions the rules share (the numbers and their sources are in :mod:`alerts.profiles`):

- readings flagged ``control_solution`` are never glucose; *glycaemic* readings are the others measured
  before the delivery local day (``local_day < delivery_day``);
- per-reading rules open nothing for readings older than ``now - lookback_s`` (``t < cutoff``); older readings
  are context only (a run that started before the cutoff keeps its episode key);
- *runs* (episodes): consecutive readings of a sequence that all meet the condition. For hypoglycaemia and
  ketones the sequence is every glycaemic reading of the patient, and a gap over 60 min also ends the run;
  the episode key is ``"t<epoch s of the run's first reading>"``, stable while later readings extend the run;
- stateful rules (time-driven, patterns, stale data) use the episode ``"current"``, set ``stateful=True``
  and ``evaluated``: the patients the rule could judge (the rule applies and the data suffice) plus those it
  no longer applies to (delivered, device gone), so that the engine resolves their open alerts (:func:`judged`);
- windows of the stateful rules are ``now - W < t <= now`` (readings in the future are ignored there).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts import profiles as P
from alerts.cohort import CONTEXT, F64, FLAG_CONTROL, FLAG_INFERRED, I8, I64, KIND, NO_DAY, B, Cohort
from telemon import meal_context

FASTING = CONTEXT["fasting"]
AFTER_MEAL = CONTEXT["after_meal"]
SMBG = KIND["smbg"]
CGM_KIND = KIND["cgm"]


def ranges(lo: I64, hi: I64) -> tuple[I64, I64]:
    """Concatenation of ``arange(lo[i], hi[i])`` and, for each element, its ``i``."""
    lens = np.maximum(hi - lo, 0)
    total = int(lens.sum())
    owner = np.repeat(np.arange(len(lo), dtype=np.int64), lens)
    if total == 0:
        return np.zeros(0, dtype=np.int64), owner
    shift = np.repeat(lo - (np.cumsum(lens) - lens), lens)
    return np.arange(total, dtype=np.int64) + shift, owner


def seg_search(key_at: Callable[[I64], npt.NDArray[Any]], lo: I64, hi: I64, x: npt.NDArray[Any], right: bool) -> I64:
    """Per segment ``[lo[i], hi[i])`` whose keys ``key_at(position)`` are sorted: the first position whose key is
    ``>= x[i]`` (``right=False``) or ``> x[i]`` (``right=True``). A vectorised bisection: one loop step per
    halving of the longest segment, each over all segments at once."""
    out = lo.astype(np.int64, copy=True)
    active = np.flatnonzero(lo < hi)
    a_lo, a_hi, a_x = out[active], hi[active].astype(np.int64), x[active]
    while len(active):
        mid = (a_lo + a_hi) >> 1
        key = key_at(mid)
        go = key <= a_x if right else key < a_x
        a_lo = np.where(go, mid + 1, a_lo)
        a_hi = np.where(go, a_hi, mid)
        still = a_lo < a_hi
        if not still.all():  # write the finished segments' answers, carry on with the others
            done = ~still
            out[active[done]] = a_lo[done]
            active, a_lo, a_hi, a_x = active[still], a_lo[still], a_hi[still], a_x[still]
    return out


def bounds(owner: I64, m: int) -> tuple[I64, I64]:
    """For a sorted owner array, each owner's [lo, hi) slice."""
    keys = np.arange(m, dtype=np.int64)
    return np.searchsorted(owner, keys).astype(np.int64), np.searchsorted(owner, keys, side="right").astype(np.int64)


def take(a: npt.NDArray[Any], i: I64, fill: Any) -> npt.NDArray[Any]:
    """``a[i]`` where ``i >= 0``, else ``fill`` (also when ``a`` is empty)."""
    if len(a) == 0:
        return np.full(len(i), fill, dtype=a.dtype)
    return np.where(i >= 0, a[np.clip(i, 0, len(a) - 1)], fill)


class Windows:
    """Ordered, non-overlapping windows ``[lo[i], hi[i])`` (``hi[i] <= lo[i + 1]``) of arrays of length ``n``:
    sums with one ``np.add.reduceat`` over the whole array (no gathering)."""

    def __init__(self, lo: I64, hi: I64, n: int) -> None:
        self.lo, self.hi, self.n = lo, hi, n
        self.ne = np.flatnonzero(lo < hi)
        bounds = np.empty(2 * len(self.ne), dtype=np.int64)
        bounds[0::2] = lo[self.ne]
        bounds[1::2] = hi[self.ne]
        if len(bounds) and bounds[-1] >= n:  # reduceat indices must be < n; the last window then runs to the end
            bounds = bounds[:-1]
        self.bounds = bounds

    def sum(self, x: npt.NDArray[Any], dtype: Any = None) -> npt.NDArray[Any]:
        out = np.zeros(len(self.lo), dtype=dtype if dtype is not None else np.add.reduce(x[:0]).dtype)
        if len(self.ne):
            out[self.ne] = np.add.reduceat(x, self.bounds, dtype=dtype)[0::2]
        return out

    def count(self, mask: B) -> npt.NDArray[np.int32]:
        """Number of True elements of each window."""
        out: npt.NDArray[np.int32] = self.sum(mask.view(np.int8), dtype=np.int32)
        return out

    def spread(self, per_window: F64) -> F64:
        """A new array of length ``n``: each window's value over its positions, 0 elsewhere."""
        ne = self.ne
        if len(ne) == 0:
            return np.zeros(self.n, dtype=np.float64)
        lo, hi = self.lo[ne], self.hi[ne]
        counts = np.empty(2 * len(ne) + 1, dtype=np.int64)
        counts[0] = lo[0]
        counts[1::2] = hi - lo
        counts[2:-1:2] = lo[1:] - hi[:-1]
        counts[-1] = self.n - hi[-1]
        values = np.zeros(len(counts), dtype=np.float64)
        values[1::2] = per_window[ne]
        return np.repeat(values, counts)


def run_starts(new_run: B) -> tuple[I64, I64]:
    """Run boundaries from a "this element starts a run" mask (``new_run[0]`` must be True): (lo, hi)."""
    lo = np.flatnonzero(new_run).astype(np.int64)
    hi = np.append(lo[1:], len(new_run)).astype(np.int64)
    return lo, hi


def seg_sum(x: npt.NDArray[Any], lo: I64, hi: I64) -> npt.NDArray[Any]:
    """Sums of ``x[lo[i]:hi[i]]`` for contiguous, ordered, non-empty runs tiling ``x`` (np.add.reduceat)."""
    if len(lo) == 0:
        return np.zeros(0, dtype=x.dtype)
    return np.add.reduceat(x, lo)


def group_days(pid: I64, day: npt.NDArray[Any]) -> tuple[I64, I64, I64]:
    """Group elements by (patient, local day): order (stable), group bounds (lo, hi) into that order."""
    key = pid.astype(np.int64) * (1 << 32) + day.astype(np.int64)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    new = np.ones(len(ks), dtype=np.bool_)
    new[1:] = ks[1:] != ks[:-1]
    lo, hi = run_starts(new) if len(ks) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    return order.astype(np.int64), lo, hi


class _Cohorted:
    """Holds its cohort weakly: the cohort caches these objects (``Cohort.cache``), and a reference cycle would
    keep every evaluated cohort alive until a full garbage collection (memory growing chunk after chunk)."""

    def __init__(self, c: Cohort) -> None:
        self._cohort = weakref.ref(c)

    @property
    def c(self) -> Cohort:
        c = self._cohort()
        if c is None:
            raise RuntimeError("the cohort of these derived arrays is gone")
        return c


class Sub(_Cohorted):
    """An index subset of the cohort's readings (sorted), with per-patient segments into it."""

    def __init__(self, c: Cohort, idx: npt.NDArray[Any]) -> None:
        super().__init__(c)
        self.idx: I64 = idx.astype(np.int64, copy=False)
        self.seg: I64 = np.searchsorted(self.idx, c.offsets).astype(np.int64)
        self._searched: dict[tuple[int, bool], I64] = {}

    @cached_property
    def pid(self) -> I64:
        return np.repeat(np.arange(self.c.n_patients, dtype=np.int64), np.diff(self.seg))

    @cached_property
    def t(self) -> I64:
        return self.c.t[self.idx]

    @cached_property
    def v(self) -> F64:
        return self.c.value[self.idx]

    def search(self, times: npt.NDArray[Any], right: bool = False, patients: I64 | None = None) -> I64:
        """Per patient (or per patient of ``patients``), the first position whose time is ``>= times[i]``
        (``> times[i]`` if ``right``)."""
        t = self.t
        lo, hi = self.seg[:-1], self.seg[1:]
        if patients is not None:
            lo, hi = lo[patients], hi[patients]
        return seg_search(lambda pos: t[pos], lo, hi, times, right)

    def search_all(self, time: int, right: bool = False) -> I64:
        """``search`` of one time for every patient (cached: several rules ask the same)."""
        key = (time, right)
        if key not in self._searched:
            self.prefetch([key])
        return self._searched[key]

    def prefetch(self, queries: Sequence[tuple[int, bool]]) -> None:
        """``search_all`` of several (time, right) at once: one bisection over all of them."""
        todo = [q for q in dict.fromkeys(queries) if q not in self._searched]
        if not todo:
            return
        n = self.c.n_patients
        k = len(todo)
        # the times are integers: "> x" is ">= x + 1"
        x = np.repeat(np.array([time + int(right) for time, right in todo], dtype=np.int64), n)
        t = self.t
        found = seg_search(lambda pos: t[pos], np.tile(self.seg[:-1], k), np.tile(self.seg[1:], k), x, right=False)
        for j, q in enumerate(todo):
            self._searched[q] = found[j * n : (j + 1) * n]

    def window(self, start_excl: npt.NDArray[Any], end_incl: npt.NDArray[Any]) -> tuple[I64, I64]:
        """Positions with ``start_excl < t <= end_incl`` per patient, and their patient: (pos, pid)."""
        return ranges(self.search(start_excl, right=True), self.search(end_incl, right=True))


class Derived(_Cohorted):
    """Arrays several rules share, computed once per cohort on first use."""

    def __init__(self, c: Cohort) -> None:
        super().__init__(c)
        self.P = c.n_patients
        self.n = len(c.t)
        self.cutoff = c.now - c.lookback_s
        self.parts: dict[tuple[Any, ...], Part] = {}

    @cached_property
    def delivered(self) -> B:
        """Delivery recorded on or before the patient's today: monitoring has ended."""
        return self.c.delivery_day <= self.c.today

    @cached_property
    def invalid_idx(self) -> I64:
        return np.flatnonzero((self.c.flags & FLAG_CONTROL) != 0).astype(np.int64)

    @cached_property
    def valid_idx(self) -> I64:
        return np.flatnonzero((self.c.flags & FLAG_CONTROL) == 0).astype(np.int64)

    @cached_property
    def nonglyc_idx(self) -> I64:
        """Readings that are not glycaemic: control solution; on/after the delivery local day; and every reading
        of a patient whose delivery has come (monitoring has ended: a late sync of readings from before the birth
        raises nothing that nobody is to act on)."""
        c = self.c
        has = np.flatnonzero(c.delivery_day != NO_DAY)
        pos, owner = ranges(c.offsets[has], c.offsets[has + 1])
        after = pos[(c.local_day[pos] >= c.delivery_day[has][owner]) | self.delivered[has][owner]]
        if len(after) == 0:
            return self.invalid_idx
        both = np.sort(np.concatenate([self.invalid_idx, after]), kind="stable")  # two sorted runs: a merge
        keep = np.ones(len(both), dtype=np.bool_)
        keep[1:] = both[1:] != both[:-1]
        return both[keep].astype(np.int64)

    def nonglyc_between(self, a: I64, b: I64) -> I64:
        """Number of non-glycaemic readings strictly between indices a < b (element-wise)."""
        ng = self.nonglyc_idx
        if len(ng) == 0:
            return np.zeros(len(a), dtype=np.int64)
        return (np.searchsorted(ng, b) - np.searchsorted(ng, a, side="right")).astype(np.int64)

    def glycaemic(self, mask: B) -> I64:
        """The glycaemic readings of a (new, writable) mask of the cohort's readings, as sorted indices."""
        mask[self.nonglyc_idx] = False
        return np.flatnonzero(mask)

    @cached_property
    def smbg(self) -> B:
        return np.asarray(self.c.kind == SMBG, dtype=np.bool_)

    @cached_property
    def context(self) -> I8:
        """The context of every reading, the inferred ones placed among the meter readings of their local day
        (telemon.meal_context: a second morning reading after the fasting one is after breakfast)."""
        c = self.c
        inferred = (c.flags & FLAG_INFERRED) != 0
        if not inferred.any():
            return c.context
        counted = self.smbg & ((c.flags & FLAG_CONTROL) == 0)
        context, _ = meal_context.day_contexts(
            c.patient_of, c.local_day, c.local_minute, counted, inferred, c.context, c.meal
        )
        return context

    @cached_property
    def fasting(self) -> Sub:
        """Glycaemic meter readings in the fasting context."""
        sub = Sub(self.c, self.glycaemic((self.context == FASTING) & self.smbg))
        now = self.c.now
        sub.prefetch(
            [(self.cutoff, False), (now - P.PATTERN_WINDOW_S, True), (now, True), (now - P.TREND_WINDOW_S, True)]
        )
        return sub

    @cached_property
    def post(self) -> Sub:
        """Glycaemic meter readings in the after-meal context."""
        sub = Sub(self.c, self.glycaemic((self.context == AFTER_MEAL) & self.smbg))
        sub.prefetch([(self.cutoff, False), (self.c.now - P.PATTERN_WINDOW_S, True), (self.c.now, True)])
        return sub

    @cached_property
    def cgm(self) -> Sub:
        """Valid CGM readings."""
        mask = self.c.kind == CGM_KIND
        mask[self.invalid_idx] = False
        sub = Sub(self.c, np.flatnonzero(mask))
        sub.prefetch([(self.c.now, True), (self.c.now - P.CGM_REVIEW_S, True)])
        return sub

    @cached_property
    def low(self) -> Sub:
        """Glycaemic readings below the highest hypoglycaemia threshold (NICE's 4.0 mmol/L floor)."""
        top = max(P.HYPO_L1_MGDL, P.HYPO_L2_MGDL, P.NICE_INSULIN_FLOOR_MGDL)
        return Sub(self.c, self.glycaemic(self.c.value < top))

    @cached_property
    def high(self) -> Sub:
        """Glycaemic readings at or above the ketone-check threshold."""
        return Sub(self.c, self.glycaemic(self.c.value >= P.KETONE_CHECK_MGDL))

    @cached_property
    def end_now(self) -> I64:
        """Per patient, the index after the last reading with ``t <= now``."""
        c = self.c
        t = c.t
        return seg_search(lambda pos: t[pos], c.offsets[:-1], c.offsets[1:], np.full(self.P, c.now), right=True)

    def post_targets(self, sub: Sub, pos: I64, pid: I64 | None = None) -> tuple[F64, B]:
        """Target and "1 h target" flag of after-meal readings at positions ``pos`` of ``sub`` (of patients
        ``pid``, when known)."""
        c = self.c
        i = sub.idx[pos]
        p = sub.pid[pos] if pid is None else pid
        return P.post_meal_target(c.minutes_after_meal[i], c.profile[p], c.target_post_1h[p], c.target_post_2h[p])

    def sequence(self, fasting: bool) -> Sub:
        """The fasting or after-meal sequence of glycaemic meter readings."""
        return self.fasting if fasting else self.post

    def recent(self, fasting: bool) -> Part:
        """The fasting or after-meal readings with ``t >= cutoff`` (shared by the per-reading target rules)."""
        key = ("recent", fasting)
        part = self.parts.get(key)
        if part is None:
            sub = self.sequence(fasting)
            part = self.parts[key] = Part(self, fasting, sub.search_all(self.cutoff), sub.seg[1:])
        return part

    def window(self, fasting: bool, seconds: int) -> Part:
        """The fasting or after-meal readings with ``now - seconds < t <= now``."""
        key = ("window", fasting, seconds)
        part = self.parts.get(key)
        if part is None:
            sub = self.sequence(fasting)
            lo = sub.search_all(self.c.now - seconds, right=True)
            hi = sub.search_all(self.c.now, right=True)
            part = self.parts[key] = Part(self, fasting, lo, hi)
        return part


class Part:
    """Per patient a range ``[lo[p], hi[p])`` of positions of the fasting or after-meal sequence: the positions
    ``pos`` (concatenated in patient order) with their patient, reading index, value, target, 1 h target flag and
    "at or above target" flag; ``n``: the number of positions of each patient."""

    def __init__(self, d: Derived, fasting: bool, lo: I64, hi: I64) -> None:
        c = d.c
        sub = d.sequence(fasting)
        pos, pid = ranges(lo, hi)
        self.pos, self.pid = pos, pid
        self.n: I64 = np.maximum(hi - lo, 0)
        self.idx: I64 = sub.idx[pos]
        self.value: F64 = c.value[self.idx]
        if fasting:
            self.target: F64 = c.target_fasting[pid]
            self.is_1h: B = np.zeros(len(pos), dtype=np.bool_)
        else:
            self.target, self.is_1h = d.post_targets(sub, pos, pid)
        self.above: B = np.asarray(self.value >= self.target, dtype=np.bool_)


def derived(c: Cohort) -> Derived:
    d = c.cache.get("derived")
    if not isinstance(d, Derived):
        d = Derived(c)
        c.cache["derived"] = d
    return d


def episode_runs(d: Derived, sub: Sub, sel: B) -> tuple[I64, I64, I64]:
    """Runs among the readings ``sub.idx[sel]`` (all meeting a condition): a new run starts at another patient,
    after a gap over 60 min, or when a glycaemic reading not meeting the condition lies in between.
    Returns the selected positions of ``sub`` and the runs' (lo, hi) into them."""
    pos = np.flatnonzero(sel).astype(np.int64)
    if len(pos) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return pos, empty, empty
    idx = sub.idx[pos]
    pid = sub.pid[pos]
    t = sub.t[pos]
    new = np.ones(len(pos), dtype=np.bool_)
    new[1:] = (pid[1:] != pid[:-1]) | ((t[1:] - t[:-1]) > P.EPISODE_MAX_GAP_S)
    # pairs that would continue a run but have readings in between: a run breaks at a glycaemic one
    k = np.flatnonzero(~new[1:] & (idx[1:] - idx[:-1] > 1))
    if len(k):
        a, b = idx[k], idx[k + 1]
        new[k + 1] = (b - a - 1) != d.nonglyc_between(a, b)
    lo, hi = run_starts(new)
    return pos, lo, hi


def judged(applicable: B, judgeable: B) -> B:
    """Patients a stateful rule judged: those it applies to with enough data, and those it no longer applies to
    (so that their open alerts resolve)."""
    out: B = ~applicable | judgeable
    return out
