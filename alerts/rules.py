"""The alert rules: pure, vectorised functions from a :class:`~alerts.cohort.Cohort` to :class:`Candidates`.

No rule loops over readings or patients in Python: they work on index subsets (``np.flatnonzero`` of a few
whole-array masks, shared through ``Cohort.cache``), per-patient windows found by a vectorised bisection (one
loop step per halving, over all patients at once), segment reductions (``np.bincount`` with weights,
``np.add.reduceat``) and run detection on sorted index arrays. Only the few candidates are turned into
messages and evidence with a Python loop.

Shared conventions (see DESIGN §3 and telemon issue 4; the numbers and their sources are in
:mod:`alerts.profiles`):

- readings flagged ``control_solution`` are never glucose; *glycaemic* readings are the others measured
  before the delivery local day (``local_day < delivery_day``);
- per-reading rules (``hypo_*``, ``fasting_severe``, ``ketone_check``, ``*_above_target``,
  ``consecutive_above_target``) open nothing for readings older than ``now - lookback_s`` (``t < cutoff``);
  older readings are context only (a run that started before the cutoff keeps its episode key);
- *runs* (episodes): consecutive readings of a sequence that all meet the condition. For hypoglycaemia and
  ketones the sequence is every glycaemic reading of the patient, and a gap over 60 min also ends the run;
  the episode key is ``"t<epoch s of the run's first reading>"``, stable while later readings extend the run;
- stateful rules (time-driven, patterns, stale data) use the episode ``"current"``, set ``stateful=True``
  and ``evaluated``: the patients the rule could judge (the rule applies and the data suffice) plus those it
  no longer applies to (delivered, device gone), so that the engine resolves their open alerts;
- windows of the stateful rules are ``now - W < t <= now`` (readings in the future are ignored there).
"""

from __future__ import annotations

import datetime as dt
import gc
import math
import weakref
from collections.abc import Callable, Iterable, Sequence
from functools import cached_property, lru_cache, wraps
from typing import Any

import numpy as np
import numpy.typing as npt

from alerts import profiles as P
from alerts.cohort import (
    CONTEXT,
    DEVICE_CGM,
    DEVICE_METER,
    F64,
    FLAG_CONTROL,
    FLAG_INFERRED,
    I8,
    I64,
    KIND,
    NO_DAY,
    PROFILE,
    TREATMENT,
    B,
    Candidates,
    Cohort,
    Columns,
)
from telemon import meal_context

Rule = Callable[[Cohort], Candidates]

_FASTING = CONTEXT["fasting"]
_AFTER_MEAL = CONTEXT["after_meal"]
_SMBG = KIND["smbg"]
_CGM = KIND["cgm"]
_EPOCH = dt.date(1970, 1, 1)

# ---------------------------------------------------------------------------------------------------------------
# Nightscout-compatible building blocks
# ---------------------------------------------------------------------------------------------------------------

URGENT_LOW, LOW, IN_RANGE, HIGH, URGENT_HIGH = -2, -1, 0, 1, 2


