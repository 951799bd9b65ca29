"""A plain-Python reference of every alert rule: loops over patients and readings, no numpy, written from the
rule table (and the conventions in ``alerts/rules/segments.py``'s docstring), not from the vectorised code.

``reference(c)`` returns every candidate as ``RefCandidate(patient, rule, episode, severity, reading_ids)``,
the patients each stateful rule judged, and a few rule-specific numbers (slopes, CGM metrics, forecasts) to
compare with the engine's evidence.

It also holds literal transcriptions of Nightscout's ``lib/plugins/simplealarms.js`` and of the parts of
``lib/plugins/bgnow.js`` and ``lib/plugins/ar2.js`` that produce the AR2 forecast (nightscout/cgm-remote-monitor),
in Nightscout's own terms (entries with ``mills`` and ``mgdl``), for the equivalence tests.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from alerts import titration
from alerts.cohort import Cohort, record_of

# The numbers of the rule table, restated here on purpose.
MMOL = 18.01559
L2, L1, NICE_FLOOR = 54.0, 70.0, 4.0 * MMOL
GAP = 3600
FASTING_SEVERE = 130.0
KETONE = 200.0
DAY = 86400
CONTROL = 4
INFERRED = 16  # the context was inferred from the clock at ingest
# Meal windows of the local day: (first minute, cut-off, context of the window's first reading before the
# cut-off, context of the others); contexts 0 fasting, 1 before meal, 2 after meal, 3 bedtime, 4 night.
WINDOWS = ((0, 300, 4, 4), (300, 570, 0, 2), (720, 780, 1, 2), (960, 1170, 1, 2), (1380, 1440, 3, 3))
SMBG, CGM = 0, 1
FASTING, AFTER_MEAL = 0, 2
FR, NICE, ADA = 0, 1, 2
INSULIN = 2
METER_DEVICE, CGM_DEVICE = 1, 2
USUAL_POST_IS_1H = {FR: False, NICE: True, ADA: True}
POSTPARTUM_WINDOW = {ADA: (28, 84), NICE: (42, 91), FR: (42, 56)}
STATEFUL = (
    "pattern_above_target",
    "fasting_pattern",
    "fasting_trend_rising",
    "low_adherence",
    "no_data",
    "cgm_stale",
    "cgm_predicted_low",
    "cgm_rapid_fall",
    "cgm_range_review",
    "dose_review",
    "treatment_review",
    "doses_missing",
)
# The treatment record's rules: measurement kinds, urine grades (negative 0, trace 1, + 2, ++ 3, +++ 4), treatment
# codes, the level-1 hypoglycaemia a dose reduction answers, the diet's trial days per profile.
INSULIN_KIND, KETONE_KIND, BP_KIND = 0, 1, 3
DIET = 0
TRIAL = {FR: 7, NICE: 7, ADA: 14}
SLOTS = ("basal", "breakfast", "lunch", "dinner")


@dataclass(frozen=True)
class RefCandidate:
    patient: int
    rule: str
    episode: str
    severity: str
    reading_ids: tuple[int, ...]


@dataclass
class RefResult:
    candidates: set[RefCandidate] = field(default_factory=set)
    evaluated: dict[str, set[int]] = field(default_factory=lambda: {r: set() for r in STATEFUL})
    numbers: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    forecasts: dict[int, list[float]] = field(default_factory=dict)  # patient → AR2 points (computable only)
    doses: dict[tuple[int, str], tuple[str, float, float]] = field(default_factory=dict)  # dose_review: slot, units


def iso(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


class _Patient:
    """One patient's readings as plain lists."""

    def __init__(self, c: Cohort, cols: dict[str, list[Any]], p: int) -> None:
        a, b = int(c.offsets[p]), int(c.offsets[p + 1])
        self.p = p
        self.ids: list[int] = cols["reading_id"][a:b]
        self.t: list[int] = cols["t"][a:b]
        self.v: list[float] = cols["value"][a:b]
        self.kind: list[int] = cols["kind"][a:b]
        self.ctx: list[int] = cols["context"][a:b]
        self.mam: list[int] = cols["minutes_after_meal"][a:b]
        self.flags: list[int] = cols["flags"][a:b]
        self.day: list[int] = cols["local_day"][a:b]
        self.minute: list[int] = cols["local_minute"][a:b]
        self.n = b - a
        self._place_inferred()
        self.profile = int(c.profile[p])
        self.treatment = int(c.treatment[p])
        self.fasting_target = float(c.target_fasting[p])
        self.t1h = float(c.target_post_1h[p])
        self.t2h = float(c.target_post_2h[p])
        self.rpd = int(c.readings_per_day[p])
        self.delivery = int(c.delivery_day[p])
        self.devices = int(c.devices[p])
        self.today = int(c.today[p])
        self.meal: list[int] = cols["meal"][a:b]
        self._record(c, p)

    def _record(self, c: Cohort, p: int) -> None:
        """The treatment record of the patient: plan, protocol, dates, and her measurements as plain lists."""
        r = record_of(c)
        a, b = int(r.m_offsets[p]), int(r.m_offsets[p + 1])
        self.m_id: list[int] = r.measurement_id[a:b].tolist()
        self.m_t: list[int] = r.m_t[a:b].tolist()
        self.m_kind: list[int] = r.m_kind[a:b].tolist()
        self.m_value: list[float] = r.m_value[a:b].tolist()
        self.m_urine: list[int] = r.m_urine[a:b].tolist()
        self.m_sys: list[float] = r.m_systolic[a:b].tolist()
        self.m_dia: list[float] = r.m_diastolic[a:b].tolist()
        self.m_day: list[int] = r.m_local_day[a:b].tolist()
        self.plan_version = int(r.plan_version[p])
        self.dose_since: list[int] = r.dose_since[p].tolist()
        self.doses = [float(r.basal_units[p]), *(float(x) for x in r.prandial_units[p])]  # NaN: none
        self.protocol = titration.Protocol(
            step_units=_opt(r.step_units[p]),
            step_percent=_opt(r.step_percent[p]),
            window_days=int(r.window_days[p]),
            days_required=int(r.days_required[p]),
            max_step_units=float(r.max_step_units[p]),
            reduction_percent=_opt(r.reduction_percent[p]),
            reduction_units=_opt(r.reduction_units[p]),
            suggestions_enabled=bool(r.suggestions_enabled[p]),
        )
        self.start_day = int(r.start_day[p])
        self.postpartum_tested = bool(r.postpartum_tested[p])

    def _place_inferred(self) -> None:
        """Readings sent without a context, placed among the meter readings of their local day: the first of a
        meal window before its cut-off is fasting (before the meal), every other one after the meal; night and
        bedtime by the clock."""
        previous: tuple[int, int] | None = None  # (day, window) of the previous meter reading
        for i in range(self.n):
            if self.kind[i] != SMBG or not self.valid(i):
                continue
            m = self.minute[i]
            window = next(k for k in range(len(WINDOWS) - 1, -1, -1) if m >= WINDOWS[k][0])
            first = previous != (self.day[i], window) and m < WINDOWS[window][1]
            previous = (self.day[i], window)
            if self.flags[i] & INFERRED:
                self.ctx[i] = WINDOWS[window][2] if first else WINDOWS[window][3]

    def valid(self, i: int) -> bool:
        return not (self.flags[i] & CONTROL)

    def glyc(self, i: int) -> bool:
        """Glucose of the pregnancy still monitored: before the delivery day, and the delivery not yet come."""
        return self.valid(i) and self.day[i] < self.delivery and not self.delivered

    @property
    def delivered(self) -> bool:
        return self.delivery <= self.today

    def post_target(self, i: int) -> float:
        has_1h = not math.isnan(self.t1h)
        m = self.mam[i]
        use_1h = USUAL_POST_IS_1H[self.profile] if m < 0 else m <= 90
        return self.t1h if (use_1h and has_1h) else self.t2h

    def target(self, i: int) -> float | None:
        if self.kind[i] != SMBG or not self.glyc(i):
            return None
        if self.ctx[i] == FASTING:
            return self.fasting_target
        if self.ctx[i] == AFTER_MEAL:
            return self.post_target(i)
        return None


