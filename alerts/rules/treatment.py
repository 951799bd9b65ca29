"""Rules of the treatment record: the plan in force, the team's titration protocol and the logged doses.

- ``dose_review`` (warning, decision support: a clinician applies a suggestion by writing a new plan version,
  never the engine): on insulin, with the team's suggestions on —
  *increase*: a basal regimen and the fasting readings above target on at least N of the last M local days
  (:mod:`alerts.titration`) → the basal dose plus the protocol's step; *reduction*: a hypoglycaemia (ADA level 1,
  < 70 mg/dL) in the last M days → the dose that preceded it (:data:`alerts.profiles.DOSE_REVIEW_NIGHT_END_MIN`)
  minus the protocol's reduction; a basal reduction replaces a basal increase. The plan's age does not matter: the
  last M days' readings count, except those measured before the plan last changed that dose from another one (a
  changed dose is judged on its own days, so applying a suggestion clears it rather than raising the next step
  at once). Stateful, one episode per plan version and suggestion (``v<version>-increase``,
  ``v<version>-reduction-<slot>``): a new version resolves the suggestions made on the previous one.
- ``treatment_review`` (warning): on diet only, after the profile's trial period since the diagnosis (else the
  enrolment), the past week's readings above target by the DECIDE working rule → review the treatment. Stateful.
- ``doses_missing`` (info): on insulin, doses logged in the engine's window but none in the last 3 days. Stateful.

None of them judges a delivered patient (monitoring has ended). Numbers and sources: :mod:`alerts.profiles`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alerts import profiles as P
from alerts import titration
from alerts.cohort import (
    CONTEXT,
    DOSE_SLOTS,
    F64,
    I64,
    MEAL,
    MEASUREMENT,
    PROFILE,
    TREATMENT,
    B,
    Candidates,
    Cohort,
    Record,
    record_of,
)
from alerts.rules.build import NO_READINGS, Batch, Out, date, iso, lazy, local
from alerts.rules.segments import bounds, derived, group_days, judged, ranges

BASAL = 0  # index of DOSE_SLOTS
_NIGHT_CONTEXTS = (CONTEXT["fasting"], CONTEXT["night"])
_TRIAL_DAYS = np.array([P.TRIAL_DAYS[code] for code, _ in sorted(PROFILE.items(), key=lambda x: x[1])], np.int64)


def half_up(x: F64) -> F64:
    """Rounded to the nearest half unit, halves up (as :func:`alerts.titration.half_up`)."""
    out: F64 = np.floor(x * 2 + 0.5) / 2
    return out


def _change(current: F64, units: F64, percent: F64, cap: F64) -> F64:
    """The step of a protocol: the larger of its units and its percentage of the current dose (NaN: not set),
    rounded to half units, at least a half unit, capped (as alerts.titration.increase / reduction)."""
    step = np.maximum(np.nan_to_num(units), current * np.nan_to_num(percent) / 100)
    out: F64 = np.minimum(np.maximum(half_up(step), 0.5), cap)
    return out


def doses(r: Record) -> F64:
    """Per patient the plan's dose of each slot of DOSE_SLOTS, (p, 4); NaN: no dose."""
    return np.concatenate([r.basal_units[:, None], r.prandial_units], axis=1)


def protocol_of(r: Record, p: int) -> titration.Protocol:
    """Patient ``p``'s protocol as typed values (the ``protocol`` param)."""

    def opt(a: F64) -> float | None:
        x = float(a[p])
        return None if np.isnan(x) else x

    return titration.Protocol(
        step_units=opt(r.step_units),
        step_percent=opt(r.step_percent),
        window_days=int(r.window_days[p]),
        days_required=int(r.days_required[p]),
        max_step_units=float(r.max_step_units[p]),
        reduction_percent=opt(r.reduction_percent),
        reduction_units=opt(r.reduction_units),
        suggestions_enabled=bool(r.suggestions_enabled[p]),
    )


