"""Adherence and silence of meter and app patients (stateful; not after delivery).

- ``low_adherence``: fewer than 80 % of the prescribed meter readings over the last 7 full local days (info),
  judged against the patient's own prescription (readings per day);
- ``no_data``: a meter or app patient without a CGM has sent nothing for more than 48 h (warning).
Numbers: :mod:`alerts.profiles`.
"""

from __future__ import annotations

import numpy as np

from alerts import profiles as P
from alerts.cohort import DEVICE_CGM, DEVICE_METER, FLAG_CONTROL, I64, Candidates, Cohort
from alerts.rules.build import Out, date, iso, lazy, local_of, readings
from alerts.rules.segments import SMBG, Derived, bounds, derived, judged, ranges, seg_search, take


def _first_valid(d: Derived) -> I64:
    """Per patient, the index of the first valid reading (-1 if none)."""
    c = d.c
    valid = d.valid_idx
    k = np.searchsorted(valid, c.offsets[:-1])
    j = take(valid, np.where(k < len(valid), k, -1), -1)
    return np.where((j >= 0) & (j < c.offsets[1:]), j, -1)


def _last_valid_before(d: Derived, end: I64) -> I64:
    """Per patient, the index of the last valid reading before index ``end[p]`` in its segment (-1 if none)."""
    valid = d.valid_idx
    j = take(valid, np.searchsorted(valid, end) - 1, -1)
    return np.where(j >= d.c.offsets[:-1], j, -1)


def low_adherence(c: Cohort) -> Candidates:
    """Meter/app patients: fewer than 80 % of the prescribed meter readings over the last 7 full local days
    (today-7 .. today-1): info. Judged once the patient's first reading is at least 7 days old. Stateful; not
    after delivery."""
    d = derived(c)
    applicable = ~d.delivered & ((c.devices & DEVICE_METER) != 0)
    first = _first_valid(d)
    judgeable = (first >= 0) & (take(c.t, first, c.now) <= c.now - P.ADHERENCE_DAYS * 86400)
    todo = np.flatnonzero(applicable & judgeable)
    # local days today-7 .. today-1 lie within [now - 10 days, now + 2 days) whatever the UTC offset; the
    # exact selection is by local_day.
    t = c.t
    m = len(todo)
    seg_lo, seg_hi = c.offsets[:-1][todo], c.offsets[1:][todo]
    both = seg_search(
        lambda pos: t[pos],
        np.concatenate([seg_lo, seg_lo]),
        np.concatenate([seg_hi, seg_hi]),
        np.repeat(np.array([c.now - 10 * 86400, c.now + 2 * 86400], dtype=np.int64), m),
        right=False,
    )
    lo_all, hi_all = both[:m], both[m:]
    pos, owner = ranges(lo_all, hi_all)
    p_of = todo[owner]
    rel = c.today[p_of].astype(np.int64) - c.local_day[pos].astype(np.int64)  # 1..7 in the window
    counted = (rel >= 1) & (rel <= P.ADHERENCE_DAYS) & (c.kind[pos] == SMBG) & ((c.flags[pos] & FLAG_CONTROL) == 0)
    day_key = p_of[counted] * P.ADHERENCE_DAYS + (P.ADHERENCE_DAYS - rel[counted])
    per_day = np.bincount(day_key, minlength=d.P * P.ADHERENCE_DAYS).reshape(d.P, P.ADHERENCE_DAYS)
    count = per_day.sum(axis=1)
    expected = P.ADHERENCE_DAYS * c.readings_per_day.astype(np.int64)
    fire = applicable & judgeable & (count * 100 < P.ADHERENCE_MIN_PCT * expected)

    def build() -> list[Out]:
        out: list[Out] = []
        c_pos, c_p = pos[counted], p_of[counted]
        b_lo, b_hi = bounds(c_p, d.P)
        for p in np.flatnonzero(fire):
            members = c_pos[b_lo[p] : b_hi[p]]
            cnt, exp = int(count[p]), int(expected[p])
            pct = 100.0 * cnt / exp
            first_day, last_day = int(c.today[p]) - P.ADHERENCE_DAYS, int(c.today[p]) - 1
            evidence = readings(c, members) | {
                "readings": cnt,
                "expected": exp,
                "readings_per_day": int(c.readings_per_day[p]),
                "percent": pct,
                "threshold_percent": P.ADHERENCE_MIN_PCT,
                "per_day": per_day[p].tolist(),
                "first_date": date(first_day),
                "last_date": date(last_day),
            }
            params = {
                "readings": cnt,
                "expected": exp,
                "readings_per_day": int(c.readings_per_day[p]),
                "percent": pct,
                "threshold_percent": P.ADHERENCE_MIN_PCT,
                "per_day": evidence["per_day"],
                "first_date": evidence["first_date"],
                "last_date": evidence["last_date"],
                "window_days": P.ADHERENCE_DAYS,
                "source": P.ADHERENCE_SOURCE,
            }
            out.append(("info", "current", evidence, "low_adherence", params))
        return out

    return lazy("low_adherence", np.flatnonzero(fire), build, True, judged(applicable, judgeable))


def no_data(c: Cohort) -> Candidates:
    """Meter/app patients without a CGM: no reading for more than 48 h (and at least one before): warning.
    Stateful; not after delivery."""
    d = derived(c)
    applicable = ~d.delivered & ((c.devices & DEVICE_METER) != 0) & ((c.devices & DEVICE_CGM) == 0)
    last = _last_valid_before(d, d.end_now)
    judgeable = last >= 0
    age = c.now - take(c.t, last, c.now)
    fire = applicable & judgeable & (age > P.METER_SILENT_S)

    def build() -> list[Out]:
        out: list[Out] = []
        for p in np.flatnonzero(fire):
            i = int(last[p])
            # nothing in the evidence or message changes while the silence lasts: the alert is not updated every pass
            evidence = readings(c, np.array([i])) | {"threshold_s": P.METER_SILENT_S}
            params = {
                "last_mgdl": float(c.value[i]),
                "last_at": iso(int(c.t[i])),
                "last_local": local_of(c, i),
                "threshold_hours": P.METER_SILENT_S // 3600,
                "source": P.STALE_SOURCE,
            }
            out.append(("warning", "current", evidence, "no_data", params))
        return out

    return lazy("no_data", np.flatnonzero(fire), build, True, judged(applicable, judgeable))