def reference(c: Cohort) -> RefResult:
    cols: dict[str, list[Any]] = {
        name: getattr(c, name).tolist()
        for name in (
            "reading_id",
            "t",
            "value",
            "kind",
            "context",
            "minutes_after_meal",
            "flags",
            "local_day",
            "local_minute",
            "meal",
        )
    }
    out = RefResult()
    for p in range(c.n_patients):
        pt = _Patient(c, cols, p)
        _hypo_rules(c, pt, out)
        _ketone(c, pt, out)
        _fasting_severe(c, pt, out)
        _above_target(c, pt, out)
        _consecutive(c, pt, out)
        _patterns(c, pt, out)
        _adherence(c, pt, out)
        _no_data(c, pt, out)
        _cgm(c, pt, out)
        _postpartum(pt, out)
        _measurements(c, pt, out)
        _dose_review(c, pt, out)
        _treatment_review(c, pt, out)
        _doses_missing(c, pt, out)
    return out


def _opt(x: Any) -> float | None:
    return None if math.isnan(float(x)) else float(x)


def _add(out: RefResult, pt: _Patient, rule: str, episode: str, severity: str, idx: list[int]) -> None:
    out.candidates.add(RefCandidate(pt.p, rule, episode, severity, tuple(pt.ids[i] for i in idx)))