def _fasting_days(c: Cohort, r: Record, patients: B) -> tuple[I64, I64, I64, I64, B]:
    """The fasting readings of the window of each patient of ``patients``: measured after her basal dose last
    changed, on one of her last M local days, up to now; grouped by day. Returns the readings (cohort indices, in day
    groups), the groups' (lo, hi) and patient, and whether each day was above target (its lowest fasting reading at
    or above the target: a re-test in target clears the day)."""
    d = derived(c)
    sub = d.fasting
    who = np.flatnonzero(patients)
    lo = sub.search(r.dose_since[who, BASAL], right=True, patients=who)
    hi = sub.search(np.full(len(who), c.now, dtype=np.int64), right=True, patients=who)
    pos, owner = ranges(lo, hi)
    pid = who[owner]
    idx = sub.idx[pos]
    day = c.local_day[idx]
    keep = day > c.today[pid].astype(np.int64) - r.window_days[pid]
    idx, pid, day = idx[keep], pid[keep], day[keep]
    order, g_lo, g_hi = group_days(pid, day)
    idx, pid = idx[order], pid[order]
    g_pid = pid[g_lo] if len(g_lo) else np.zeros(0, np.int64)
    lowest = np.minimum.reduceat(c.value[idx], g_lo) if len(g_lo) else np.zeros(0)
    above: B = np.asarray(lowest >= c.target_fasting[g_pid], dtype=np.bool_)
    return idx, g_lo, g_hi, g_pid, above


def _slot_of(c: Cohort, i: I64, r: Record, pid: I64) -> I64:
    """The slot (index of DOSE_SLOTS) of the dose that preceded readings ``i`` of patients ``pid``: basal for a
    fasting or night reading or one before 06:00; else the meal the reading follows (its stated meal after a meal,
    else by the clock); the basal one when the plan has no dose for that meal; -1 when it has neither."""
    d = derived(c)
    context = d.context[i]
    minute = c.local_minute[i].astype(np.int64)
    night = np.isin(context, _NIGHT_CONTEXTS) | (minute < P.DOSE_REVIEW_NIGHT_END_MIN)
    by_clock = 1 + np.searchsorted(np.array(P.DOSE_REVIEW_MEAL_ENDS_MIN), minute, side="right")
    meal = c.meal[i].astype(np.int64)
    stated = (context == CONTEXT["after_meal"]) & (meal >= MEAL["breakfast"]) & (meal <= MEAL["dinner"])
    slot = np.where(night, BASAL, np.where(stated, meal + 1, by_clock)).astype(np.int64)
    dose = doses(r)
    has = ~np.isnan(dose[pid, slot])
    slot = np.where(has, slot, np.where(~np.isnan(r.basal_units[pid]), BASAL, -1))
    return slot.astype(np.int64)