def threshold_levels(
    values: npt.ArrayLike,
    urgent_low: float,
    low: float,
    high: float,
    urgent_high: float,
    inclusive: bool = False,
) -> I8:
    """Classify values: -2 urgent low, -1 low, 0 in range, 1 high, 2 urgent high (NaN: 0).

    ``inclusive=False`` compares strictly (``v < low``, ``v > high``), as Nightscout's simplealarms plugin
    does (``lastSGV > bg_high`` → urgent high, ``> bg_target_top`` → high, ``< bg_low`` → urgent low,
    ``< bg_target_bottom`` → low): with 55/80/180/260 this gives Nightscout's alarm levels. ``inclusive=True``
    counts a value equal to a threshold as out of range (``v <= low``, ``v >= high``). Nightscout checks the
    high side first, so a value that is both (absurd thresholds) is high here too.
    """
    v = np.asarray(values, dtype=np.float64)
    out = np.zeros(v.shape, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        if inclusive:
            out[v <= low] = LOW
            out[v <= urgent_low] = URGENT_LOW
            out[v >= high] = HIGH
            out[v >= urgent_high] = URGENT_HIGH
        else:
            out[v < low] = LOW
            out[v < urgent_low] = URGENT_LOW
            out[v > high] = HIGH
            out[v > urgent_high] = URGENT_HIGH
    return out


def ar2_points(mean_now: F64, mean_5min_ago: F64) -> F64:
    """Nightscout's AR2 forecast (lib/plugins/ar2.js): ``AR2_STEPS`` points, 5, 10, ... min after the last
    reading, in whole mg/dL: the AR(2) model ``y[k+1] = -0.723 y[k-1] + 1.716 y[k]`` on ``y = ln(bg / 140)``,
    each point ``Math.round(140 e^y)`` clamped to [36, 400]. Arrays of shape (m,) in, (m, 6) out; rows whose
    inputs cannot be forecast (non-positive 5-min-ago value) are NaN."""
    a0, a1 = P.AR2_COEFFICIENTS
    ok = (mean_5min_ago > 0) & (mean_now > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        prev = np.log(np.where(ok, mean_5min_ago, np.nan) / P.AR2_BG_REF)
        curr = np.log(np.where(ok, mean_now, np.nan) / P.AR2_BG_REF)
        out = np.empty((len(mean_now), P.AR2_STEPS), dtype=np.float64)
        for step in range(P.AR2_STEPS):  # forecast steps, not readings
            prev, curr = curr, a0 * prev + a1 * curr
            # JavaScript's Math.round rounds half up; x + 0.5 is exact for these magnitudes.
            out[:, step] = np.clip(np.floor(P.AR2_BG_REF * np.exp(curr) + 0.5), P.AR2_BG_MIN, P.AR2_BG_MAX)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Vectorised helpers
# ---------------------------------------------------------------------------------------------------------------


def _ranges(lo: I64, hi: I64) -> tuple[I64, I64]:
    """Concatenation of ``arange(lo[i], hi[i])`` and, for each element, its ``i``."""
    lens = np.maximum(hi - lo, 0)
    total = int(lens.sum())
    owner = np.repeat(np.arange(len(lo), dtype=np.int64), lens)
    if total == 0:
        return np.zeros(0, dtype=np.int64), owner
    shift = np.repeat(lo - (np.cumsum(lens) - lens), lens)
    return np.arange(total, dtype=np.int64) + shift, owner


def _seg_search(key_at: Callable[[I64], npt.NDArray[Any]], lo: I64, hi: I64, x: npt.NDArray[Any], right: bool) -> I64:
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


def _bounds(owner: I64, m: int) -> tuple[I64, I64]:
    """For a sorted owner array, each owner's [lo, hi) slice."""
    keys = np.arange(m, dtype=np.int64)
    return np.searchsorted(owner, keys).astype(np.int64), np.searchsorted(owner, keys, side="right").astype(np.int64)


def _take(a: npt.NDArray[Any], i: I64, fill: Any) -> npt.NDArray[Any]:
    """``a[i]`` where ``i >= 0``, else ``fill`` (also when ``a`` is empty)."""
    if len(a) == 0:
        return np.full(len(i), fill, dtype=a.dtype)
    return np.where(i >= 0, a[np.clip(i, 0, len(a) - 1)], fill)


class _Windows:
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


def _run_starts(new_run: B) -> tuple[I64, I64]:
    """Run boundaries from a "this element starts a run" mask (``new_run[0]`` must be True): (lo, hi)."""
    lo = np.flatnonzero(new_run).astype(np.int64)
    hi = np.append(lo[1:], len(new_run)).astype(np.int64)
    return lo, hi


def _seg_sum(x: npt.NDArray[Any], lo: I64, hi: I64) -> npt.NDArray[Any]:
    """Sums of ``x[lo[i]:hi[i]]`` for contiguous, ordered, non-empty runs tiling ``x`` (np.add.reduceat)."""
    if len(lo) == 0:
        return np.zeros(0, dtype=x.dtype)
    return np.add.reduceat(x, lo)


def _group_days(pid: I64, day: npt.NDArray[Any]) -> tuple[I64, I64, I64]:
    """Group elements by (patient, local day): order (stable), group bounds (lo, hi) into that order."""
    key = pid.astype(np.int64) * (1 << 32) + day.astype(np.int64)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    new = np.ones(len(ks), dtype=np.bool_)
    new[1:] = ks[1:] != ks[:-1]
    lo, hi = _run_starts(new) if len(ks) else (np.zeros(0, np.int64), np.zeros(0, np.int64))
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


class _Sub(_Cohorted):
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
        return _seg_search(lambda pos: t[pos], lo, hi, times, right)

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
        found = _seg_search(lambda pos: t[pos], np.tile(self.seg[:-1], k), np.tile(self.seg[1:], k), x, right=False)
        for j, q in enumerate(todo):
            self._searched[q] = found[j * n : (j + 1) * n]

    def window(self, start_excl: npt.NDArray[Any], end_incl: npt.NDArray[Any]) -> tuple[I64, I64]:
        """Positions with ``start_excl < t <= end_incl`` per patient, and their patient: (pos, pid)."""
        return _ranges(self.search(start_excl, right=True), self.search(end_incl, right=True))


class _Derived(_Cohorted):
    """Arrays several rules share, computed once per cohort on first use."""

    def __init__(self, c: Cohort) -> None:
        super().__init__(c)
        self.P = c.n_patients
        self.n = len(c.t)
        self.cutoff = c.now - c.lookback_s
        self.parts: dict[tuple[Any, ...], _Part] = {}

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
        """Readings that are not glycaemic: control solution, or on/after the delivery local day."""
        c = self.c
        has = np.flatnonzero(c.delivery_day != NO_DAY)
        pos, owner = _ranges(c.offsets[has], c.offsets[has + 1])
        after = pos[c.local_day[pos] >= c.delivery_day[has][owner]]
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
        return np.asarray(self.c.kind == _SMBG, dtype=np.bool_)

    @cached_property
    def placed(self) -> tuple[I8, B]:
        """The context of every reading, the inferred ones placed among the meter readings of their local day
        (telemon.meal_context: a second morning reading after the fasting one is after breakfast), and which
        inferred fasting readings are uncertain (not the first meter reading of their day)."""
        c = self.c
        inferred = (c.flags & FLAG_INFERRED) != 0
        if not inferred.any():
            return c.context, np.zeros(self.n, dtype=np.bool_)
        counted = self.smbg & ((c.flags & FLAG_CONTROL) == 0)
        context, _, uncertain = meal_context.day_contexts(
            c.patient_of, c.local_day, c.local_minute, counted, inferred, c.context, c.meal
        )
        return context, uncertain

    @cached_property
    def context(self) -> I8:
        return self.placed[0]

    @cached_property
    def fasting(self) -> _Sub:
        """Glycaemic meter readings in the fasting context."""
        sub = _Sub(self.c, self.glycaemic((self.context == _FASTING) & self.smbg))
        now = self.c.now
        sub.prefetch(
            [(self.cutoff, False), (now - P.PATTERN_WINDOW_S, True), (now, True), (now - P.TREND_WINDOW_S, True)]
        )
        return sub

    @cached_property
    def post(self) -> _Sub:
        """Glycaemic meter readings in the after-meal context."""
        sub = _Sub(self.c, self.glycaemic((self.context == _AFTER_MEAL) & self.smbg))
        sub.prefetch([(self.cutoff, False), (self.c.now - P.PATTERN_WINDOW_S, True), (self.c.now, True)])
        return sub

    @cached_property
    def cgm(self) -> _Sub:
        """Valid CGM readings."""
        mask = self.c.kind == _CGM
        mask[self.invalid_idx] = False
        sub = _Sub(self.c, np.flatnonzero(mask))
        sub.prefetch([(self.c.now, True), (self.c.now - P.CGM_REVIEW_S, True)])
        return sub

    @cached_property
    def low(self) -> _Sub:
        """Glycaemic readings below the highest hypoglycaemia threshold (NICE's 4.0 mmol/L floor)."""
        top = max(P.HYPO_L1_MGDL, P.HYPO_L2_MGDL, P.NICE_INSULIN_FLOOR_MGDL)
        return _Sub(self.c, self.glycaemic(self.c.value < top))

    @cached_property
    def high(self) -> _Sub:
        """Glycaemic readings at or above the ketone-check threshold."""
        return _Sub(self.c, self.glycaemic(self.c.value >= P.KETONE_CHECK_MGDL))

    @cached_property
    def end_now(self) -> I64:
        """Per patient, the index after the last reading with ``t <= now``."""
        c = self.c
        t = c.t
        return _seg_search(lambda pos: t[pos], c.offsets[:-1], c.offsets[1:], np.full(self.P, c.now), right=True)

    def post_targets(self, sub: _Sub, pos: I64, pid: I64 | None = None) -> tuple[F64, B]:
        """Target and "1 h target" flag of after-meal readings at positions ``pos`` of ``sub`` (of patients
        ``pid``, when known)."""
        c = self.c
        i = sub.idx[pos]
        p = sub.pid[pos] if pid is None else pid
        return P.post_meal_target(c.minutes_after_meal[i], c.profile[p], c.target_post_1h[p], c.target_post_2h[p])

    def sequence(self, fasting: bool) -> _Sub:
        """The fasting or after-meal sequence of glycaemic meter readings."""
        return self.fasting if fasting else self.post

    def recent(self, fasting: bool) -> _Part:
        """The fasting or after-meal readings with ``t >= cutoff`` (shared by the per-reading target rules)."""
        key = ("recent", fasting)
        part = self.parts.get(key)
        if part is None:
            sub = self.sequence(fasting)
            part = self.parts[key] = _Part(self, fasting, sub.search_all(self.cutoff), sub.seg[1:])
        return part

    def window(self, fasting: bool, seconds: int) -> _Part:
        """The fasting or after-meal readings with ``now - seconds < t <= now``."""
        key = ("window", fasting, seconds)
        part = self.parts.get(key)
        if part is None:
            sub = self.sequence(fasting)
            lo = sub.search_all(self.c.now - seconds, right=True)
            hi = sub.search_all(self.c.now, right=True)
            part = self.parts[key] = _Part(self, fasting, lo, hi)
        return part


class _Part:
    """Per patient a range ``[lo[p], hi[p])`` of positions of the fasting or after-meal sequence: the positions
    ``pos`` (concatenated in patient order) with their patient, reading index, value, target, 1 h target flag and
    "at or above target" flag; ``n``: the number of positions of each patient."""

    def __init__(self, d: _Derived, fasting: bool, lo: I64, hi: I64) -> None:
        c = d.c
        sub = d.sequence(fasting)
        pos, pid = _ranges(lo, hi)
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


def _derived(c: Cohort) -> _Derived:
    d = c.cache.get("derived")
    if not isinstance(d, _Derived):
        d = _Derived(c)
        c.cache["derived"] = d
    return d


# ---------------------------------------------------------------------------------------------------------------
# Messages and evidence (built per candidate, from Python lists made once per rule)
# ---------------------------------------------------------------------------------------------------------------

_HM = [f"{m // 60:02d}:{m % 60:02d}" for m in range(1440)]


class _Formatted(dict[float, str]):
    """Glucose values in mg/dL formatted for messages, memoised (``_MG[v]``: one C-level lookup when known)."""

    def __init__(self, decimal: str) -> None:
        super().__init__()
        self.decimal = decimal

    def __missing__(self, value: float) -> str:
        r = round(value)
        s = f"{r:d}" if abs(value - r) < 0.05 else f"{value:.1f}".replace(".", self.decimal)
        if len(self) < 100_000:
            self[value] = s
        return s


_MG = _Formatted(".")
_MG_FR = _Formatted(",")


def _mg(value: float) -> str:
    """A glucose value in mg/dL for a message: whole when it is, else one decimal (95.5 for 5.3 mmol/L)."""
    return _MG[value]


def _mg_fr(value: float) -> str:
    return _MG_FR[value]


def _num(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def _num_fr(value: float, digits: int = 1) -> str:
    return _num(value, digits).replace(".", ",")


@lru_cache(maxsize=8192)
def _date(day: int) -> str:
    return (_EPOCH + dt.timedelta(days=day)).isoformat()


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


class _Batch:
    """The readings of many candidates as Python lists: ``members`` concatenated, candidate ``g`` holding
    ``[lo[g], hi[g])``. Converting once per rule keeps numpy scalars out of the per-candidate loop."""

    def __init__(self, c: Cohort, members: I64, lo: I64, hi: I64) -> None:
        self.members = members
        self.ids: list[int] = c.reading_id[members].tolist()
        self.v: list[float] = c.value[members].tolist()
        self.t: list[int] = c.t[members].tolist()
        self.day: list[int] = c.local_day[members].tolist()
        self.minute: list[int] = c.local_minute[members].tolist()
        self.lo: list[int] = lo.tolist()
        self.hi: list[int] = hi.tolist()

    @classmethod
    def of_ranges(cls, c: Cohort, idx: I64, lo: I64, hi: I64) -> _Batch:
        """Candidates holding ``idx[lo[g]:hi[g]]``."""
        pos, _ = _ranges(lo, hi)
        lens = hi - lo
        new_hi = np.cumsum(lens)
        return cls(c, idx[pos], new_hi - lens, new_hi)

    def __len__(self) -> int:
        return len(self.lo)

    def evidence(self, g: int) -> dict[str, Any]:
        a, b = self.lo[g], self.hi[g]
        return {"reading_ids": self.ids[a:b], "values_mgdl": self.v[a:b], "measured_at": self.t[a:b]}

    def when(self, k: int) -> str:
        """Local date and time of the k-th member."""
        return f"{_date(self.day[k])} {_HM[self.minute[k]]}"

    def whens(self) -> list[str]:
        """Local date and time of every member."""
        hm = _HM
        return [f"{_date(d)} {hm[m]}" for d, m in zip(self.day, self.minute, strict=True)]

    def hm(self, k: int) -> str:
        return _HM[self.minute[k]]


def _readings(c: Cohort, idx: npt.NDArray[Any]) -> dict[str, Any]:
    """The reading part of an evidence dict (JSON-ready)."""
    return {
        "reading_ids": c.reading_id[idx].tolist(),
        "values_mgdl": c.value[idx].tolist(),
        "measured_at": c.t[idx].tolist(),
    }


def _when(c: Cohort, i: int) -> str:
    """Local date and time of reading ``i``."""
    return f"{_date(int(c.local_day[i]))} {_HM[int(c.local_minute[i])]}"


def _hm(c: Cohort, i: int) -> str:
    return _HM[int(c.local_minute[i])]


_NO_READINGS: dict[str, Any] = {"reading_ids": [], "values_mgdl": [], "measured_at": []}

_Row = tuple[int, str, str, dict[str, Any], str, str]  # patient, severity, episode, evidence, en, fr
_Out = tuple[str, str, dict[str, Any], str, str]  # severity, episode, evidence, en, fr (the patient is known)


def _candidates(rule: str, rows: Sequence[_Row], stateful: bool = False, evaluated: B | None = None) -> Candidates:
    return Candidates(
        rule=rule,
        patient=np.array([r[0] for r in rows], dtype=np.int64),
        severity=[r[1] for r in rows],
        episode=[r[2] for r in rows],
        evidence=[r[3] for r in rows],
        message_en=[r[4] for r in rows],
        message_fr=[r[5] for r in rows],
        stateful=stateful,
        evaluated=evaluated if evaluated is not None else np.zeros(0, dtype=np.bool_),
    )


def _lazy(
    rule: str,
    patient: npt.NDArray[Any],
    build: Callable[[], list[_Out]],
    stateful: bool = False,
    evaluated: B | None = None,
) -> Candidates:
    """Candidates whose evidence and messages ``build`` makes (one row per patient, in order) when first read."""

    def columns() -> Columns:
        paused = gc.isenabled()
        gc.disable()  # many small dicts and lists: see evaluate()
        try:
            rows = build() if len(patient) else []
        finally:
            if paused:
                gc.enable()
        if not rows:
            return [], [], [], [], []
        severity, episode, evidence, en, fr = zip(*rows, strict=True)
        return list(severity), list(episode), list(evidence), list(en), list(fr)

    return Candidates(rule, np.asarray(patient, dtype=np.int64), stateful=stateful, evaluated=evaluated, build=columns)


# ---------------------------------------------------------------------------------------------------------------
# Hypoglycaemia and ketones: runs over all glycaemic readings
# ---------------------------------------------------------------------------------------------------------------


def _episode_runs(d: _Derived, sub: _Sub, sel: B) -> tuple[I64, I64, I64]:
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
    lo, hi = _run_starts(new)
    return pos, lo, hi


_HYPO_TEXT = {
    "hypo_l2": (
        "Level 2 hypoglycaemia",
        "Hypoglycémie de niveau 2",
        "ADA level 2: below 54 mg/dL (3.0 mmol/L)",
        "ADA niveau 2 : sous 54 mg/dL (3,0 mmol/L)",
        "urgent",
    ),
    "hypo_l1": (
        "Level 1 hypoglycaemia",
        "Hypoglycémie de niveau 1",
        "ADA level 1: 54 to 69 mg/dL (3.0–3.9 mmol/L)",
        "ADA niveau 1 : de 54 à 69 mg/dL (3,0–3,9 mmol/L)",
        "warning",
    ),
    "hypo_insulin_floor": (
        "Below the glucose floor on insulin",
        "Sous le seuil glycémique sous insuline",
        "NICE NG3: on insulin, keep glucose above 4.0 mmol/L (72.1 mg/dL)",
        "NICE NG3 : sous insuline, garder la glycémie au-dessus de 4,0 mmol/L (72,1 mg/dL)",
        "warning",
    ),
}


def _hypo(c: Cohort, rule: str, threshold: float, below: float, patients: B | None) -> Candidates:
    """Runs of glycaemic readings < ``threshold`` that hold a recent reading and no recent reading < ``below``
    (the more severe rule covers those); only ``patients`` when given."""
    d = _derived(c)
    sub = d.low
    # urgent_low = below, low = threshold: which readings lie under each (strictly, as ADA's "<").
    levels = threshold_levels(sub.v, below, threshold, math.inf, math.inf)
    sel = levels <= LOW
    if patients is not None:
        sel &= patients[sub.pid]
    pos, lo, hi = _episode_runs(d, sub, sel)
    if len(lo) == 0:
        return _candidates(rule, [])
    recent = sub.t[pos] >= d.cutoff
    worse = (recent & (levels[pos] == URGENT_LOW)).astype(np.int64)
    fire = np.flatnonzero(recent[hi - 1] & (_seg_sum(worse, lo, hi) == 0))
    members, f_lo, f_hi = sub.idx[pos], lo[fire], hi[fire]

    def build() -> list[_Out]:
        batch = _Batch.of_ranges(c, members, f_lo, f_hi)
        title_en, title_fr, why_en, why_fr, severity = _HYPO_TEXT[rule]
        head_en = f"{title_en}: "
        head_fr = f"{title_fr} : "
        below_en, below_fr = f"below {_mg(threshold)} mg/dL", f"sous {_mg_fr(threshold)} mg/dL"
        tail_en, tail_fr = f" ({why_en}). Rule {rule}.", f" ({why_fr}). Règle {rule}."
        ids, vs, ts, days, minutes = batch.ids, batch.v, batch.t, batch.day, batch.minute
        dates = {day: _date(day) for day in set(days)}
        hm = _HM
        gap = P.EPISODE_MAX_GAP_S
        out: list[_Out] = []
        append = out.append
        for a, b in zip(batch.lo, batch.hi, strict=True):
            n = b - a
            if n == 1:
                nadir = vs[a]
                k = a
                wk = f"{dates[days[a]]} {hm[minutes[a]]}"
                span_en = f"1 reading {below_en} at {wk}"
                span_fr = f"1 mesure {below_fr} le {wk}"
            else:
                values = vs[a:b]
                nadir = min(values)
                k = a + values.index(nadir)
                wa = f"{dates[days[a]]} {hm[minutes[a]]}"
                wb = f"{dates[days[b - 1]]} {hm[minutes[b - 1]]}"
                wk = f"{dates[days[k]]} {hm[minutes[k]]}"
                span_en = f"{n} readings {below_en} from {wa} to {wb}"
                span_fr = f"{n} mesures {below_fr} du {wa} au {wb}"
            ta = ts[a]
            evidence = {
                "reading_ids": ids[a:b],
                "values_mgdl": vs[a:b],
                "measured_at": ts[a:b],
                "target_mgdl": threshold,
                "nadir_mgdl": nadir,
                "nadir_reading_id": ids[k],
                "episode_start": ta,
                "episode_end": ts[b - 1],
                "max_gap_s": gap,
            }
            en = f"{head_en}{span_en}, lowest {_MG[nadir]} mg/dL at {wk}{tail_en}"
            fr = f"{head_fr}{span_fr}, la plus basse {_MG_FR[nadir]} mg/dL le {wk}{tail_fr}"
            append((severity, f"t{ta}", evidence, en, fr))
        return out

    return _lazy(rule, sub.pid[pos[f_lo]], build)


def hypo_l2(c: Cohort) -> Candidates:
    """A reading < 54 mg/dL (ADA level 2): urgent; one episode per run of readings < 54."""
    return _hypo(c, "hypo_l2", P.HYPO_L2_MGDL, -math.inf, None)


def hypo_l1(c: Cohort) -> Candidates:
    """A reading ≥ 54 and < 70 mg/dL (ADA level 1): warning; one episode per run of readings < 70 that holds
    no recent level-2 reading (hypo_l2 covers that episode)."""
    return _hypo(c, "hypo_l1", P.HYPO_L1_MGDL, P.HYPO_L2_MGDL, None)


def hypo_insulin_floor(c: Cohort) -> Candidates:
    """NICE profile, on insulin: a reading < 4.0 mmol/L (72.06 mg/dL) and ≥ 70 mg/dL, not already hypo
    (a run of readings < 72.06 with no recent reading < 70)."""
    patients = (c.profile == PROFILE["NICE"]) & (c.treatment == TREATMENT["insulin"])
    return _hypo(c, "hypo_insulin_floor", P.NICE_INSULIN_FLOOR_MGDL, P.HYPO_L1_MGDL, patients)


def ketone_check(c: Cohort) -> Candidates:
    """A reading ≥ 200 mg/dL: check ketones (warning); one episode per run of readings ≥ 200."""
    d = _derived(c)
    sub = d.high
    levels = threshold_levels(sub.v, -math.inf, -math.inf, P.KETONE_CHECK_MGDL, math.inf, inclusive=True)
    pos, lo, hi = _episode_runs(d, sub, levels >= HIGH)
    if len(lo) == 0:
        return _candidates("ketone_check", [])
    fire = np.flatnonzero(sub.t[pos][hi - 1] >= d.cutoff)
    members, f_lo, f_hi = sub.idx[pos], lo[fire], hi[fire]

    def build() -> list[_Out]:
        batch = _Batch.of_ranges(c, members, f_lo, f_hi)
        out: list[_Out] = []
        for g in range(len(batch)):
            a, b = batch.lo[g], batch.hi[g]
            values = batch.v[a:b]
            peak = max(values)
            k = a + values.index(peak)
            n = b - a
            evidence = batch.evidence(g) | {
                "target_mgdl": P.KETONE_CHECK_MGDL,
                "peak_mgdl": peak,
                "peak_reading_id": batch.ids[k],
                "episode_start": batch.t[a],
                "episode_end": batch.t[b - 1],
                "max_gap_s": P.EPISODE_MAX_GAP_S,
            }
            en = (
                f"Glucose at or above 200 mg/dL: {_plural(n, 'reading', 'readings')} from {batch.when(a)}, "
                f"highest {_mg(peak)} mg/dL at {batch.when(k)}. Check for ketones (threshold ≥ 200 mg/dL). "
                f"Rule ketone_check."
            )
            fr = (
                f"Glycémie supérieure ou égale à 200 mg/dL : {_plural(n, 'mesure', 'mesures')} depuis le "
                f"{batch.when(a)}, la plus haute {_mg_fr(peak)} mg/dL le {batch.when(k)}. Rechercher une cétose "
                f"(seuil ≥ 200 mg/dL). Règle ketone_check."
            )
            out.append(("warning", f"t{batch.t[a]}", evidence, en, fr))
        return out

    return _lazy("ketone_check", sub.pid[pos[f_lo]], build)


# ---------------------------------------------------------------------------------------------------------------
# Targets: per-reading rules on the meter's fasting and after-meal sequences
# ---------------------------------------------------------------------------------------------------------------


def fasting_severe(c: Cohort) -> Candidates:
    """FR profile: a fasting reading > 130 mg/dL (1.30 g/L) asks for an immediate insulin review (urgent);
    one episode per local day. An urgent alert never rests on an inferred context alone (DESIGN §3): a day whose
    readings are all inferred fasting without certainty (an earlier meter reading that day) gives a warning whose
    evidence says the context was inferred."""
    d = _derived(c)
    r = d.recent(fasting=True)
    keep = np.flatnonzero(r.value > P.FASTING_SEVERE_MGDL)
    keep = keep[c.profile[r.pid[keep]] == PROFILE["FR"]]
    idx, pid = r.idx[keep], r.pid[keep]
    order, lo, hi = _group_days(pid, c.local_day[idx])
    members = idx[order]
    inferred = (c.flags[members] & FLAG_INFERRED) != 0
    sure = ~d.placed[1][members]
    any_inferred = _seg_sum(inferred.astype(np.int64), lo, hi) > 0
    urgent = _seg_sum(sure.astype(np.int64), lo, hi) > 0

    def build() -> list[_Out]:
        batch = _Batch(c, members, lo, hi)
        out: list[_Out] = []
        for g, (is_urgent, was_inferred) in enumerate(zip(urgent.tolist(), any_inferred.tolist(), strict=True)):
            a, b = batch.lo[g], batch.hi[g]
            day = _date(batch.day[a])
            vals_en = ", ".join(f"{_mg(batch.v[k])} mg/dL at {batch.hm(k)}" for k in range(a, b))
            vals_fr = ", ".join(f"{_mg_fr(batch.v[k])} mg/dL à {batch.hm(k)}" for k in range(a, b))
            evidence = batch.evidence(g) | {
                "target_mgdl": P.FASTING_SEVERE_MGDL,
                "local_date": day,
                "context_inferred": was_inferred,
            }
            if is_urgent:
                en = (
                    f"Severe fasting hyperglycaemia on {day}: {vals_en}, above 130 mg/dL (1.30 g/L). "
                    f"Insulin treatment to review now (CNGOF/SFD 2010). Rule fasting_severe."
                )
                fr = (
                    f"Hyperglycémie à jeun sévère le {day} : {vals_fr}, au-dessus de 130 mg/dL (1,30 g/L). "
                    f"Insulinothérapie à revoir sans attendre (CNGOF/SFD 2010). Règle fasting_severe."
                )
            else:
                evidence["downgraded"] = "context_inferred"
                en = (
                    f"Possible severe fasting hyperglycaemia on {day}: {vals_en}, above 130 mg/dL (1.30 g/L), "
                    f"sent without a context and taken as fasting from the time of day, after an earlier reading "
                    f"that day: confirm it was fasting (CNGOF/SFD 2010). Rule fasting_severe."
                )
                fr = (
                    f"Possible hyperglycémie à jeun sévère le {day} : {vals_fr}, au-dessus de 130 mg/dL (1,30 g/L), "
                    f"envoyée sans contexte et considérée à jeun d'après l'heure, après une autre mesure ce jour-là : "
                    f"vérifier qu'elle était à jeun (CNGOF/SFD 2010). Règle fasting_severe."
                )
            out.append(("urgent" if is_urgent else "warning", f"d{day}", evidence, en, fr))
        return out

    return _lazy("fasting_severe", pid[order[lo]], build)


_TARGET_KIND = ("fasting", "post_1h", "post_2h")
_TARGET_LABEL_EN = {"fasting": "fasting target", "post_1h": "1 h target", "post_2h": "2 h target"}
_TARGET_LABEL_FR = {"fasting": "cible à jeun", "post_1h": "cible à 1 h", "post_2h": "cible à 2 h"}


def _target_kinds(fasting: bool, is_1h: B) -> list[str]:
    if fasting:
        return ["fasting"] * len(is_1h)
    return [_TARGET_KIND[k] for k in np.where(is_1h, 1, 2).tolist()]


def _above_target_rule(c: Cohort, rule: str, fasting: bool) -> Candidates:
    d = _derived(c)
    r = d.recent(fasting)
    above = np.flatnonzero(r.above)
    idx, pid, target, is_1h = r.idx[above], r.pid[above], r.target[above], r.is_1h[above]
    order, lo, hi = _group_days(pid, c.local_day[idx])
    members, first = idx[order], pid[order[lo]]

    def build() -> list[_Out]:
        ids: list[int] = c.reading_id[members].tolist()
        vals: list[float] = c.value[members].tolist()
        ts: list[int] = c.t[members].tolist()
        hm = [_HM[m] for m in c.local_minute[members].tolist()]
        group_days: list[int] = c.local_day[members[lo]].tolist()
        dates = {day: _date(day) for day in set(group_days)}
        episodes = {day: f"d{date}" for day, date in dates.items()}
        profs = [P.PROFILES[k] for k in c.profile[first].tolist()]
        targets: list[float] = target[order].tolist()
        out: list[_Out] = []
        append = out.append
        if fasting:
            for a, b, day_n, prof in zip(lo.tolist(), hi.tolist(), group_days, profs, strict=True):
                day = dates[day_n]
                if b - a == 1:
                    parts_en, parts_fr = f"{_MG[vals[a]]} mg/dL at {hm[a]}", f"{_MG_FR[vals[a]]} mg/dL à {hm[a]}"
                else:
                    parts_en = ", ".join([f"{_MG[vals[k]]} mg/dL at {hm[k]}" for k in range(a, b)])
                    parts_fr = ", ".join([f"{_MG_FR[vals[k]]} mg/dL à {hm[k]}" for k in range(a, b)])
                tgt = targets[a]
                evidence = {
                    "reading_ids": ids[a:b],
                    "values_mgdl": vals[a:b],
                    "measured_at": ts[a:b],
                    "target_mgdl": tgt,
                    "target_kind": "fasting",
                    "profile": prof.code,
                    "local_date": day,
                }
                en = (
                    f"Fasting glucose above target on {day}: {parts_en} (target < {_MG[tgt]} mg/dL, {prof.label}). "
                    f"Rule {rule}."
                )
                fr = (
                    f"Glycémie à jeun au-dessus de la cible le {day} : {parts_fr} (cible < "
                    f"{_MG_FR[tgt]} mg/dL, {prof.label}). Règle {rule}."
                )
                append(("info", episodes[day_n], evidence, en, fr))
            return out
        one_h: list[bool] = is_1h[order].tolist()
        kinds = [_TARGET_KIND[1] if k else _TARGET_KIND[2] for k in one_h]
        label_en = {True: _TARGET_LABEL_EN["post_1h"], False: _TARGET_LABEL_EN["post_2h"]}
        label_fr = {True: _TARGET_LABEL_FR["post_1h"], False: _TARGET_LABEL_FR["post_2h"]}
        head_en = {day: f"After-meal glucose above target on {date}: " for day, date in dates.items()}
        head_fr = {day: f"Glycémie post-prandiale au-dessus de la cible le {date} : " for day, date in dates.items()}
        tail_en = {pr.code: f"; {pr.label} targets. Rule {rule}." for pr in P.PROFILES.values()}
        tail_fr = {pr.code: f" ; cibles {pr.label}. Règle {rule}." for pr in P.PROFILES.values()}
        # " (1 h target < 140.5 mg/dL)": few distinct (kind, target) pairs
        pairs = set(zip(one_h, targets, strict=True))
        tgt_en = {(k, x): f" ({label_en[k]} < {_MG[x]} mg/dL)" for k, x in pairs}
        tgt_fr = {(k, x): f" ({label_fr[k]} < {_MG_FR[x]} mg/dL)" for k, x in pairs}
        for a, b, day_n, prof in zip(lo.tolist(), hi.tolist(), group_days, profs, strict=True):
            code = prof.code
            if b - a == 1:  # most days: one reading above target
                v, kx = vals[a], (one_h[a], targets[a])
                en = f"{head_en[day_n]}{_MG[v]} mg/dL at {hm[a]}{tgt_en[kx]}{tail_en[code]}"
                fr = f"{head_fr[day_n]}{_MG_FR[v]} mg/dL à {hm[a]}{tgt_fr[kx]}{tail_fr[code]}"
                evidence = {
                    "reading_ids": [ids[a]],
                    "values_mgdl": [v],
                    "measured_at": [ts[a]],
                    "target_mgdl": [targets[a]],
                    "target_kind": [kinds[a]],
                    "profile": code,
                    "local_date": dates[day_n],
                }
            else:
                parts_en = ", ".join(
                    [f"{_MG[vals[j]]} mg/dL at {hm[j]}{tgt_en[one_h[j], targets[j]]}" for j in range(a, b)]
                )
                parts_fr = ", ".join(
                    [f"{_MG_FR[vals[j]]} mg/dL à {hm[j]}{tgt_fr[one_h[j], targets[j]]}" for j in range(a, b)]
                )
                en = f"{head_en[day_n]}{parts_en}{tail_en[code]}"
                fr = f"{head_fr[day_n]}{parts_fr}{tail_fr[code]}"
                evidence = {
                    "reading_ids": ids[a:b],
                    "values_mgdl": vals[a:b],
                    "measured_at": ts[a:b],
                    "target_mgdl": targets[a:b],
                    "target_kind": kinds[a:b],
                    "profile": code,
                    "local_date": dates[day_n],
                }
            append(("info", episodes[day_n], evidence, en, fr))
        return out

    return _lazy(rule, first, build)


def fasting_above_target(c: Cohort) -> Candidates:
    """A fasting meter reading at or above the patient's fasting target: info, one episode per local day."""
    return _above_target_rule(c, "fasting_above_target", fasting=True)


def postprandial_above_target(c: Cohort) -> Candidates:
    """An after-meal meter reading at or above its target (1 h or 2 h, see alerts.profiles): info, one
    episode per local day."""
    return _above_target_rule(c, "postprandial_above_target", fasting=False)


def _extend_run_back(sub: _Sub, start: I64, p_of: I64, is_above: Callable[[I64, I64], B]) -> I64:
    """For runs whose first known position is ``start`` (patient ``p_of``), the true first position: walk back
    in doubling steps over the patient's earlier positions while they are all above target."""
    out = start.copy()
    seg_lo = sub.seg[p_of]
    todo = np.flatnonzero(start > seg_lo)
    step = 8
    lo_known = start.copy()
    while len(todo):
        new_lo = np.maximum(seg_lo[todo], lo_known[todo] - step)
        pos, owner = _ranges(new_lo, lo_known[todo])
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
    recent reading; episode ``"t<epoch s of its first reading>-<context>"``.

    Only the recent part of each sequence is examined, plus, for a run reaching back past the cutoff, the
    earlier readings of that run (found by walking back in doubling steps)."""
    d = _derived(c)
    found: list[tuple[bool, I64, I64, I64]] = []  # per context sequence: runs' start, end, patient
    for fasting in (True, False):  # the two context sequences
        sub = d.fasting if fasting else d.post

        def above_at(pos: I64, pid: I64, sub: _Sub = sub, fasting: bool = fasting) -> B:
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
        lo, hi = _run_starts(new)
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

    def build() -> list[_Out]:
        out: list[_Out] = []
        append = out.append
        for fasting, f_start, f_end, f_p in found:
            sub = d.sequence(fasting)
            context = "fasting" if fasting else "after_meal"
            m_pos, owner = _ranges(f_start, f_end)
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
                kinds = _target_kinds(False, is_1h)
            lens = f_end - f_start
            hi = np.cumsum(lens)
            lo = hi - lens
            first = idx[lo]
            since_l = [
                f"{_date(day)} {_HM[minute]}"
                for day, minute in zip(c.local_day[first].tolist(), c.local_minute[first].tolist(), strict=True)
            ]
            profs = [P.PROFILES[k] for k in c.profile[f_p].tolist()]
            episode_tail = f"-{context}"
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
                    "profile": prof.code,
                    "run_length": n,
                }
                values_en = ", ".join([_MG[v] for v in vals[a:b]])
                values_fr = ", ".join([_MG_FR[v] for v in vals[a:b]])
                if fasting:
                    en = (
                        f"{n} consecutive fasting readings above target since {since}: {values_en} mg/dL "
                        f"(target < {_MG[targets[0]]} mg/dL, {prof.label}). Rule consecutive_above_target."
                    )
                    fr = (
                        f"{n} glycémies à jeun consécutives au-dessus de la cible depuis le {since} : {values_fr} "
                        f"mg/dL (cible < {_MG_FR[targets[0]]} mg/dL, {prof.label}). Règle consecutive_above_target."
                    )
                else:
                    tg_en = ", ".join([f"< {_MG[x]}" for x in targets])
                    tg_fr = ", ".join([f"< {_MG_FR[x]}" for x in targets])
                    en = (
                        f"{n} consecutive after-meal readings above target since {since}: {values_en} mg/dL "
                        f"(targets {tg_en} mg/dL, {prof.label}). Rule consecutive_above_target."
                    )
                    fr = (
                        f"{n} glycémies post-prandiales consécutives au-dessus de la cible depuis le {since} : "
                        f"{values_fr} mg/dL (cibles {tg_fr} mg/dL, {prof.label}). Règle consecutive_above_target."
                    )
                append(("warning", f"t{ts[a]}{episode_tail}", evidence, en, fr))
        return out

    patients = np.concatenate([x[3] for x in found]) if found else np.zeros(0, dtype=np.int64)
    return _lazy("consecutive_above_target", patients, build)


# ---------------------------------------------------------------------------------------------------------------
# Treatment escalation patterns (stateful)
# ---------------------------------------------------------------------------------------------------------------


def _evaluated(d: _Derived, applicable: B, judgeable: B) -> B:
    """Patients a stateful rule judged: those it applies to with enough data, and those it no longer applies to
    (so that their open alerts resolve)."""
    return ~applicable | judgeable


def pattern_above_target(c: Cohort) -> Candidates:
    """≥ 30 % of the past 7 days' meter readings that have a target (fasting, after meal) at or above it, out of
    at least 8: warning (DESIGN §3, DECIDE working rule). Stateful; not after delivery."""
    d = _derived(c)
    fw, pw = d.window(True, P.PATTERN_WINDOW_S), d.window(False, P.PATTERN_WINDOW_S)
    fpos, fpid, f_target, f_above = fw.pos, fw.pid, fw.target, fw.above
    ppos, ppid, p_target, p_1h, p_above = pw.pos, pw.pid, pw.target, pw.is_1h, pw.above
    n = fw.n + pw.n
    k = np.bincount(fpid[f_above], minlength=d.P) + np.bincount(ppid[p_above], minlength=d.P)
    applicable = ~d.delivered
    judgeable = n >= P.PATTERN_MIN_READINGS
    fire = applicable & judgeable & (k * 100 >= P.PATTERN_ABOVE_PCT * n)

    def build() -> list[_Out]:
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
        batch = _Batch(c, idx, lo, hi)
        out: list[_Out] = []
        for g, p in enumerate(firing.tolist()):
            a, b = batch.lo[g], batch.hi[g]
            nn, kk = int(n[p]), int(k[p])
            pct = 100.0 * kk / nn
            prof = P.PROFILES[int(c.profile[p])]
            evidence = batch.evidence(g) | {
                "target_mgdl": targets[a:b],
                "target_kind": kinds[a:b],
                "readings_with_target": nn,
                "readings_above": kk,
                "percent_above": pct,
                "threshold_percent": P.PATTERN_ABOVE_PCT,
                "min_readings": P.PATTERN_MIN_READINGS,
                "window_days": 7,
                "profile": prof.code,
            }
            en = (
                f"{_num(pct, 0)} % of the past 7 days' readings are above target ({kk} of {nn} fasting and after-meal "
                f"readings, {prof.label} targets). At least 30 % of at least 8 readings suggests escalating the "
                f"treatment (DECIDE working rule). Rule pattern_above_target."
            )
            fr = (
                f"{_num_fr(pct, 0)} % des glycémies des 7 derniers jours sont au-dessus de la cible ({kk} sur {nn} "
                f"glycémies à jeun et post-prandiales, cibles {prof.label}). Au moins 30 % d'au moins 8 mesures fait "
                f"envisager une intensification du traitement (règle de travail DECIDE). Règle pattern_above_target."
            )
            out.append(("warning", "current", evidence, en, fr))
        return out

    return _lazy("pattern_above_target", np.flatnonzero(fire), build, True, _evaluated(d, applicable, judgeable))


def fasting_pattern(c: Cohort) -> Candidates:
    """≥ 50 % of the past 7 days' fasting readings > 115 mg/dL, out of at least 4: warning (DESIGN §3).
    Stateful; not after delivery."""
    d = _derived(c)
    sub = d.fasting
    w = d.window(True, P.PATTERN_WINDOW_S)
    pos, pid = w.pos, w.pid
    high = w.value > P.FASTING_PATTERN_MGDL
    n = w.n
    k = np.bincount(pid[high], minlength=d.P)
    applicable = ~d.delivered
    judgeable = n >= P.FASTING_PATTERN_MIN_READINGS
    fire = applicable & judgeable & (k * 100 >= P.FASTING_PATTERN_PCT * n)

    def build() -> list[_Out]:
        out: list[_Out] = []
        b_lo, b_hi = _bounds(pid, d.P)
        for p in np.flatnonzero(fire):
            idx = sub.idx[pos[b_lo[p] : b_hi[p]]]
            nn, kk = int(n[p]), int(k[p])
            pct = 100.0 * kk / nn
            evidence = _readings(c, idx) | {
                "target_mgdl": P.FASTING_PATTERN_MGDL,
                "fasting_readings": nn,
                "readings_above": kk,
                "percent_above": pct,
                "threshold_percent": P.FASTING_PATTERN_PCT,
                "min_readings": P.FASTING_PATTERN_MIN_READINGS,
                "window_days": 7,
            }
            values_en = ", ".join(_mg(float(v)) for v in c.value[idx])
            values_fr = ", ".join(_mg_fr(float(v)) for v in c.value[idx])
            en = (
                f"{kk} of {nn} fasting readings of the past 7 days are above 115 mg/dL ({_num(pct, 0)} %): "
                f"{values_en} mg/dL. At least half of at least 4 suggests escalating the treatment (DECIDE "
                f"working rule). Rule fasting_pattern."
            )
            fr = (
                f"{kk} des {nn} glycémies à jeun des 7 derniers jours dépassent 115 mg/dL ({_num_fr(pct, 0)} %) : "
                f"{values_fr} mg/dL. Au moins la moitié d'au moins 4 mesures fait envisager une intensification du "
                f"traitement (règle de travail DECIDE). Règle fasting_pattern."
            )
            out.append(("warning", "current", evidence, en, fr))
        return out

    return _lazy("fasting_pattern", np.flatnonzero(fire), build, True, _evaluated(d, applicable, judgeable))


def fasting_trend_rising(c: Cohort) -> Candidates:
    """Least-squares slope of the fasting readings of the past 14 days > 1 mg/dL per day, with at least 7
    readings: info. Stateful; not after delivery."""
    d = _derived(c)
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

    def build() -> list[_Out]:
        out: list[_Out] = []
        b_lo, b_hi = _bounds(pid, d.P)
        for p in np.flatnonzero(fire):
            members = idx[b_lo[p] : b_hi[p]]
            s = float(slope[p])
            evidence = _readings(c, members) | {
                "slope_mgdl_per_day": s,
                "threshold_mgdl_per_day": P.TREND_MIN_SLOPE_MGDL_PER_DAY,
                "points": int(n[p]),
                "min_points": P.TREND_MIN_POINTS,
                "mean_mgdl": float(my[p]),
                "window_days": 14,
            }
            en = (
                f"Fasting glucose is rising by {_num(s)} mg/dL per day over the past 14 days (least-squares slope of "
                f"{int(n[p])} fasting readings, mean {_mg(float(my[p]))} mg/dL; threshold > 1 mg/dL per day). "
                f"Rule fasting_trend_rising."
            )
            fr = (
                f"La glycémie à jeun augmente de {_num_fr(s)} mg/dL par jour sur les 14 derniers jours (pente des "
                f"moindres carrés de {int(n[p])} glycémies à jeun, moyenne {_mg_fr(float(my[p]))} mg/dL ; seuil "
                f"> 1 mg/dL par jour). Règle fasting_trend_rising."
            )
            out.append(("info", "current", evidence, en, fr))
        return out

    return _lazy("fasting_trend_rising", np.flatnonzero(fire), build, True, _evaluated(d, applicable, judgeable))


# ---------------------------------------------------------------------------------------------------------------
# Adherence and silence (stateful)
# ---------------------------------------------------------------------------------------------------------------


def _first_valid(d: _Derived) -> I64:
    """Per patient, the index of the first valid reading (-1 if none)."""
    c = d.c
    valid = d.valid_idx
    k = np.searchsorted(valid, c.offsets[:-1])
    j = _take(valid, np.where(k < len(valid), k, -1), -1)
    return np.where((j >= 0) & (j < c.offsets[1:]), j, -1)


def _last_valid_before(d: _Derived, end: I64) -> I64:
    """Per patient, the index of the last valid reading before index ``end[p]`` in its segment (-1 if none)."""
    valid = d.valid_idx
    j = _take(valid, np.searchsorted(valid, end) - 1, -1)
    return np.where(j >= d.c.offsets[:-1], j, -1)


def low_adherence(c: Cohort) -> Candidates:
    """Meter/app patients: fewer than 80 % of the prescribed meter readings over the last 7 full local days
    (today-7 .. today-1): info. Judged once the patient's first reading is at least 7 days old. Stateful; not
    after delivery."""
    d = _derived(c)
    applicable = ~d.delivered & ((c.devices & DEVICE_METER) != 0)
    first = _first_valid(d)
    judgeable = (first >= 0) & (_take(c.t, first, c.now) <= c.now - P.ADHERENCE_DAYS * 86400)
    todo = np.flatnonzero(applicable & judgeable)
    # local days today-7 .. today-1 lie within [now - 10 days, now + 2 days) whatever the UTC offset; the
    # exact selection is by local_day.
    t = c.t
    m = len(todo)
    seg_lo, seg_hi = c.offsets[:-1][todo], c.offsets[1:][todo]
    both = _seg_search(
        lambda pos: t[pos],
        np.concatenate([seg_lo, seg_lo]),
        np.concatenate([seg_hi, seg_hi]),
        np.repeat(np.array([c.now - 10 * 86400, c.now + 2 * 86400], dtype=np.int64), m),
        right=False,
    )
    lo_all, hi_all = both[:m], both[m:]
    pos, owner = _ranges(lo_all, hi_all)
    p_of = todo[owner]
    rel = c.today[p_of].astype(np.int64) - c.local_day[pos].astype(np.int64)  # 1..7 in the window
    counted = (rel >= 1) & (rel <= P.ADHERENCE_DAYS) & (c.kind[pos] == _SMBG) & ((c.flags[pos] & FLAG_CONTROL) == 0)
    day_key = p_of[counted] * P.ADHERENCE_DAYS + (P.ADHERENCE_DAYS - rel[counted])
    per_day = np.bincount(day_key, minlength=d.P * P.ADHERENCE_DAYS).reshape(d.P, P.ADHERENCE_DAYS)
    count = per_day.sum(axis=1)
    expected = P.ADHERENCE_DAYS * c.readings_per_day.astype(np.int64)
    fire = applicable & judgeable & (count * 100 < P.ADHERENCE_MIN_PCT * expected)

    def build() -> list[_Out]:
        out: list[_Out] = []
        c_pos, c_p = pos[counted], p_of[counted]
        b_lo, b_hi = _bounds(c_p, d.P)
        for p in np.flatnonzero(fire):
            members = c_pos[b_lo[p] : b_hi[p]]
            cnt, exp = int(count[p]), int(expected[p])
            pct = 100.0 * cnt / exp
            first_day, last_day = int(c.today[p]) - P.ADHERENCE_DAYS, int(c.today[p]) - 1
            evidence = _readings(c, members) | {
                "readings": cnt,
                "expected": exp,
                "readings_per_day": int(c.readings_per_day[p]),
                "percent": pct,
                "threshold_percent": P.ADHERENCE_MIN_PCT,
                "per_day": per_day[p].tolist(),
                "first_date": _date(first_day),
                "last_date": _date(last_day),
            }
            en = (
                f"{cnt} meter readings over the last 7 full days ({_date(first_day)} to {_date(last_day)}) for "
                f"{exp} prescribed ({int(c.readings_per_day[p])} a day): {_num(pct, 0)} %, below 80 %. "
                f"Per day: {', '.join(map(str, per_day[p].tolist()))}. Rule low_adherence."
            )
            fr = (
                f"{cnt} glycémies capillaires sur les 7 derniers jours complets (du {_date(first_day)} au "
                f"{_date(last_day)}) pour {exp} prescrites ({int(c.readings_per_day[p])} par jour) : "
                f"{_num_fr(pct, 0)} %, sous 80 %. Par jour : {', '.join(map(str, per_day[p].tolist()))}. "
                f"Règle low_adherence."
            )
            out.append(("info", "current", evidence, en, fr))
        return out

    return _lazy("low_adherence", np.flatnonzero(fire), build, True, _evaluated(d, applicable, judgeable))


def no_data(c: Cohort) -> Candidates:
    """Meter/app patients without a CGM: no reading for more than 48 h (and at least one before): warning.
    Stateful; not after delivery."""
    d = _derived(c)
    applicable = ~d.delivered & ((c.devices & DEVICE_METER) != 0) & ((c.devices & DEVICE_CGM) == 0)
    last = _last_valid_before(d, d.end_now)
    judgeable = last >= 0
    age = c.now - _take(c.t, last, c.now)
    fire = applicable & judgeable & (age > P.METER_SILENT_S)

    def build() -> list[_Out]:
        out: list[_Out] = []
        for p in np.flatnonzero(fire):
            i = int(last[p])
            # nothing in the evidence or message changes while the silence lasts: the alert is not updated every pass
            evidence = _readings(c, np.array([i])) | {"threshold_s": P.METER_SILENT_S}
            en = (
                f"No reading since {_when(c, i)} (last: {_mg(float(c.value[i]))} mg/dL). "
                f"The meter or app has been silent for more than 48 h. Rule no_data."
            )
            fr = (
                f"Aucune mesure depuis le {_when(c, i)} (dernière : {_mg_fr(float(c.value[i]))} mg/dL). "
                f"Le lecteur ou l'application est silencieux depuis plus de 48 h. Règle no_data."
            )
            out.append(("warning", "current", evidence, en, fr))
        return out

    return _lazy("no_data", np.flatnonzero(fire), build, True, _evaluated(d, applicable, judgeable))


# ---------------------------------------------------------------------------------------------------------------
# CGM (stateful)
# ---------------------------------------------------------------------------------------------------------------


def _cgm_applicable(d: _Derived) -> B:
    """The patients the CGM rules apply to: wearing a CGM, not delivered."""
    applicable: B = ~d.delivered & ((d.c.devices & DEVICE_CGM) != 0)
    return applicable


def _cgm_rule(rule: Rule) -> Rule:
    """A stateful CGM rule that, when the rules apply to no patient of the cohort (the incremental evaluation of
    a meter patient), fires for none and has judged everyone (so that open alerts resolve), without searching."""

    @wraps(rule)
    def checked(c: Cohort) -> Candidates:
        d = _derived(c)
        if _cgm_applicable(d).any():
            return rule(c)
        return _lazy(rule.__name__, np.zeros(0, dtype=np.int64), list, True, np.ones(d.P, dtype=np.bool_))

    return checked


def _cgm_last(d: _Derived) -> tuple[B, I64, I64]:
    """CGM rules' applicability, and per patient the position in ``d.cgm`` of the last reading with
    ``t <= now`` (-1 if none), and the number of CGM positions up to it."""
    cached = d.c.cache.get("cgm_last")
    if cached is None:
        c = d.c
        applicable = _cgm_applicable(d)
        sub = d.cgm
        end = sub.search_all(c.now, right=True)
        last = np.where(end > sub.seg[:-1], end - 1, -1)
        cached = c.cache["cgm_last"] = (applicable, last, end)
    result: tuple[B, I64, I64] = cached
    return result


@_cgm_rule
def cgm_stale(c: Cohort) -> Candidates:
    """CGM patients: last CGM reading older than 15 min → warning, 30 min → urgent (episode "current", the
    severity follows the silence). Stateful; judged once the patient has a CGM reading; not after delivery."""
    d = _derived(c)
    sub = d.cgm
    applicable, last, _ = _cgm_last(d)
    judgeable = last >= 0
    last_i = _take(sub.idx, last, -1)
    age = c.now - _take(c.t, last_i, c.now)
    fire = applicable & judgeable & (age > P.CGM_STALE_WARNING_S)

    def build() -> list[_Out]:
        out: list[_Out] = []
        for p in np.flatnonzero(fire):
            i = int(last_i[p])
            urgent = int(age[p]) > P.CGM_STALE_URGENT_S
            # stable while the silence lasts (only the severity steps up): no update every minute
            evidence = _readings(c, np.array([i])) | {
                "warning_after_s": P.CGM_STALE_WARNING_S,
                "urgent_after_s": P.CGM_STALE_URGENT_S,
            }
            en = (
                f"CGM silent since {_when(c, i)} (last reading {_mg(float(c.value[i]))} mg/dL; "
                f"warning after 15 min, urgent after 30 min). Rule cgm_stale."
            )
            fr = (
                f"Capteur (CGM) silencieux depuis le {_when(c, i)} (dernière mesure {_mg_fr(float(c.value[i]))} mg/dL ; "
                f"alerte après 15 min, urgente après 30 min). Règle cgm_stale."
            )
            out.append(("urgent" if urgent else "warning", "current", evidence, en, fr))
        return out

    return _lazy("cgm_stale", np.flatnonzero(fire), build, True, _evaluated(d, applicable, judgeable))


def _ar2(d: _Derived) -> dict[str, Any]:
    """Nightscout's AR2 inputs and forecast for every CGM patient with a fresh last reading (cached).

    As bgnow.js: four 5-minute buckets around the last reading L (bucket k holds readings with
    ``L - 150 s - k·300 s <= t <= L + 150 s - k·300 s``, a reading on a boundary going to the lower k); the
    "recent" bucket is bucket 0, "previous" the first bucket whose newest non-error reading (> 39 mg/dL) is
    older than bucket 0's. A bucket's value is the mean of its non-error readings. mean5MinsAgo is the previous
    mean, or when the two are more than 9 minutes apart the line between them evaluated 5 minutes before
    the recent reading. ar2.js then forecasts from (mean5MinsAgo, recent mean)."""
    if "ar2" in d.c.cache:
        cached: dict[str, Any] = d.c.cache["ar2"]
        return cached
    c = d.c
    sub = d.cgm
    applicable, last, end = _cgm_last(d)
    has = last >= 0
    last_t = _take(sub.t, last, 0)
    fresh = applicable & has & (c.now - last_t <= P.CGM_FRESH_S)
    pts = np.flatnonzero(fresh)
    pos, owner = _ranges(sub.search(last_t[pts] - 1050, patients=pts), end[pts])
    L = last_t[pts]
    dist = L[owner] - sub.t[pos]  # ≥ 0
    bucket = np.maximum((dist - 150 + 299) // 300, 0)
    v = sub.v[pos]
    ok = v > P.NIGHTSCOUT_ERROR_MGDL
    m = len(pts)
    key = owner * 4 + bucket
    n_all = np.bincount(key, minlength=4 * m).reshape(m, 4)
    n_ok = np.bincount(key[ok], minlength=4 * m).reshape(m, 4)
    s_ok = np.bincount(key[ok], weights=v[ok], minlength=4 * m).reshape(m, 4)
    t_flat = np.full(4 * m, np.iinfo(np.int64).min, dtype=np.int64)
    np.maximum.at(t_flat, key[ok], sub.t[pos][ok])
    t_ok = t_flat.reshape(m, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s_ok / n_ok
    recent_ok = n_ok[:, 0] > 0
    cand = (n_all > 0) & (n_ok > 0) & (t_ok < t_ok[:, :1])
    cand &= recent_ok[:, None]
    has_prev: B = np.asarray(cand.any(axis=1), dtype=np.bool_)
    k_prev = np.argmax(cand, axis=1)
    rows = np.arange(m)
    mean0 = mean[:, 0]
    mean_p = mean[rows, k_prev]
    elapsed = (t_ok[:, 0] - t_ok[rows, k_prev]) / 60.0
    with np.errstate(divide="ignore", invalid="ignore"):
        absolute = mean0 - mean_p
        interpolated = elapsed > 9
        m5 = np.where(interpolated, mean0 - absolute / elapsed * 5, mean0 - absolute)
    computable = has_prev & (m5 > 0) & (mean0 >= P.AR2_BG_MIN)
    points = ar2_points(np.where(computable, mean0, np.nan), np.where(computable, m5, np.nan))
    used = np.asarray((bucket == 0) | (bucket == k_prev[owner]), dtype=np.bool_)
    result = {
        "patients": pts,
        "computable": computable,
        "points": points,
        "mean_now": mean0,
        "mean_5min_ago": m5,
        "elapsed_min": elapsed,
        "interpolated": interpolated,
        "pos": pos,
        "owner": owner,
        "used": used & has_prev[owner],
        "applicable": applicable,
    }
    c.cache["ar2"] = result
    return result


def ar2_forecast(c: Cohort) -> tuple[I64, F64]:
    """Patients with an AR2 forecast, and their forecast points (m, 6) in mg/dL, 5..30 min after their last
    CGM reading (Nightscout equivalence is tested on this)."""
    r = _ar2(_derived(c))
    ok = r["computable"]
    return r["patients"][ok], r["points"][ok]


@_cgm_rule
def cgm_predicted_low(c: Cohort) -> Candidates:
    """CGM patients: Nightscout's AR2 forecast from the last readings predicts ≤ 55 mg/dL within 20 min (one of
    the points 5, 10, 15, 20 min after the last reading): urgent. Judged when the last reading is fresh
    (≤ 15 min) and the forecast computable. Stateful; not after delivery."""
    d = _derived(c)
    r = _ar2(d)
    pts, computable, points = r["patients"], r["computable"], r["points"]
    horizon = P.PREDICTED_LOW_HORIZON_MIN // 5
    low_at = computable & (
        np.where(computable[:, None], points[:, :horizon], np.inf).min(axis=1) <= P.PREDICTED_LOW_MGDL
    )
    judgeable = np.zeros(d.P, dtype=np.bool_)
    judgeable[pts[computable]] = True

    def build() -> list[_Out]:
        out: list[_Out] = []
        sub = d.cgm
        o_lo, o_hi = _bounds(r["owner"], len(pts))
        for j in np.flatnonzero(low_at):
            sl = slice(o_lo[j], o_hi[j])
            members = sub.idx[r["pos"][sl][r["used"][sl]]]
            last_i = int(members[-1])
            forecast = points[j].tolist()
            k = next(i for i, x in enumerate(forecast[:horizon]) if x <= P.PREDICTED_LOW_MGDL)
            evidence = _readings(c, members) | {
                "target_mgdl": P.PREDICTED_LOW_MGDL,
                "forecast_mgdl": forecast,
                "forecast_minutes": [5 * (i + 1) for i in range(P.AR2_STEPS)],
                "horizon_min": P.PREDICTED_LOW_HORIZON_MIN,
                "mean_now_mgdl": float(r["mean_now"][j]),
                "mean_5min_ago_mgdl": float(r["mean_5min_ago"][j]),
                "model": "Nightscout AR2 (ar2.js): ln(bg/140), coefficients [-0.723, 1.716], 5-min steps",
            }
            points_txt = ", ".join(f"{int(x)}" for x in forecast[:horizon])
            en = (
                f"Predicted low: the AR2 forecast (Nightscout) reaches {int(forecast[k])} mg/dL {5 * (k + 1)} min "
                f"after the last CGM reading ({_mg(float(c.value[last_i]))} mg/dL at {_when(c, last_i)}); forecast at "
                f"5, 10, 15, 20 min: {points_txt} mg/dL (threshold ≤ 55 mg/dL within 20 min). Rule cgm_predicted_low."
            )
            fr = (
                f"Hypoglycémie prévue : la prévision AR2 (Nightscout) atteint {int(forecast[k])} mg/dL {5 * (k + 1)} min "
                f"après la dernière mesure du capteur ({_mg_fr(float(c.value[last_i]))} mg/dL le {_when(c, last_i)}) ; "
                f"prévision à 5, 10, 15, 20 min : {points_txt} mg/dL (seuil ≤ 55 mg/dL dans les 20 min). "
                f"Règle cgm_predicted_low."
            )
            out.append(("urgent", "current", evidence, en, fr))
        return out

    return _lazy(
        "cgm_predicted_low", pts[np.flatnonzero(low_at)], build, True, _evaluated(d, r["applicable"], judgeable)
    )


@_cgm_rule
def cgm_rapid_fall(c: Cohort) -> Candidates:
    """CGM patients: least-squares rate of change of the CGM readings of the 15 min up to the (fresh) last
    reading ≤ −3 mg/dL/min, over at least 3 readings spanning at least 10 min: warning. Stateful; not after
    delivery."""
    d = _derived(c)
    sub = d.cgm
    applicable, last, end = _cgm_last(d)
    has = last >= 0
    last_t = _take(sub.t, last, 0)
    fresh = applicable & has & (c.now - last_t <= P.CGM_FRESH_S)
    pts = np.flatnonzero(fresh)
    pos, owner = _ranges(sub.search(last_t[pts] - P.RAPID_FALL_WINDOW_S, patients=pts), end[pts])
    m = len(pts)
    t = sub.t[pos]
    x = (t - last_t[pts][owner]) / 60.0  # minutes, ≤ 0
    y = sub.v[pos]
    n = np.bincount(owner, minlength=m)
    safe = np.maximum(n, 1)
    mx = np.bincount(owner, weights=x, minlength=m) / safe
    my = np.bincount(owner, weights=y, minlength=m) / safe
    dx = x - mx[owner]
    dy = y - my[owner]
    sxx = np.bincount(owner, weights=dx * dx, minlength=m)
    sxy = np.bincount(owner, weights=dx * dy, minlength=m)
    first_t = np.full(m, np.iinfo(np.int64).max, dtype=np.int64)
    if len(pos):
        starts = np.flatnonzero(np.append(True, owner[1:] != owner[:-1]))
        first_t[owner[starts]] = t[starts]
    span = last_t[pts] - first_t
    ok = (n >= P.RAPID_FALL_MIN_READINGS) & (span >= P.RAPID_FALL_MIN_SPAN_S) & (sxx > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(ok, sxy / np.where(sxx > 0, sxx, 1.0), np.nan)
    judgeable = np.zeros(d.P, dtype=np.bool_)
    judgeable[pts[ok]] = True
    fire_j = np.flatnonzero(ok & (slope <= P.RAPID_FALL_MGDL_PER_MIN))

    def build() -> list[_Out]:
        out: list[_Out] = []
        o_lo, o_hi = _bounds(owner, m)
        for j in fire_j:
            members = sub.idx[pos[o_lo[j] : o_hi[j]]]
            s = float(slope[j])
            a, b = int(members[0]), int(members[-1])
            evidence = _readings(c, members) | {
                "rate_mgdl_per_min": s,
                "threshold_mgdl_per_min": P.RAPID_FALL_MGDL_PER_MIN,
                "window_s": P.RAPID_FALL_WINDOW_S,
            }
            en = (
                f"Glucose falling fast: {_num(s)} mg/dL per minute over the last 15 min ({int(n[j])} CGM readings, "
                f"{_mg(float(c.value[a]))} mg/dL at {_hm(c, a)} to {_mg(float(c.value[b]))} mg/dL at {_when(c, b)}; "
                f"threshold ≤ −3 mg/dL/min). Rule cgm_rapid_fall."
            )
            fr = (
                f"Glycémie en chute rapide : {_num_fr(s)} mg/dL par minute sur les 15 dernières minutes "
                f"({int(n[j])} mesures du capteur, de {_mg_fr(float(c.value[a]))} mg/dL à {_hm(c, a)} à "
                f"{_mg_fr(float(c.value[b]))} mg/dL le {_when(c, b)} ; seuil ≤ −3 mg/dL/min). Règle cgm_rapid_fall."
            )
            out.append(("warning", "current", evidence, en, fr))
        return out

    return _lazy("cgm_rapid_fall", pts[fire_j], build, True, _evaluated(d, applicable, judgeable))


@_cgm_rule
def cgm_range_review(c: Cohort) -> Candidates:
    """CGM patients, over the last 14 days with ≥ 70 % of the expected 5-minute readings (distinct 5-minute
    slots holding a reading, so 1-minute sensors do not count more): time in range 63–140 < 70 %, or below 63
    ≥ 4 %, or below 54 ≥ 1 %, or above 140 ≥ 25 %, or CV > 36 % (Battelino 2019, pregnancy): warning. Percentages
    are of readings. Stateful; not after delivery."""
    d = _derived(c)
    sub = d.cgm
    applicable, _, _ = _cgm_last(d)
    pts = np.flatnonzero(applicable)
    # each patient's window is a contiguous range of the CGM subset: window sums over the whole subset arrays
    lo = sub.search_all(c.now - P.CGM_REVIEW_S, right=True)[pts]
    hi = sub.search_all(c.now, right=True)[pts]
    win = _Windows(lo, hi, len(sub.idx))
    v, t = sub.v, sub.t
    slot = (c.now - t) // P.CGM_INTERVAL_S
    new_slot = np.empty(len(t), dtype=np.bool_)
    new_slot[:1] = True
    np.not_equal(slot[1:], slot[:-1], out=new_slot[1:])
    del slot
    new_slot[lo[lo < hi]] = True  # a window's first reading opens a slot
    slots = win.count(new_slot)
    expected = P.CGM_REVIEW_S // P.CGM_INTERVAL_S
    n = hi - lo
    n_63 = win.count(v < P.CGM_RANGE_LOW_MGDL)
    n_54 = win.count(v < P.HYPO_L2_MGDL)
    n_140 = win.count(v > P.CGM_RANGE_HIGH_MGDL)
    total = win.sum(v)
    # in range = neither below nor above, in windows without NaN (their sum is finite); the others counted
    n_in = n - n_63 - n_140
    odd = np.flatnonzero(~np.isfinite(total))
    if len(odd):
        pos, owner = _ranges(lo[odd], hi[odd])
        in_range = (v[pos] >= P.CGM_RANGE_LOW_MGDL) & (v[pos] <= P.CGM_RANGE_HIGH_MGDL)
        n_in[odd] = np.bincount(owner[in_range], minlength=len(odd))
    safe = np.maximum(n, 1)
    mean = total / safe
    # two-pass variance: each window's mean spread over the window's positions
    dev = win.spread(mean)
    np.subtract(v, dev, out=dev)
    np.multiply(dev, dev, out=dev)
    ss = win.sum(dev)
    del dev
    sd = np.sqrt(ss / np.maximum(n - 1, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        cv = 100.0 * sd / mean
    ok = (slots.astype(np.int64) * 100 >= P.CGM_MIN_DATA_PCT * expected) & (n >= 2)
    fails = np.stack(
        [
            n_in.astype(np.int64) * 100 < P.CGM_TIR_MIN_PCT * n,
            n_63.astype(np.int64) * 100 >= P.CGM_TBR63_MAX_PCT * n,
            n_54.astype(np.int64) * 100 >= P.CGM_TBR54_MAX_PCT * n,
            n_140.astype(np.int64) * 100 >= P.CGM_TAR_MAX_PCT * n,
            cv > P.CGM_CV_MAX_PCT,
        ],
        axis=1,
    )
    fire_j = np.flatnonzero(ok & fails.any(axis=1))
    judgeable = np.zeros(d.P, dtype=np.bool_)
    judgeable[pts[ok]] = True
    names = ["time_in_range", "below_63", "below_54", "above_140", "cv"]
    names_en = ["time in range < 70 %", "below 63 ≥ 4 %", "below 54 ≥ 1 %", "above 140 ≥ 25 %", "CV > 36 %"]
    names_fr = ["temps dans la cible < 70 %", "sous 63 ≥ 4 %", "sous 54 ≥ 1 %", "au-dessus de 140 ≥ 25 %", "CV > 36 %"]

    def build() -> list[_Out]:
        out: list[_Out] = []
        for j in fire_j:
            nn = int(n[j])
            metrics = {
                "time_in_range_pct": 100.0 * int(n_in[j]) / nn,
                "below_63_pct": 100.0 * int(n_63[j]) / nn,
                "below_54_pct": 100.0 * int(n_54[j]) / nn,
                "above_140_pct": 100.0 * int(n_140[j]) / nn,
                "cv_pct": float(cv[j]),
                "mean_mgdl": float(mean[j]),
                "sd_mgdl": float(sd[j]),
                "gmi_pct": P.GMI_INTERCEPT + P.GMI_SLOPE * float(mean[j]),
                "data_pct": 100.0 * int(slots[j]) / expected,
                "readings": nn,
            }
            failing = [names[i] for i in range(5) if fails[j, i]]
            evidence: dict[str, Any] = (
                {"reading_ids": [], "values_mgdl": [], "measured_at": []}
                | metrics
                | {
                    "failing": failing,
                    "first_reading_id": int(c.reading_id[sub.idx[lo[j]]]),
                    "last_reading_id": int(c.reading_id[sub.idx[hi[j] - 1]]),
                    "window_days": 14,
                    "targets": {
                        "time_in_range_pct": "> 70",
                        "below_63_pct": "< 4",
                        "below_54_pct": "< 1",
                        "above_140_pct": "< 25",
                        "cv_pct": "<= 36",
                        "data_pct": ">= 70",
                    },
                }
            )
            f_en = ", ".join(names_en[i] for i in range(5) if fails[j, i])
            f_fr = ", ".join(names_fr[i] for i in range(5) if fails[j, i])
            mt = metrics
            en = (
                f"CGM review over the last 14 days ({_num(mt['data_pct'], 0)} % of data): time in range 63–140 mg/dL "
                f"{_num(mt['time_in_range_pct'])} % (target > 70 %), below 63 {_num(mt['below_63_pct'])} % (< 4 %), "
                f"below 54 {_num(mt['below_54_pct'])} % (< 1 %), above 140 {_num(mt['above_140_pct'])} % (< 25 %), "
                f"CV {_num(mt['cv_pct'])} % (≤ 36 %), mean {_mg(mt['mean_mgdl'])} mg/dL, GMI {_num(mt['gmi_pct'])} %. "
                f"Outside the pregnancy targets (Battelino 2019): {f_en}. Rule cgm_range_review."
            )
            fr = (
                f"Bilan du capteur sur les 14 derniers jours ({_num_fr(mt['data_pct'], 0)} % de données) : temps dans "
                f"la cible 63–140 mg/dL {_num_fr(mt['time_in_range_pct'])} % (objectif > 70 %), sous 63 "
                f"{_num_fr(mt['below_63_pct'])} % (< 4 %), sous 54 {_num_fr(mt['below_54_pct'])} % (< 1 %), au-dessus "
                f"de 140 {_num_fr(mt['above_140_pct'])} % (< 25 %), CV {_num_fr(mt['cv_pct'])} % (≤ 36 %), moyenne "
                f"{_mg_fr(mt['mean_mgdl'])} mg/dL, GMI {_num_fr(mt['gmi_pct'])} %. Hors des objectifs de grossesse "
                f"(Battelino 2019) : {f_fr}. Règle cgm_range_review."
            )
            out.append(("warning", "current", evidence, en, fr))
        return out

    return _lazy("cgm_range_review", pts[fire_j], build, True, _evaluated(d, applicable, judgeable))


# ---------------------------------------------------------------------------------------------------------------
# After delivery
# ---------------------------------------------------------------------------------------------------------------


def postpartum_test_due(c: Cohort) -> Candidates:
    """Delivery recorded and today inside the profile's postpartum glucose test window (ADA 4–12 weeks, NICE
    6–13, FR 6–8): info, episode "postpartum" (not stateful: it stays until a clinician resolves it)."""
    d = _derived(c)
    days = c.today.astype(np.int64) - c.delivery_day.astype(np.int64)
    prof = c.profile.astype(np.int64)
    fire = d.delivered & (days >= P.PROFILE_POSTPARTUM_START[prof]) & (days <= P.PROFILE_POSTPARTUM_END[prof])

    def build() -> list[_Out]:
        out: list[_Out] = []
        for p in np.flatnonzero(fire):
            pr = P.PROFILES[int(c.profile[p])]
            dd = int(c.delivery_day[p])
            evidence: dict[str, Any] = {"reading_ids": [], "values_mgdl": [], "measured_at": []} | {
                "delivery_date": _date(dd),
                "days_since_delivery": int(days[p]),
                "window_start_date": _date(dd + pr.postpartum_start_days),
                "window_end_date": _date(dd + pr.postpartum_end_days),
                "profile": pr.code,
                "test": pr.postpartum_test_en,
            }
            en = (
                f"Postpartum glucose test due: delivery on {_date(dd)} ({int(days[p])} days ago); {pr.label} asks for a "
                f"{pr.postpartum_test_en}, by {_date(dd + pr.postpartum_end_days)}. Rule postpartum_test_due."
            )
            fr = (
                f"Dépistage postnatal du diabète à prévoir : accouchement le {_date(dd)} (il y a {int(days[p])} jours) ; "
                f"{pr.label} recommande : {pr.postpartum_test_fr}, avant le {_date(dd + pr.postpartum_end_days)}. "
                f"Règle postpartum_test_due."
            )
            out.append(("info", "postpartum", evidence, en, fr))
        return out

    return _lazy("postpartum_test_due", np.flatnonzero(fire), build)


# ---------------------------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------------------------

ALL_RULES: tuple[Rule, ...] = (
    hypo_l2,
    hypo_l1,
    hypo_insulin_floor,
    fasting_severe,
    ketone_check,
    fasting_above_target,
    postprandial_above_target,
    consecutive_above_target,
    pattern_above_target,
    fasting_pattern,
    fasting_trend_rising,
    low_adherence,
    no_data,
    cgm_stale,
    cgm_predicted_low,
    cgm_rapid_fall,
    cgm_range_review,
    postpartum_test_due,
)
# The time-driven CGM rules, for a frequent scheduled pass over CGM patients only.
CGM_RULES: tuple[Rule, ...] = (cgm_stale, cgm_predicted_low, cgm_rapid_fall, cgm_range_review)
RULES_BY_ID: dict[str, Rule] = {r.__name__: r for r in ALL_RULES}
STATEFUL_RULES = frozenset(
    {
        "pattern_above_target",
        "fasting_pattern",
        "fasting_trend_rising",
        "low_adherence",
        "no_data",
        "cgm_stale",
        "cgm_predicted_low",
        "cgm_rapid_fall",
        "cgm_range_review",
    }
)


def evaluate(c: Cohort, rules: Iterable[Rule] = ALL_RULES, *, materialise: bool = True) -> list[Candidates]:
    """Run ``rules`` on the cohort: one :class:`Candidates` per rule, in order.

    The rules decide vectorised (patients, severity, episodes, evidence readings); the evidence dicts and the
    messages are then built by a Python loop over the candidates. ``materialise=True`` (the default, what the
    engine uses: it runs this in a worker thread for big cohorts) builds them here; ``materialise=False`` leaves
    them to be built when first read (:class:`Candidates`), e.g. to time the decisions alone.

    The cyclic garbage collector is paused meanwhile: building many small evidence dicts and lists otherwise
    triggers repeated full collections (about half the time of a population pass with many candidates)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        results = [rule(c) for rule in rules]
        if materialise:
            materialise_all(results)
        return results
    finally:
        if paused:
            gc.enable()


def materialise_all(results: Iterable[Candidates]) -> None:
    """Build the evidence and messages of every candidate of ``results`` (lazy ones), with the cyclic garbage
    collector paused throughout (see :func:`evaluate`)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        for r in results:
            r.materialise()
    finally:
        if paused:
            gc.enable()