def _runs_below_or_above(pt: _Patient, inside: Any) -> list[list[int]]:
    """Runs of glycaemic readings meeting ``inside(value)``: a glycaemic reading outside, or a gap over an hour,
    ends a run."""
    runs: list[list[int]] = []
    current: list[int] = []
    for i in range(pt.n):
        if not pt.glyc(i):
            continue
        if inside(pt.v[i]):
            if current and pt.t[i] - pt.t[current[-1]] <= GAP:
                current.append(i)
            else:
                if current:
                    runs.append(current)
                current = [i]
        else:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def _hypo_rules(c: Cohort, pt: _Patient, out: RefResult) -> None:
    cutoff = c.now - c.lookback_s
    specs = [("hypo_l2", L2, None, "urgent"), ("hypo_l1", L1, L2, "warning")]
    if pt.profile == NICE and pt.treatment == INSULIN:
        specs.append(("hypo_insulin_floor", NICE_FLOOR, L1, "warning"))
    for rule, threshold, worse, severity in specs:
        for run in _runs_below_or_above(pt, lambda v, th=threshold: v < th):
            recent = [i for i in run if pt.t[i] >= cutoff]
            if not recent:
                continue
            if worse is not None and any(pt.v[i] < worse for i in recent):
                continue
            _add(out, pt, rule, f"t{pt.t[run[0]]}", severity, run)


def _ketone(c: Cohort, pt: _Patient, out: RefResult) -> None:
    cutoff = c.now - c.lookback_s
    for run in _runs_below_or_above(pt, lambda v: v >= KETONE):
        if not any(pt.t[i] >= cutoff for i in run):
            continue
        start, end = pt.t[run[0]] - 2 * 3600, pt.t[run[-1]] + 2 * 3600
        if any(kind == KETONE_KIND and start <= t <= end for t, kind in zip(pt.m_t, pt.m_kind, strict=True)):
            continue  # the check was done: a ketone result within 2 h of the run
        _add(out, pt, "ketone_check", f"t{pt.t[run[0]]}", "warning", run)


def _by_day(pt: _Patient, idx: list[int]) -> dict[int, list[int]]:
    days: dict[int, list[int]] = {}
    for i in idx:
        days.setdefault(pt.day[i], []).append(i)
    return days


def _fasting_severe(c: Cohort, pt: _Patient, out: RefResult) -> None:
    if pt.profile != FR:
        return
    cutoff = c.now - c.lookback_s
    hits = [
        i
        for i in range(pt.n)
        if pt.glyc(i) and pt.kind[i] == SMBG and pt.ctx[i] == FASTING and pt.t[i] >= cutoff and pt.v[i] > FASTING_SEVERE
    ]
    for day, idx in _by_day(pt, hits).items():
        severity = "urgent" if any(not pt.flags[i] & INFERRED for i in idx) else "warning"
        _add(out, pt, "fasting_severe", f"d{iso(day)}", severity, idx)