def dose_review(c: Cohort) -> Candidates:
    """Suggest a basal increase (fasting above target on N of the last M days) or the reduction of the dose that
    preceded a hypoglycaemia, per the team's protocol: warning, stateful (see the module's docstring)."""
    d = derived(c)
    r = record_of(c)
    applicable: B = (c.treatment == TREATMENT["insulin"]) & (r.plan_version > 0) & r.suggestions_enabled & ~d.delivered
    dose = doses(r)
    # reductions: the latest hypoglycaemia of the window of each applicable patient measured after the dose that
    # preceded it last changed
    low = d.low
    who = np.flatnonzero(applicable)
    lo = low.search(c.now - (r.window_days[who].astype(np.int64) + 1) * 86400, right=True, patients=who)
    hi = low.search(np.full(len(who), c.now, dtype=np.int64), right=True, patients=who)
    pos, owner = ranges(lo, hi)
    i = low.idx[pos]
    pid = who[owner]
    hypo = (c.value[i] < P.HYPO_L1_MGDL) & (c.local_day[i] > c.today[pid].astype(np.int64) - r.window_days[pid])
    i, pid = i[hypo], pid[hypo]
    slot = _slot_of(c, i, r, pid)
    keep = slot >= 0
    keep[keep] = c.t[i[keep]] > r.dose_since[pid[keep], slot[keep]]
    i, pid, slot = i[keep], pid[keep], slot[keep]
    last = np.ones(len(pid), dtype=np.bool_)
    last[:-1] = pid[1:] != pid[:-1]  # readings are in (patient, time) order: the last of each patient
    h_i, h_pid, h_slot = i[last], pid[last], slot[last]
    h_current = dose[h_pid, h_slot]
    h_step = _change(h_current, r.reduction_units[h_pid], r.reduction_percent[h_pid], r.max_step_units[h_pid])
    h_suggested = np.maximum(h_current - h_step, 0.0)
    basal_reduced = np.zeros(c.n_patients, dtype=np.bool_)
    basal_reduced[h_pid[h_slot == BASAL]] = True
    # increases: fasting above target on N of the last M days, on a basal regimen not being reduced
    on_basal = applicable & ~np.isnan(r.basal_units)
    f_idx, g_lo, g_hi, g_pid, above = _fasting_days(c, r, on_basal)
    days_above = np.bincount(g_pid[above], minlength=c.n_patients)
    rise = on_basal & ~basal_reduced & (days_above >= r.days_required)
    u_pid = np.flatnonzero(rise)
    u_current = r.basal_units[u_pid]
    u_step = _change(u_current, r.step_units[u_pid], r.step_percent[u_pid], r.max_step_units[u_pid])
    u_suggested = u_current + u_step
    # the candidates in patient order: a patient's increase before her reduction
    patient = np.concatenate([u_pid, h_pid])
    is_rise = np.concatenate([np.ones(len(u_pid), np.bool_), np.zeros(len(h_pid), np.bool_)])
    row = np.concatenate([np.arange(len(u_pid)), np.arange(len(h_pid))])
    order = np.lexsort((~is_rise, patient))
    patient, is_rise, row = patient[order], is_rise[order], row[order]

    def build() -> list[Out]:
        # the above-target days of the patients whose basal dose goes up, their readings in day groups
        sel = np.flatnonzero(above & rise[g_pid])
        batch = Batch.of_ranges(c, f_idx, g_lo[sel], g_hi[sel])
        days_of: dict[int, list[int]] = {}
        for g, p in enumerate(g_pid[sel].tolist()):
            days_of.setdefault(p, []).append(g)
        hypo = Batch(c, h_i, np.arange(len(h_i), dtype=np.int64), np.arange(1, len(h_i) + 1, dtype=np.int64))
        out: list[Out] = []
        for p, rising, k in zip(patient.tolist(), is_rise.tolist(), row.tolist(), strict=True):
            protocol = protocol_of(r, p)
            version = int(r.plan_version[p])
            params: dict[str, Any] = {
                "plan_version": version,
                "days_above": int(days_above[p]),
                "days_window": protocol.window_days,
                "days_required": protocol.days_required,
                "target_mgdl": float(c.target_fasting[p]),
                "protocol": protocol.as_json(),
                "protocol_default": bool(r.protocol_default[p]),
                "source": titration.DEFAULT_SOURCE if r.protocol_default[p] else "care team protocol",
            }
            if rising:
                groups = days_of.get(p, [])
                evidence: dict[str, Any] = {
                    "reading_ids": [x for g in groups for x in batch.evidence(g)["reading_ids"]],
                    "values_mgdl": [x for g in groups for x in batch.evidence(g)["values_mgdl"]],
                    "measured_at": [x for g in groups for x in batch.evidence(g)["measured_at"]],
                }
                current, suggested = float(u_current[k]), float(u_suggested[k])
                params |= {
                    "slot": "basal",
                    "product": r.basal_product[p],
                    "current_units": current,
                    "suggested_units": suggested,
                    "change_units": suggested - current,
                    "days": [date(batch.day[batch.lo[g]]) for g in groups],
                }
                episode, code = f"v{version}-increase", "dose_review.increase"
            else:
                slot = DOSE_SLOTS[int(h_slot[k])]
                current, suggested = float(h_current[k]), float(h_suggested[k])
                evidence = hypo.evidence(k)
                params |= {
                    "slot": slot,
                    "product": r.basal_product[p] if slot == "basal" else r.prandial_product[p],
                    "current_units": current,
                    "suggested_units": suggested,
                    "change_units": suggested - current,
                    "threshold_mgdl": P.HYPO_L1_MGDL,
                    "hypo": hypo.reading(k),
                }
                episode, code = f"v{version}-reduction-{slot}", "dose_review.reduction"
            evidence |= {"plan_version": version, "current_units": current, "suggested_units": suggested}
            out.append(("warning", episode, evidence, code, params))
        return out

    return lazy("dose_review", patient, build, True, np.ones(c.n_patients, dtype=np.bool_))


