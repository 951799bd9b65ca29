"""CGM rules (stateful; not after delivery), for patients wearing a sensor.

- ``cgm_stale``: the sensor has been silent for 15 min (warning) or 30 min (urgent);
- ``cgm_predicted_low``: Nightscout's AR2 forecast reaches ≤ 55 mg/dL within 20 min (urgent);
- ``cgm_rapid_fall``: glucose falls by 3 mg/dL a minute or more over the last 15 min (warning);
- ``cgm_range_review``: over 14 days with enough data, the pregnancy targets of the international consensus
  (Battelino 2019: time in range 63–140 mg/dL > 70 %, below 63 < 4 %, below 54 < 1 %, above 140 < 25 %,
  CV ≤ 36 %) are not met (warning).

The forecast and fall rules judge only a sensor whose last reading is fresh (minutes old). Numbers and sources:
:mod:`alerts.profiles`.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

import numpy as np

from alerts import profiles as P
from alerts.cohort import DEVICE_CGM, F64, I64, B, Candidates, Cohort
from alerts.rules.build import NO_READINGS, Out, Rule, iso, lazy, local_of, readings
from alerts.rules.segments import Derived, Windows, bounds, derived, judged, ranges, take


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


def _cgm_applicable(d: Derived) -> B:
    """The patients the CGM rules apply to: wearing a CGM, not delivered."""
    applicable: B = ~d.delivered & ((d.c.devices & DEVICE_CGM) != 0)
    return applicable


def _cgm_rule(rule: Rule) -> Rule:
    """A stateful CGM rule that, when the rules apply to no patient of the cohort (the incremental evaluation of
    a meter patient), fires for none and has judged everyone (so that open alerts resolve), without searching."""

    @wraps(rule)
    def checked(c: Cohort) -> Candidates:
        d = derived(c)
        if _cgm_applicable(d).any():
            return rule(c)
        return lazy(rule.__name__, np.zeros(0, dtype=np.int64), list, True, np.ones(d.P, dtype=np.bool_))

    return checked


def _cgm_last(d: Derived) -> tuple[B, I64, I64]:
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
    d = derived(c)
    sub = d.cgm
    applicable, last, _ = _cgm_last(d)
    judgeable = last >= 0
    last_i = take(sub.idx, last, -1)
    age = c.now - take(c.t, last_i, c.now)
    fire = applicable & judgeable & (age > P.CGM_STALE_WARNING_S)

    def build() -> list[Out]:
        out: list[Out] = []
        for p in np.flatnonzero(fire):
            i = int(last_i[p])
            urgent = int(age[p]) > P.CGM_STALE_URGENT_S
            # stable while the silence lasts (only the severity steps up): no update every minute
            evidence = readings(c, np.array([i])) | {
                "warning_after_s": P.CGM_STALE_WARNING_S,
                "urgent_after_s": P.CGM_STALE_URGENT_S,
            }
            params = {
                "last_mgdl": float(c.value[i]),
                "last_at": iso(int(c.t[i])),
                "last_local": local_of(c, i),
                "warning_after_min": P.CGM_STALE_WARNING_S // 60,
                "urgent_after_min": P.CGM_STALE_URGENT_S // 60,
                "source": P.STALE_SOURCE,
            }
            out.append(("urgent" if urgent else "warning", "current", evidence, "cgm_stale", params))
        return out

    return lazy("cgm_stale", np.flatnonzero(fire), build, True, judged(applicable, judgeable))


def _ar2(d: Derived) -> dict[str, Any]:
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
    last_t = take(sub.t, last, 0)
    fresh = applicable & has & (c.now - last_t <= P.CGM_FRESH_S)
    pts = np.flatnonzero(fresh)
    pos, owner = ranges(sub.search(last_t[pts] - 1050, patients=pts), end[pts])
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
    r = _ar2(derived(c))
    ok = r["computable"]
    return r["patients"][ok], r["points"][ok]


@_cgm_rule
def cgm_predicted_low(c: Cohort) -> Candidates:
    """CGM patients: Nightscout's AR2 forecast from the last readings predicts ≤ 55 mg/dL within 20 min (one of
    the points 5, 10, 15, 20 min after the last reading): urgent. Judged when the last reading is fresh
    (≤ 15 min) and the forecast computable. Stateful; not after delivery."""
    d = derived(c)
    r = _ar2(d)
    pts, computable, points = r["patients"], r["computable"], r["points"]
    horizon = P.PREDICTED_LOW_HORIZON_MIN // 5
    low_at = computable & (
        np.where(computable[:, None], points[:, :horizon], np.inf).min(axis=1) <= P.PREDICTED_LOW_MGDL
    )
    judgeable = np.zeros(d.P, dtype=np.bool_)
    judgeable[pts[computable]] = True

    def build() -> list[Out]:
        out: list[Out] = []
        sub = d.cgm
        o_lo, o_hi = bounds(r["owner"], len(pts))
        for j in np.flatnonzero(low_at):
            sl = slice(o_lo[j], o_hi[j])
            members = sub.idx[r["pos"][sl][r["used"][sl]]]
            last_i = int(members[-1])
            forecast = points[j].tolist()
            k = next(i for i, x in enumerate(forecast[:horizon]) if x <= P.PREDICTED_LOW_MGDL)
            evidence = readings(c, members) | {
                "target_mgdl": P.PREDICTED_LOW_MGDL,
                "forecast_mgdl": forecast,
                "forecast_minutes": [5 * (i + 1) for i in range(P.AR2_STEPS)],
                "horizon_min": P.PREDICTED_LOW_HORIZON_MIN,
                "mean_now_mgdl": float(r["mean_now"][j]),
                "mean_5min_ago_mgdl": float(r["mean_5min_ago"][j]),
                "model": "Nightscout AR2 (ar2.js): ln(bg/140), coefficients [-0.723, 1.716], 5-min steps",
            }
            params = {
                "threshold_mgdl": P.PREDICTED_LOW_MGDL,
                "horizon_min": P.PREDICTED_LOW_HORIZON_MIN,
                "reaches_mgdl": forecast[k],
                "reaches_after_min": 5 * (k + 1),
                "forecast_mgdl": forecast[:horizon],
                "forecast_minutes": [5 * (i + 1) for i in range(horizon)],
                "last_mgdl": float(c.value[last_i]),
                "last_at": iso(int(c.t[last_i])),
                "last_local": local_of(c, last_i),
                "source": P.PREDICTED_LOW_SOURCE,
            }
            out.append(("urgent", "current", evidence, "cgm_predicted_low", params))
        return out

    return lazy("cgm_predicted_low", pts[np.flatnonzero(low_at)], build, True, judged(r["applicable"], judgeable))


@_cgm_rule
def cgm_rapid_fall(c: Cohort) -> Candidates:
    """CGM patients: least-squares rate of change of the CGM readings of the 15 min up to the (fresh) last
    reading ≤ −3 mg/dL/min, over at least 3 readings spanning at least 10 min: warning. Stateful; not after
    delivery."""
    d = derived(c)
    sub = d.cgm
    applicable, last, end = _cgm_last(d)
    has = last >= 0
    last_t = take(sub.t, last, 0)
    fresh = applicable & has & (c.now - last_t <= P.CGM_FRESH_S)
    pts = np.flatnonzero(fresh)
    pos, owner = ranges(sub.search(last_t[pts] - P.RAPID_FALL_WINDOW_S, patients=pts), end[pts])
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

    def build() -> list[Out]:
        out: list[Out] = []
        o_lo, o_hi = bounds(owner, m)
        for j in fire_j:
            members = sub.idx[pos[o_lo[j] : o_hi[j]]]
            s = float(slope[j])
            a, b = int(members[0]), int(members[-1])
            evidence = readings(c, members) | {
                "rate_mgdl_per_min": s,
                "threshold_mgdl_per_min": P.RAPID_FALL_MGDL_PER_MIN,
                "window_s": P.RAPID_FALL_WINDOW_S,
            }
            params = {
                "rate_mgdl_per_min": s,
                "threshold_mgdl_per_min": P.RAPID_FALL_MGDL_PER_MIN,
                "window_min": P.RAPID_FALL_WINDOW_S // 60,
                "count": int(n[j]),
                "first_mgdl": float(c.value[a]),
                "first_at": iso(int(c.t[a])),
                "first_local": local_of(c, a),
                "last_mgdl": float(c.value[b]),
                "last_at": iso(int(c.t[b])),
                "last_local": local_of(c, b),
                "source": P.RAPID_FALL_SOURCE,
            }
            out.append(("warning", "current", evidence, "cgm_rapid_fall", params))
        return out

    return lazy("cgm_rapid_fall", pts[fire_j], build, True, judged(applicable, judgeable))


@_cgm_rule
def cgm_range_review(c: Cohort) -> Candidates:
    """CGM patients, over the last 14 days with ≥ 70 % of the expected 5-minute readings (distinct 5-minute
    slots holding a reading, so 1-minute sensors do not count more): time in range 63–140 < 70 %, or below 63
    ≥ 4 %, or below 54 ≥ 1 %, or above 140 ≥ 25 %, or CV > 36 % (Battelino 2019, pregnancy): warning. Percentages
    are of readings. Stateful; not after delivery."""
    d = derived(c)
    sub = d.cgm
    applicable, _, _ = _cgm_last(d)
    pts = np.flatnonzero(applicable)
    # each patient's window is a contiguous range of the CGM subset: window sums over the whole subset arrays
    lo = sub.search_all(c.now - P.CGM_REVIEW_S, right=True)[pts]
    hi = sub.search_all(c.now, right=True)[pts]
    win = Windows(lo, hi, len(sub.idx))
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
        pos, owner = ranges(lo[odd], hi[odd])
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

    def build() -> list[Out]:
        out: list[Out] = []
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
                NO_READINGS
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
            params = metrics | {
                "failing": failing,
                "window_days": 14,
                "range_low_mgdl": P.CGM_RANGE_LOW_MGDL,
                "range_high_mgdl": P.CGM_RANGE_HIGH_MGDL,
                "time_in_range_min_pct": P.CGM_TIR_MIN_PCT,
                "below_63_max_pct": P.CGM_TBR63_MAX_PCT,
                "below_54_max_pct": P.CGM_TBR54_MAX_PCT,
                "above_140_max_pct": P.CGM_TAR_MAX_PCT,
                "cv_max_pct": P.CGM_CV_MAX_PCT,
                "source": P.CGM_SOURCE,
            }
            out.append(("warning", "current", evidence, "cgm_range_review", params))
        return out

    return lazy("cgm_range_review", pts[fire_j], build, True, judged(applicable, judgeable))