def _above_target(c: Cohort, pt: _Patient, out: RefResult) -> None:
    cutoff = c.now - c.lookback_s
    for rule, ctx in (("fasting_above_target", FASTING), ("postprandial_above_target", AFTER_MEAL)):
        hits = []
        for i in range(pt.n):
            if pt.ctx[i] != ctx or pt.t[i] < cutoff:
                continue
            target = pt.target(i)
            if target is not None and pt.v[i] >= target:
                hits.append(i)
        for day, idx in _by_day(pt, hits).items():
            _add(out, pt, rule, f"d{iso(day)}", "info", idx)


def _consecutive(c: Cohort, pt: _Patient, out: RefResult) -> None:
    cutoff = c.now - c.lookback_s
    for ctx, name in ((FASTING, "fasting"), (AFTER_MEAL, "after_meal")):
        sequence = [i for i in range(pt.n) if pt.ctx[i] == ctx and pt.target(i) is not None]
        runs: list[list[int]] = []
        current: list[int] = []
        for i in sequence:
            target = pt.target(i)
            assert target is not None
            if pt.v[i] >= target:
                current.append(i)
            else:
                if current:
                    runs.append(current)
                current = []
        if current:
            runs.append(current)
        for run in runs:
            if len(run) >= 3 and any(pt.t[i] >= cutoff for i in run):
                _add(out, pt, "consecutive_above_target", f"t{pt.t[run[0]]}-{name}", "warning", run)


def _patterns(c: Cohort, pt: _Patient, out: RefResult) -> None:
    applicable = not pt.delivered
    week = [i for i in range(pt.n) if c.now - 7 * DAY < pt.t[i] <= c.now]
    # pattern_above_target
    with_target = [i for i in week if pt.target(i) is not None]
    above = [i for i in with_target if pt.v[i] >= (pt.target(i) or 0.0)]
    judgeable = len(with_target) >= 8
    if not applicable or judgeable:
        out.evaluated["pattern_above_target"].add(pt.p)
    if applicable and judgeable and len(above) * 100 >= 30 * len(with_target):
        _add(out, pt, "pattern_above_target", "current", "warning", above)
    # fasting_pattern
    fasting = [i for i in week if pt.kind[i] == SMBG and pt.ctx[i] == FASTING and pt.glyc(i)]
    high = [i for i in fasting if pt.v[i] > 115.0]
    judgeable = len(fasting) >= 4
    if not applicable or judgeable:
        out.evaluated["fasting_pattern"].add(pt.p)
    if applicable and judgeable and len(high) * 100 >= 50 * len(fasting):
        _add(out, pt, "fasting_pattern", "current", "warning", fasting)
    # fasting_trend_rising: least squares, x in days before now
    fortnight = [
        i
        for i in range(pt.n)
        if c.now - 14 * DAY < pt.t[i] <= c.now and pt.kind[i] == SMBG and pt.ctx[i] == FASTING and pt.glyc(i)
    ]
    xs = [(pt.t[i] - c.now) / 86400.0 for i in fortnight]
    ys = [pt.v[i] for i in fortnight]
    n = len(xs)
    slope = math.nan
    judgeable = False
    if n >= 7:
        sx = 0.0
        sy = 0.0
        for x, y in zip(xs, ys, strict=True):
            sx += x
            sy += y
        mx, my = sx / n, sy / n
        sxx = 0.0
        sxy = 0.0
        for x, y in zip(xs, ys, strict=True):
            sxx += (x - mx) * (x - mx)
            sxy += (x - mx) * (y - my)
        if sxx > 0:
            judgeable = True
            slope = sxy / sxx
    if not applicable or judgeable:
        out.evaluated["fasting_trend_rising"].add(pt.p)
    if applicable and judgeable and slope > 1.0:
        _add(out, pt, "fasting_trend_rising", "current", "info", fortnight)
        out.numbers[("fasting_trend_rising", pt.p)] = {"slope_mgdl_per_day": slope}