def treatment_review(c: Cohort) -> Candidates:
    """On diet only, once the profile's trial period since the diagnosis (else the enrolment) is over: ≥ 30 % of
    the past 7 days' meter readings with a target at or above it, out of at least 8 (DECIDE working rule) →
    review the treatment (warning). Stateful; not after delivery."""
    d = derived(c)
    r = record_of(c)
    fw, pw = d.window(True, P.PATTERN_WINDOW_S), d.window(False, P.PATTERN_WINDOW_S)
    n = fw.n + pw.n
    k = np.bincount(fw.pid[fw.above], minlength=d.P) + np.bincount(pw.pid[pw.above], minlength=d.P)
    trial = _TRIAL_DAYS[c.profile.astype(np.int64)]
    since = c.today.astype(np.int64) - r.start_day.astype(np.int64)
    applicable = (c.treatment == TREATMENT["diet"]) & ~d.delivered & (since >= trial)
    judgeable = n >= P.PATTERN_MIN_READINGS
    fire = applicable & judgeable & (k * 100 >= P.PATTERN_ABOVE_PCT * n)

    def build() -> list[Out]:
        f_sel, p_sel = fw.above & fire[fw.pid], pw.above & fire[pw.pid]
        idx = np.concatenate([fw.idx[f_sel], pw.idx[p_sel]])
        pid = np.concatenate([fw.pid[f_sel], pw.pid[p_sel]])
        order = np.lexsort((idx, pid))
        idx, pid = idx[order], pid[order]
        firing = np.flatnonzero(fire)
        b_lo, b_hi = np.searchsorted(pid, firing), np.searchsorted(pid, firing, side="right")
        batch = Batch(c, idx, b_lo.astype(np.int64), b_hi.astype(np.int64))
        out: list[Out] = []
        for g, p in enumerate(firing.tolist()):
            nn, kk = int(n[p]), int(k[p])
            prof = P.PROFILES[int(c.profile[p])].code
            facts: dict[str, Any] = {
                "percent_above": 100.0 * kk / nn,
                "readings_above": kk,
                "readings_with_target": nn,
                "threshold_percent": P.PATTERN_ABOVE_PCT,
                "min_readings": P.PATTERN_MIN_READINGS,
                "window_days": 7,
                "trial_days": int(trial[p]),
                "start_date": date(int(r.start_day[p])),
                "days_since_start": int(since[p]),
                "profile": prof,
            }
            out.append(
                (
                    "warning",
                    "current",
                    batch.evidence(g) | facts,
                    "treatment_review",
                    facts | {"source": P.TREATMENT_REVIEW_SOURCE},
                )
            )
        return out

    return lazy("treatment_review", np.flatnonzero(fire), build, True, judged(applicable, judgeable))


def doses_missing(c: Cohort) -> Candidates:
    """On insulin, doses logged in the last 14 days but none in the last 3: info (the logbook, or the injections,
    stopped). Stateful; not after delivery."""
    d = derived(c)
    r = record_of(c)
    patient = np.repeat(np.arange(c.n_patients, dtype=np.int64), np.diff(r.m_offsets))
    dose = np.flatnonzero(
        (r.m_kind == MEASUREMENT["insulin"]) & (r.m_t > c.now - P.DOSES_LOOKBACK_S) & (r.m_t <= c.now)
    )
    owner = patient[dose]
    lo, hi = bounds(owner, c.n_patients)
    has = hi > lo
    last = np.where(has, dose[np.maximum(hi - 1, 0)] if len(dose) else 0, -1)
    last_t = np.where(has, r.m_t[np.maximum(last, 0)] if len(r.m_t) else 0, 0)
    applicable = (c.treatment == TREATMENT["insulin"]) & ~d.delivered
    fire = applicable & has & (last_t <= c.now - P.DOSES_MISSING_S)

    def build() -> list[Out]:
        out: list[Out] = []
        for p in np.flatnonzero(fire).tolist():
            k = int(last[p])
            t = int(r.m_t[k])
            params = {
                "last_dose_at": iso(t),
                "last_dose_local": local(int(r.m_local_day[k]), int(r.m_local_minute[k])),
                "days_without": (c.now - t) // 86400,
                "threshold_days": P.DOSES_MISSING_S // 86400,
                "source": P.DOSES_SOURCE,
            }
            evidence = NO_READINGS | {"measurement_ids": [int(r.measurement_id[k])], "measurement_at": [t]}
            out.append(("info", "current", evidence, "doses_missing", params))
        return out

    # every patient is judged: without a dose in the window (or off insulin) the condition is simply not met
    return lazy("doses_missing", np.flatnonzero(fire), build, True, np.ones(c.n_patients, dtype=np.bool_))
