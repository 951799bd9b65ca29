"""Hypoglycaemia: runs of glycaemic readings below a threshold (ADA levels 1 and 2, NICE's floor on insulin).

Each rule fires once per *run*: consecutive glycaemic readings of the patient (meter and CGM alike) that are all
below its threshold, no two more than 60 min apart. The episode key is ``"t<epoch s of the run's first
reading>"``, stable while later readings extend the run. A run fires when it holds a recent reading (``t >=
now - lookback``) and no recent reading below the next, more severe threshold (that rule covers the episode).
The thresholds and their sources are in :mod:`alerts.profiles`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from alerts import profiles as P
from alerts.cohort import I8, PROFILE, TREATMENT, B, Candidates, Cohort
from alerts.rules.build import HM, Batch, Out, candidates, date, iso, lazy
from alerts.rules.segments import derived, episode_runs, seg_sum

URGENT_LOW, LOW, IN_RANGE, HIGH, URGENT_HIGH = -2, -1, 0, 1, 2


def threshold_levels(
    values: Any,
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


# What each rule's message cites beside its threshold: the guideline's own statement of the level.
_LEVEL: dict[str, dict[str, Any]] = {
    "hypo_l2": {"source": P.HYPO_SOURCE},
    # ADA states level 1 as "54–69 mg/dL" (3.0–3.9 mmol/L): below 70, not below 54.
    "hypo_l1": {"source": P.HYPO_SOURCE, "level_low_mgdl": P.HYPO_L2_MGDL, "level_high_mgdl": P.HYPO_L1_MGDL - 1},
    "hypo_insulin_floor": {"source": P.NICE_INSULIN_FLOOR_SOURCE},
}
_SEVERITY = {"hypo_l2": "urgent", "hypo_l1": "warning", "hypo_insulin_floor": "warning"}


def _hypo(c: Cohort, rule: str, threshold: float, below: float, patients: B | None) -> Candidates:
    """Runs of glycaemic readings < ``threshold`` that hold a recent reading and no recent reading < ``below``
    (the more severe rule covers those); only ``patients`` when given."""
    d = derived(c)
    sub = d.low
    # urgent_low = below, low = threshold: which readings lie under each (strictly, as ADA's "<").
    levels = threshold_levels(sub.v, below, threshold, math.inf, math.inf)
    sel = levels <= LOW
    if patients is not None:
        sel &= patients[sub.pid]
    pos, lo, hi = episode_runs(d, sub, sel)
    if len(lo) == 0:
        return candidates(rule, [])
    recent = sub.t[pos] >= d.cutoff
    worse = (recent & (levels[pos] == URGENT_LOW)).astype(np.int64)
    fire = np.flatnonzero(recent[hi - 1] & (seg_sum(worse, lo, hi) == 0))
    members, f_lo, f_hi = sub.idx[pos], lo[fire], hi[fire]

    def build() -> list[Out]:
        batch = Batch.of_ranges(c, members, f_lo, f_hi)
        severity, level = _SEVERITY[rule], _LEVEL[rule]
        ids, vs, ts, days, minutes = batch.ids, batch.v, batch.t, batch.day, batch.minute
        dates = {day: date(day) for day in set(days)}
        gap = P.EPISODE_MAX_GAP_S
        out: list[Out] = []
        append = out.append
        for a, b in zip(batch.lo, batch.hi, strict=True):
            values = vs[a:b]
            ta, tb = ts[a], ts[b - 1]
            first_local = f"{dates[days[a]]} {HM[minutes[a]]}"
            first_at = iso(ta)
            if b - a == 1:
                nadir, k = values[0], a
                last_local = nadir_local = first_local
                last_at = nadir_at = first_at
            else:
                nadir = min(values)
                k = a + values.index(nadir)
                last_local = f"{dates[days[b - 1]]} {HM[minutes[b - 1]]}"
                nadir_local = f"{dates[days[k]]} {HM[minutes[k]]}"
                last_at, nadir_at = iso(tb), iso(ts[k])
            evidence = {
                "reading_ids": ids[a:b],
                "values_mgdl": values,
                "measured_at": ts[a:b],
                "target_mgdl": threshold,
                "nadir_mgdl": nadir,
                "nadir_reading_id": ids[k],
                "episode_start": ta,
                "episode_end": tb,
                "max_gap_s": gap,
            }
            params = {
                "threshold_mgdl": threshold,
                "count": b - a,
                "first_at": first_at,
                "first_local": first_local,
                "last_at": last_at,
                "last_local": last_local,
                "nadir_mgdl": nadir,
                "nadir_at": nadir_at,
                "nadir_local": nadir_local,
                **level,
            }
            append((severity, f"t{ta}", evidence, rule, params))
        return out

    return lazy(rule, sub.pid[pos[f_lo]], build)


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