def _adherence(c: Cohort, pt: _Patient, out: RefResult) -> None:
    applicable = not pt.delivered and bool(pt.devices & METER_DEVICE)
    first = next((i for i in range(pt.n) if pt.valid(i)), None)
    judgeable = first is not None and pt.t[first] <= c.now - 7 * DAY
    if not applicable or judgeable:
        out.evaluated["low_adherence"].add(pt.p)
    if not (applicable and judgeable):
        return
    counted = [
        i for i in range(pt.n) if pt.kind[i] == SMBG and pt.valid(i) and pt.today - 7 <= pt.day[i] <= pt.today - 1
    ]
    if len(counted) * 100 < 80 * 7 * pt.rpd:
        _add(out, pt, "low_adherence", "current", "info", counted)


def _no_data(c: Cohort, pt: _Patient, out: RefResult) -> None:
    applicable = not pt.delivered and bool(pt.devices & METER_DEVICE) and not (pt.devices & CGM_DEVICE)
    last = None
    for i in range(pt.n):
        if pt.valid(i) and pt.t[i] <= c.now:
            last = i
    if not applicable or last is not None:
        out.evaluated["no_data"].add(pt.p)
    if applicable and last is not None and c.now - pt.t[last] > 48 * 3600:
        _add(out, pt, "no_data", "current", "warning", [last])


def _cgm(c: Cohort, pt: _Patient, out: RefResult) -> None:
    applicable = not pt.delivered and bool(pt.devices & CGM_DEVICE)
    cgm = [i for i in range(pt.n) if pt.kind[i] == CGM and pt.valid(i) and pt.t[i] <= c.now]
    if not applicable:
        for rule in ("cgm_stale", "cgm_predicted_low", "cgm_rapid_fall", "cgm_range_review"):
            out.evaluated[rule].add(pt.p)
        return
    # stale
    if cgm:
        out.evaluated["cgm_stale"].add(pt.p)
        last = cgm[-1]
        age = c.now - pt.t[last]
        if age > 30 * 60:
            _add(out, pt, "cgm_stale", "current", "urgent", [last])
        elif age > 15 * 60:
            _add(out, pt, "cgm_stale", "current", "warning", [last])
    fresh = bool(cgm) and c.now - pt.t[cgm[-1]] <= 15 * 60
    # predicted low: Nightscout's bgnow + ar2 on entries up to now
    if fresh:
        entries = [{"mills": pt.t[i] * 1000, "mgdl": pt.v[i], "i": i} for i in cgm]
        forecast = ns_ar2_forecast(entries, c.now * 1000)
        predicted = forecast["predicted"]
        if predicted and all(not math.isnan(x) for x in predicted):
            out.evaluated["cgm_predicted_low"].add(pt.p)
            out.forecasts[pt.p] = predicted
            if min(predicted[:4]) <= 55:
                used = sorted(e["i"] for e in forecast["used"])
                _add(out, pt, "cgm_predicted_low", "current", "urgent", used)
    # rapid fall: least squares over the 15 min up to the last reading
    if fresh:
        t_last = pt.t[cgm[-1]]
        window = [i for i in cgm if t_last - 15 * 60 <= pt.t[i] <= t_last]
        if len(window) >= 3 and t_last - pt.t[window[0]] >= 10 * 60:
            xs = [(pt.t[i] - t_last) / 60.0 for i in window]
            ys = [pt.v[i] for i in window]
            sx = sy = 0.0
            for x, y in zip(xs, ys, strict=True):
                sx += x
                sy += y
            mx, my = sx / len(xs), sy / len(xs)
            sxx = sxy = 0.0
            for x, y in zip(xs, ys, strict=True):
                sxx += (x - mx) * (x - mx)
                sxy += (x - mx) * (y - my)
            if sxx > 0:
                out.evaluated["cgm_rapid_fall"].add(pt.p)
                rate = sxy / sxx
                if rate <= -3.0:
                    _add(out, pt, "cgm_rapid_fall", "current", "warning", window)
                    out.numbers[("cgm_rapid_fall", pt.p)] = {"rate_mgdl_per_min": rate}
    # range review over 14 days
    window = [i for i in cgm if c.now - 14 * DAY < pt.t[i]]
    slots = {(c.now - pt.t[i]) // 300 for i in window}
    n = len(window)
    if len(slots) * 100 >= 70 * (14 * 288) and n >= 2:
        out.evaluated["cgm_range_review"].add(pt.p)
        values = [pt.v[i] for i in window]
        total = 0.0
        for v in values:
            total += v
        mean = total / n
        ss = 0.0
        for v in values:
            ss += (v - mean) * (v - mean)
        sd = math.sqrt(ss / (n - 1))
        cv = 100.0 * sd / mean
        n_in = sum(1 for v in values if 63 <= v <= 140)
        n_63 = sum(1 for v in values if v < 63)
        n_54 = sum(1 for v in values if v < 54)
        n_140 = sum(1 for v in values if v > 140)
        failing = n_in * 100 < 70 * n or n_63 * 100 >= 4 * n or n_54 * 100 >= n or n_140 * 100 >= 25 * n or cv > 36
        if failing:
            _add(out, pt, "cgm_range_review", "current", "warning", [])
            out.numbers[("cgm_range_review", pt.p)] = {
                "time_in_range_pct": 100.0 * n_in / n,
                "below_63_pct": 100.0 * n_63 / n,
                "below_54_pct": 100.0 * n_54 / n,
                "above_140_pct": 100.0 * n_140 / n,
                "cv_pct": cv,
                "mean_mgdl": mean,
                "gmi_pct": 3.31 + 0.02392 * mean,
                "data_pct": 100.0 * len(slots) / (14 * 288),
            }


def _postpartum(pt: _Patient, out: RefResult) -> None:
    if not pt.delivered or pt.postpartum_tested:
        return
    start, end = POSTPARTUM_WINDOW[pt.profile]
    days = pt.today - pt.delivery
    if start <= days <= end:
        _add(out, pt, "postpartum_test_due", "postpartum", "info", [])


def _measurements(c: Cohort, pt: _Patient, out: RefResult) -> None:
    """ketones_high and blood_pressure_high: each recent result before the delivery, on its own."""
    if pt.delivered:
        return
    for k in range(len(pt.m_t)):
        if pt.m_t[k] < c.now - c.lookback_s or pt.m_day[k] >= pt.delivery:
            continue
        episode = f"t{pt.m_t[k]}-m{pt.m_id[k]}"
        if pt.m_kind[k] == KETONE_KIND:
            value, urine = pt.m_value[k], pt.m_urine[k]
            blood = not math.isnan(value)
            if (blood and value >= 1.5) or urine >= 3:
                severity = "urgent"
            elif (blood and value >= 0.6) or urine == 2:
                severity = "warning"
            else:
                continue
            out.candidates.add(RefCandidate(pt.p, "ketones_high", episode, severity, ()))
        elif pt.m_kind[k] == BP_KIND:
            sys_, dia = pt.m_sys[k], pt.m_dia[k]
            if sys_ >= 160 or dia >= 110:
                severity = "urgent"
            elif sys_ >= 140 or dia >= 90:
                severity = "warning"
            else:
                continue
            out.candidates.add(RefCandidate(pt.p, "blood_pressure_high", episode, severity, ()))


def _slot(pt: _Patient, i: int) -> int:
    """The dose that preceded reading ``i``: 0 basal, 1–3 the meals' prandial doses; -1: none in the plan."""
    if pt.ctx[i] in (FASTING, 4) or pt.minute[i] < 6 * 60:
        slot = 0
    elif pt.ctx[i] == AFTER_MEAL and 0 <= pt.meal[i] <= 2:
        slot = pt.meal[i] + 1
    elif pt.minute[i] < 11 * 60:
        slot = 1
    elif pt.minute[i] < 16 * 60:
        slot = 2
    else:
        slot = 3
    if math.isnan(pt.doses[slot]):
        slot = -1 if math.isnan(pt.doses[0]) else 0
    return slot


def _dose_review(c: Cohort, pt: _Patient, out: RefResult) -> None:
    out.evaluated["dose_review"].add(pt.p)
    x = pt.protocol
    if pt.treatment != INSULIN or pt.plan_version == 0 or not x.suggestions_enabled or pt.delivered:
        return
    first_day = pt.today - x.window_days + 1

    def in_window(i: int) -> bool:
        return pt.glyc(i) and pt.t[i] <= c.now and pt.day[i] >= first_day

    version = pt.plan_version
    # the latest hypoglycaemia of the window after the dose that preceded it last changed
    hypos = [(i, _slot(pt, i)) for i in range(pt.n) if in_window(i) and pt.v[i] < L1]
    hypos = [(i, slot) for i, slot in hypos if slot >= 0 and pt.t[i] > pt.dose_since[slot]]
    reduced = -1
    if hypos:
        i, reduced = hypos[-1]
        current = pt.doses[reduced]
        episode = f"v{version}-reduction-{SLOTS[reduced]}"
        _add(out, pt, "dose_review", episode, "warning", [i])
        out.doses[(pt.p, episode)] = (SLOTS[reduced], current, titration.reduction(x, current))
    if math.isnan(pt.doses[0]) or reduced == 0:
        return
    by_day: dict[int, list[int]] = {}
    for i in range(pt.n):
        if in_window(i) and pt.t[i] > pt.dose_since[0] and pt.kind[i] == SMBG and pt.ctx[i] == FASTING:
            by_day.setdefault(pt.day[i], []).append(i)
    above = [day for day, idx in sorted(by_day.items()) if min(pt.v[i] for i in idx) >= pt.fasting_target]
    if len(above) >= x.days_required:
        episode = f"v{version}-increase"
        _add(out, pt, "dose_review", episode, "warning", [i for day in above for i in by_day[day]])
        out.doses[(pt.p, episode)] = ("basal", pt.doses[0], titration.increase(x, pt.doses[0]))


def _treatment_review(c: Cohort, pt: _Patient, out: RefResult) -> None:
    applicable = pt.treatment == DIET and not pt.delivered and pt.today - pt.start_day >= TRIAL[pt.profile]
    week = [i for i in range(pt.n) if c.now - 7 * DAY < pt.t[i] <= c.now and pt.target(i) is not None]
    above = [i for i in week if pt.v[i] >= (pt.target(i) or 0.0)]
    judgeable = len(week) >= 8
    if not applicable or judgeable:
        out.evaluated["treatment_review"].add(pt.p)
    if applicable and judgeable and len(above) * 100 >= 30 * len(week):
        _add(out, pt, "treatment_review", "current", "warning", above)


def _doses_missing(c: Cohort, pt: _Patient, out: RefResult) -> None:
    out.evaluated["doses_missing"].add(pt.p)
    if pt.treatment != INSULIN or pt.delivered:
        return
    doses = [
        t for t, kind in zip(pt.m_t, pt.m_kind, strict=True) if kind == INSULIN_KIND and c.now - 14 * DAY < t <= c.now
    ]
    if doses and max(doses) <= c.now - 3 * DAY:
        out.candidates.add(RefCandidate(pt.p, "doses_missing", "current", "info", ()))


# ---------------------------------------------------------------------------------------------------------------
# Nightscout transcriptions (nightscout/cgm-remote-monitor; AGPL-3.0): the algorithms, in Python
# ---------------------------------------------------------------------------------------------------------------


def ns_simplealarm_level(entries: list[dict[str, Any]], time_ms: int, thresholds: dict[str, float]) -> int:
    """lib/plugins/simplealarms.js checkNotifications: the level (2 urgent, 1 warn, 0 none) and sign (high
    positive, low negative) for the last entry. Thresholds: bg_high, bg_target_top, bg_target_bottom, bg_low."""
    last = None
    for e in entries:  # sbx.lastSGVEntry(): the newest entry not in the future
        if e["mills"] <= time_ms:
            last = e
    if last is None or not (last["mgdl"] > 39) or not (time_ms - last["mills"] < 10 * 60 * 1000):
        return 0
    sgv = last["mgdl"]
    if sgv > thresholds["bg_high"]:
        return 2
    if sgv > thresholds["bg_target_top"]:
        return 1
    if sgv < thresholds["bg_low"]:
        return -2
    if sgv < thresholds["bg_target_bottom"]:
        return -1
    return 0


def _js_round(x: float) -> float:
    """JavaScript Math.round: nearest integer, halves towards +infinity."""
    if math.isnan(x):
        return math.nan
    return float(math.floor(x + 0.5))


def ns_bgnow(entries: list[dict[str, Any]], time_ms: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """lib/plugins/bgnow.js: fillBuckets (4 buckets of 5 min around the last entry), analyzeBucket,
    mostRecentBucket, previousBucket, calcDelta. Returns (bgnow = the recent bucket, delta)."""
    last_mills = None
    for e in entries:
        if e["mills"] <= time_ms:
            last_mills = e["mills"]
    if last_mills is None:
        return None, None
    offset = 2.5 * 60 * 1000
    bucket_ms = 5 * 60 * 1000
    buckets: list[dict[str, Any]] = []
    for index in range(4):
        from_mills = last_mills - offset - index * bucket_ms
        buckets.append({"index": index, "fromMills": from_mills, "toMills": from_mills + bucket_ms, "sgvs": []})
    for sgv in entries:
        if sgv["mills"] > time_ms:
            continue
        for bucket in buckets:  # buckets.find: the first bucket containing it
            if bucket["fromMills"] <= sgv["mills"] <= bucket["toMills"]:
                bucket["sgvs"].append(sgv)
                break
    analysed = []
    for bucket in buckets:
        if not bucket["sgvs"]:
            analysed.append({**bucket, "isEmpty": True})
            continue
        details: dict[str, Any] = {}
        sgvs = [s for s in bucket["sgvs"] if s["mgdl"] > 39]  # notError
        total = 0.0
        for s in sgvs:
            total += s["mgdl"]
        mean = total / len(sgvs) if sgvs else math.nan
        if not math.isnan(mean):
            details["mean"] = mean
        most_recent = None
        for s in sgvs:
            if most_recent is None or s["mills"] > most_recent["mills"]:
                most_recent = s
        if most_recent is not None:
            details["last"] = most_recent["mgdl"]
            details["mills"] = most_recent["mills"]
        analysed.append({**details, **bucket})
    recent = next((b for b in analysed if not b.get("isEmpty")), None)
    previous = None
    if recent is not None:
        for b in analysed:
            if "mills" in b and "mills" in recent and b["mills"] < recent["mills"] and not b.get("isEmpty"):
                previous = b
                break
    if recent is None or previous is None:
        return recent, None
    absolute = recent.get("mean", math.nan) - previous["mean"]
    elapsed = (recent["mills"] - previous["mills"]) / 60000
    interpolated = elapsed > 9
    mean5 = recent["mean"] - absolute / elapsed * 5 if interpolated else recent["mean"] - absolute
    delta = {"absolute": absolute, "elapsedMins": elapsed, "interpolated": interpolated, "mean5MinsAgo": mean5}
    delta["previous"] = previous
    return recent, delta


def ns_ar2_forecast(entries: list[dict[str, Any]], time_ms: int) -> dict[str, Any]:
    """lib/plugins/ar2.js forecast(): okToForecast, initAR2, six pushPoint steps (incrementAR2, ar2Point)."""
    bgnow, delta = ns_bgnow(entries, time_ms)
    result: dict[str, Any] = {"predicted": [], "used": []}
    if bgnow is None or delta is None:
        return result
    mean = bgnow.get("mean")
    mean5 = delta["mean5MinsAgo"]
    # okToForecast: bgnow.mean >= BG_MIN && delta.mean5MinsAgo (truthy) && _.isNumber(...)
    if mean is None or not (mean >= 36) or not mean5 or math.isnan(mean5):
        return result
    prev = math.log(mean5 / 140) if mean5 > 0 else math.nan
    curr = math.log(mean / 140)
    predicted: list[float] = []
    for _ in range(6):
        prev, curr = curr, -0.723 * prev + 1.716 * curr
        mgdl = _js_round(140 * math.exp(curr)) if not math.isnan(curr) else math.nan
        predicted.append(math.nan if math.isnan(mgdl) else max(36.0, min(400.0, mgdl)))
    result["predicted"] = predicted
    result["used"] = list(bgnow["sgvs"]) + list(delta["previous"]["sgvs"])
    return result
